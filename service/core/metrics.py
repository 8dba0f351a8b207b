"""Process-local counters for `/metrics` (Prometheus text format, hand-written: a few counters do
not need a dependency). Labels carry only fixed vocabulary words — never e-mails, ids or tokens.

Gauges that every replica shares (queue depth, rate-limit usage) are read from the database at
scrape time by `service.web.prometheus`, not kept here.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping

# name -> (help, label name)
COUNTERS: Mapping[str, tuple[str, str]] = {
    "fitglue_webhook_events_received_total": (
        "Webhook POSTs by what became of them (stored, duplicate, foreign, rejected, error)", "outcome"),
    "fitglue_webhook_events_processed_total": (
        "Stored webhook events the worker finished, by outcome (processed, ignored, failed)", "outcome"),
    "fitglue_strava_calls_total": (
        "Strava calls by outcome (ok, client_error, rate_limited, server_error, refused_budget)", "outcome"),
    "fitglue_jobs_finished_total": (
        "Queue job runs by outcome (done, retry, rate_limited, failed)", "outcome"),
    "fitglue_outbound_attempts_total": (
        "Outbound event delivery attempts by outcome (delivered, retry, parked)", "outcome"),
    "fitglue_token_api_requests_total": (
        "Access-token API calls by outcome (ok, refreshed, bad_request, unauthorized, unknown_user, "
        "not_connected, needs_reauth, revoked, strava_unavailable, rate_limited, ...)", "outcome"),
}


class Metrics:
    def __init__(self) -> None:
        self._counts: dict[str, Counter[str]] = {name: Counter() for name in COUNTERS}
        # One-process `fitglue serve` counts from two threads (web and background) into one object.
        self._lock = threading.Lock()

    def inc(self, name: str, label: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name][label] += amount

    def value(self, name: str, label: str) -> int:
        return self._counts[name][label]

    def render_counters(self) -> list[str]:
        lines: list[str] = []
        for name, (help_text, label_name) in COUNTERS.items():
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} counter")
            for label, count in sorted(self._counts[name].items()):
                lines.append(f'{name}{{{label_name}="{label}"}} {count}')
        return lines


def gauge(name: str, help_text: str, samples: Iterable[tuple[Mapping[str, str], float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    for labels, value in samples:
        rendered = ",".join(f'{k}="{v}"' for k, v in labels.items())
        lines.append(f"{name}{{{rendered}}} {value:g}")
    return lines
