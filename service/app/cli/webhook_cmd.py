"""`fitglue webhook status|register [--json]`."""

from __future__ import annotations

import argparse
from typing import Any

from service.app.cli.output import EXIT_OK, emit, fail, run_with_desk
from service.core.audit_log import cli_actor
from service.core.runtime import Runtime
from service.desk.api_models import RegistrationFailureBody, WebhookRegistrationBody, WebhookStatusBody
from service.desk.error_table import ERRORS
from service.desk.support_desk import SupportDesk


def status_text(data: dict[str, Any]) -> list[str]:
    sub = data["subscription"]
    if sub is None:
        lines = ["Subscription: none — Strava sends FitGlue no events (run `fitglue webhook register`)"]
    elif data["callback_matches"]:
        lines = [f"Subscription: {sub['id']} -> {sub['callback_url']} (our callback)"]
    else:
        lines = [f"Subscription: {sub['id']} -> {sub['callback_url']} — NOT our callback "
                 "(run `fitglue webhook register`)"]
    lines.append(f"Last event:   {data['last_event_at'] or 'none heard yet'}")
    last = data["last_registration"]
    if last:
        lines.append(f"Last registration: {last['at']} {last['outcome']}" + (f" — {last['error']}" if last["error"] else ""))
    return lines


def cmd_status(args: argparse.Namespace) -> int:
    async def body(desk: SupportDesk, rt: Runtime) -> int:
        status = WebhookStatusBody.of(await desk.webhooks.webhook_status()).to_json()
        emit(status, args.json, "\n".join(status_text(status)))
        return EXIT_OK

    return run_with_desk(args, body)


def cmd_register(args: argparse.Namespace) -> int:
    async def body(desk: SupportDesk, rt: Runtime) -> int:
        report = await desk.webhooks.reregister_webhook(cli_actor())
        data = WebhookRegistrationBody.of(report).to_json()
        if not report.ok:
            if args.json:
                emit(RegistrationFailureBody.failed(report).to_json(), True)
                return ERRORS["registration_failed"].exit_code
            for step in report.steps:
                print(f"  {'ok ' if step['ok'] else 'ERR'} {step['description']}")
            return fail("registration_failed", f"webhook registration failed: {report.error}", False)
        lines = [f"  {'ok ' if s['ok'] else 'ERR'} {s['description']}" for s in report.steps]
        emit(data, args.json, "\n".join([f"Webhook registration: {report.outcome}", *lines, *status_text(data)]))
        return EXIT_OK

    return run_with_desk(args, body)


def register(sub: argparse._SubParsersAction) -> None:
    webhook = sub.add_parser("webhook", help="show or repair the Strava push subscription")
    actions = webhook.add_subparsers(dest="webhook_command", metavar="status|register")
    actions.required = True
    status = actions.add_parser("status", help="the subscription at Strava and the last event heard")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_status)
    repair = actions.add_parser("register", help="check our callback, replace a wrong subscription, create ours")
    repair.add_argument("--json", action="store_true")
    repair.set_defaults(handler=cmd_register)
