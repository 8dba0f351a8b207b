"""`fitglue events [--state S] [--athlete ID] [--limit N] [--before C] [--json]`,
`fitglue events retry ID|--failed [--json]` and `fitglue events replay --since ISO [--athlete ID] [--json]`:
the outbound events for FitGlue's other services (README "Outbound events")."""

from __future__ import annotations

import argparse

from service.app.cli.output import (
    EXIT_OK,
    add_retry_command,
    argument,
    emit,
    refuse_options,
    retry_refused,
    run_with_desk,
)
from service.core.audit_log import cli_actor
from service.core.clock import iso_utc
from service.core.inputs import MAX_LIMIT, parse_cursor, parse_id, parse_limit, parse_since
from service.core.runtime import Runtime
from service.desk.event_models import (
    DEFAULT_LIMIT,
    EventBody,
    EventsBody,
    EventsReplayedBody,
    EventsRetriedBody,
)
from service.desk.events_ops import EVENT_STATES as STATES
from service.desk.events_ops import EventPage
from service.desk.support_desk import SupportDesk


def _table(page: EventPage, state: str | None) -> str:
    if not page.events:
        return "no outbound events" + (f" in state {state}" if state else "")
    lines = [f"{'id':>7}  {'state':<9} {'type':<38} {'athlete':>10} {'tries':>5}  {'created':<20} next / error"]
    for event in page.events:
        data = EventBody.of(event).to_json()
        why = " — ".join(str(x) for x in (data["next_attempt_at"], event.last_error) if x)
        lines.append(f"{event.id:>7}  {event.state:<9} {event.type:<38} {event.athlete_id or '-':>10} "
                     f"{event.attempts:>5}  {iso_utc(event.created_at):<20} {why}")
    if page.next_before is not None:
        lines.append(f"(more: --before {page.next_before})")
    return "\n".join(lines)


def cmd_events(args: argparse.Namespace) -> int:
    async def body(desk: SupportDesk, rt: Runtime) -> int:
        page = await desk.events.list_events(state=args.state, athlete_id=args.athlete, limit=args.limit or DEFAULT_LIMIT,
                                      before=args.before)
        emit(EventsBody.of(page).to_json(), args.json, _table(page, args.state))
        return EXIT_OK

    return run_with_desk(args, body)


def cmd_retry(args: argparse.Namespace) -> int:
    as_json = bool(getattr(args, "json", False))
    refused = retry_refused(args, "event", **{"--state": args.state is not None, "--limit": args.limit is not None,
                                              "--before": args.before is not None, "--athlete": args.athlete is not None})
    if refused is not None:
        return refused

    async def body(desk: SupportDesk, rt: Runtime) -> int:
        if args.failed:
            result = await desk.events.retry_failed_events(cli_actor())
        else:
            result = await desk.events.retry_event(args.id, cli_actor())
        emit(EventsRetriedBody.of(result).to_json(), as_json, f"{result.count} event(s) due to be sent again now")
        return EXIT_OK

    return run_with_desk(args, body)


def cmd_replay(args: argparse.Namespace) -> int:
    as_json = bool(getattr(args, "json", False))
    refused = refuse_options(args, "replay sends delivered events again and lists nothing",
                             **{"--state": args.state is not None, "--limit": args.limit is not None,
                                "--before": args.before is not None})
    if refused is not None:
        return refused
    athlete = args.replay_athlete if args.replay_athlete is not None else args.athlete

    async def body(desk: SupportDesk, rt: Runtime) -> int:
        result = await desk.events.replay_events(args.since, athlete, cli_actor())
        emit(EventsReplayedBody.of(result).to_json(), as_json,
             f"{result.count} delivered event(s) queued again with new webhook ids")
        return EXIT_OK

    return run_with_desk(args, body)


def register(sub: argparse._SubParsersAction) -> None:
    events = sub.add_parser("events", help="outbound events for FitGlue's other services: list, retry, replay")
    events.add_argument("--state", choices=STATES, help="only events in this state")
    events.add_argument("--athlete", type=argument(parse_id, "--athlete"), help="only this Strava athlete's events")
    events.add_argument("--limit", type=argument(lambda raw, name: parse_limit(raw, name, default=DEFAULT_LIMIT), "--limit"),
                        help=f"at most this many, newest first (1-{MAX_LIMIT}, default {DEFAULT_LIMIT})")
    events.add_argument("--before", type=argument(parse_cursor, "--before"), help="the next page: events older than this id")
    events.add_argument("--json", action="store_true")
    events.set_defaults(handler=cmd_events)
    actions = events.add_subparsers(dest="events_command", metavar="retry|replay")
    add_retry_command(actions, "send a parked event (or every parked one) again now", "every parked (failed) event",
                      cmd_retry)
    replay = actions.add_parser("replay", help="send delivered events again, with new webhook ids, for a "
                                               "receiver that lost its data")
    replay.add_argument("--since", required=True, type=argument(parse_since, "--since"),
                        help="events created at or after this ISO 8601 UTC time (e.g. 2026-11-27T00:00:00Z)")
    replay.add_argument("--athlete", dest="replay_athlete", type=argument(parse_id, "--athlete"),
                        help="only this Strava athlete's events")
    replay.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    replay.set_defaults(handler=cmd_replay)
