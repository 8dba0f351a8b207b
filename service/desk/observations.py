"""Gathering what we know about one user's Strava connection: the input of a diagnosis.

Everything comes from the database in a handful of indexed queries, plus one live look at the
app's push subscription at Strava, which is shared and reused for at most a minute (on the
injected clock), so a subscription lost at Strava shows up promptly without one Strava call per
diagnosis. Nothing gathered here is a secret: no token, no client secret, no Connect link.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select

from service.core import vocab
from service.core.inputs import BadInput
from service.core.inputs import parse_who as _parse_who
from service.core.redact import scrub_text
from service.core.runtime import Runtime
from service.core.settings import Settings
from service.db.models import (
    Job,
    OAuthAttempt,
    RateLimitState,
    StravaConnection,
    User,
    WebhookEvent,
    WebhookRegistration,
)
from service.queue.store import FAILED, QUEUED, WAITING_RATE_LIMIT
from service.ratelimit.windows import BUDGETS, DEFAULT_LIMITS, next_midnight, next_quarter, same_window
from service.strava import StravaError
from troubleshooting import AttemptFacts, BudgetWindow, ConnectionFacts, SubscriptionFacts, Thresholds
from troubleshooting.vocabulary import ATTEMPT_OUTCOMES, REFRESH_ERROR_KINDS

# `who` is neither a well-formed e-mail address nor a Strava athlete id (the rule is service.core.inputs').
BadWho = BadInput


# --- rate-limit windows ----------------------------------------------------------------------------


def budget_windows(rows: dict[str, RateLimitState], now: datetime) -> tuple[BudgetWindow, ...]:
    """Both budgets' 15-minute and daily windows, with usage only from the current window."""
    windows: list[BudgetWindow] = []
    for budget in BUDGETS:
        row = rows.get(budget)
        short_limit, daily_limit = DEFAULT_LIMITS[budget]
        short_usage = daily_usage = None
        if row is not None:
            short_limit, daily_limit = row.limit_15min, row.limit_daily
            # Usage counts only when it was observed inside the current window; before that it is unknown.
            short_usage = row.usage_15min if same_window("15min", row.observed_at, now) else None
            daily_usage = row.usage_daily if same_window("daily", row.observed_at, now) else None
        windows.append(BudgetWindow(budget, "15min", short_limit, short_usage, next_quarter(now)))
        windows.append(BudgetWindow(budget, "daily", daily_limit, daily_usage, next_midnight(now)))
    return tuple(windows)


def thresholds_from(settings: Settings) -> Thresholds:
    return Thresholds(rate_limit_warn_pct=settings.rate_limit_warn_pct,
                      webhook_silent_days=settings.webhook_silent_days)


# --- the live subscription look --------------------------------------------------------------------


@dataclass(frozen=True)
class SubscriptionLook:
    """What one live call to Strava's push_subscriptions said (or why it could not be made)."""

    at: datetime
    checked: bool
    exists: bool | None
    callback_url: str | None
    error: str | None
    configured: bool = True


class SubscriptionProbe:
    """One live look at the app's push subscription, reused for at most `ttl_s` on the injected clock.

    A failed look is kept for a shorter time, so Strava coming back shows up soon. Concurrent
    diagnoses share one call. Call `forget()` after changing the subscription (re-registration).
    """

    def __init__(self, rt: Runtime, ttl_s: float = 60, failure_ttl_s: float = 10, timeout_s: float = 5) -> None:
        self._rt = weakref.ref(rt)  # weak: the shared registry (probe_for) must not keep runtimes alive
        self.ttl = timedelta(seconds=ttl_s)
        self.failure_ttl = timedelta(seconds=failure_ttl_s)
        self.timeout_s = timeout_s
        self._look: SubscriptionLook | None = None
        self._lock = asyncio.Lock()

    @property
    def rt(self) -> Runtime:
        rt = self._rt()
        if rt is None:
            raise RuntimeError("the runtime of this subscription probe is gone")
        return rt

    def belongs_to(self, rt: Runtime) -> bool:
        return self._rt() is rt

    def forget(self) -> None:
        self._look = None

    def _fresh(self, now: datetime) -> SubscriptionLook | None:
        look = self._look
        if look is None:
            return None
        age = now - look.at
        keep = self.ttl if look.checked else self.failure_ttl
        return look if timedelta(0) <= age < keep else None

    async def look(self) -> SubscriptionLook:
        rt = self.rt
        if rt.strava is None:
            return SubscriptionLook(rt.clock.now(), False, None, None, "Strava is not configured", configured=False)
        cached = self._fresh(rt.clock.now())
        if cached is not None:
            return cached
        async with self._lock:
            cached = self._fresh(rt.clock.now())
            if cached is not None:
                return cached
            self._look = await self._call()
            return self._look

    async def _call(self) -> SubscriptionLook:
        rt = self.rt
        assert rt.strava is not None
        expected = rt.settings.webhook_callback_url
        try:
            async with asyncio.timeout(self.timeout_s):
                subscriptions = await rt.strava.list_subscriptions(interactive=True)
        except TimeoutError:
            return SubscriptionLook(rt.clock.now(), False, None, None,
                                    f"Strava did not answer the subscription check within {self.timeout_s:g} s")
        except StravaError as exc:
            return SubscriptionLook(rt.clock.now(), False, None, None, scrub_text(exc.summary))
        callbacks = [str(s.get("callback_url") or "") for s in subscriptions if isinstance(s, dict)]
        if not callbacks:
            return SubscriptionLook(rt.clock.now(), True, False, None, None)
        # Strava allows one subscription per app; if there were several, ours is the one that matters.
        callback = expected if expected in callbacks else callbacks[0]
        return SubscriptionLook(rt.clock.now(), True, True, callback, None)


_PROBES: dict[int, SubscriptionProbe] = {}


def probe_for(rt: Runtime) -> SubscriptionProbe:
    """The one probe of a runtime, so every desk (bot, CLI, admin API) shares its cached look."""
    probe = _PROBES.get(id(rt))
    if probe is None or not probe.belongs_to(rt):
        probe = _PROBES[id(rt)] = SubscriptionProbe(rt)
        weakref.finalize(rt, _PROBES.pop, id(rt), None)
    return probe


class ConnectedCount:
    """The number of connected athletes app-wide, reused for at most `ttl_s` on the injected clock.

    Counting is linear in connected athletes (about 9 ms for 90,000 on SQLite, more on a PostgreSQL
    table not yet vacuumed), by far the largest part of a diagnosis at scale, and it only explains
    the app's athlete capacity, which changes slowly. Everything else in a diagnosis is read fresh.
    """

    def __init__(self, rt: Runtime, ttl_s: float = 30) -> None:
        self._rt = weakref.ref(rt)
        self.ttl = timedelta(seconds=ttl_s)
        self._value: tuple[datetime, int] | None = None

    def belongs_to(self, rt: Runtime) -> bool:
        return self._rt() is rt

    def fresh(self, now: datetime) -> int | None:
        if self._value is None:
            return None
        at, value = self._value
        return value if timedelta(0) <= now - at < self.ttl else None

    def store(self, now: datetime, value: int) -> None:
        self._value = (now, value)

    def forget(self) -> None:
        self._value = None


_COUNTS: dict[int, ConnectedCount] = {}


def connected_count_for(rt: Runtime) -> ConnectedCount:
    count = _COUNTS.get(id(rt))
    if count is None or not count.belongs_to(rt):
        count = _COUNTS[id(rt)] = ConnectedCount(rt)
        weakref.finalize(rt, _COUNTS.pop, id(rt), None)
    return count


# --- gathering ---------------------------------------------------------------------------------


def parse_who(who: str) -> tuple[str | None, int | None]:
    """(normalised e-mail, None) or (None, athlete id). Raises BadWho."""
    parsed = _parse_who(who)
    return parsed.email, parsed.athlete_id


def _latest(*values: datetime | None) -> datetime | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _user_query(email: str | None, athlete_id: int | None) -> Any:
    """One row: the user, their connection, their latest attempt, their jobs, their athlete's newest event."""
    latest_attempt = (select(OAuthAttempt.id).where(OAuthAttempt.user_id == User.id)
                      .order_by(OAuthAttempt.started_at.desc(), OAuthAttempt.id.desc()).limit(1)
                      .correlate(User).scalar_subquery())
    queued = and_(Job.user_id == User.id, Job.state == QUEUED)
    waiting = and_(queued, Job.waiting_for == WAITING_RATE_LIMIT)
    failed = and_(Job.user_id == User.id, Job.state == FAILED)
    query = (
        select(
            User, StravaConnection, OAuthAttempt,
            select(func.count()).select_from(Job).where(queued).correlate(User).scalar_subquery()
            .label("jobs_queued"),
            select(func.count()).select_from(Job).where(waiting).correlate(User).scalar_subquery()
            .label("jobs_waiting"),
            select(func.min(Job.run_after)).where(waiting).correlate(User).scalar_subquery().label("next_run"),
            select(func.count()).select_from(Job).where(failed).correlate(User).scalar_subquery()
            .label("jobs_failed"),
            select(Job.last_error).where(failed).order_by(Job.id.desc()).limit(1).correlate(User)
            .scalar_subquery().label("last_job_failure"),
            select(func.max(WebhookEvent.received_at)).where(WebhookEvent.owner_id == StravaConnection.athlete_id)
            .correlate(StravaConnection).scalar_subquery().label("athlete_last_event"),
        )
        .outerjoin(StravaConnection, StravaConnection.user_id == User.id)
        .outerjoin(OAuthAttempt, OAuthAttempt.id == latest_attempt)
    )
    if athlete_id is not None:
        return query.where(StravaConnection.athlete_id == athlete_id)
    return query.where(User.email_normalized == email)


_RATE_COLUMNS = ("limit_15min", "limit_daily", "usage_15min", "usage_daily", "observed_at")


def _app_wide_query(count_connected: bool) -> Any:
    """One row of scalar subqueries, each an index or primary-key look-up: what is app-wide."""
    latest_registration = (select(WebhookRegistration.id)
                           .order_by(WebhookRegistration.at.desc(), WebhookRegistration.id.desc())
                           .limit(1).scalar_subquery())
    columns: list[Any] = [
        select(func.max(WebhookEvent.received_at)).scalar_subquery().label("app_last_event"),
    ]
    for name in ("at", "outcome", "error"):
        columns.append(select(getattr(WebhookRegistration, name)).where(WebhookRegistration.id == latest_registration)
                       .scalar_subquery().label(f"registration_{name}"))
    for budget in BUDGETS:
        for name in _RATE_COLUMNS:
            columns.append(select(getattr(RateLimitState, name)).where(RateLimitState.budget == budget)
                           .scalar_subquery().label(f"{budget}_{name}"))
    if count_connected:
        columns.append(select(func.count()).select_from(StravaConnection)
                       .where(StravaConnection.status == vocab.CONNECTED).scalar_subquery().label("connected"))
    return select(*columns)


def _attempt_facts(attempt: OAuthAttempt | None) -> AttemptFacts | None:
    if attempt is None:
        return None
    outcome = attempt.outcome if attempt.outcome in ATTEMPT_OUTCOMES else vocab.ATTEMPT_EXCHANGE_FAILED
    return AttemptFacts(started_at=attempt.started_at, finished_at=attempt.finished_at, outcome=outcome,
                        reason=scrub_text(attempt.reason) if attempt.reason else None)


def _rate_limit_rows(wide: dict[str, Any]) -> dict[str, RateLimitState]:
    rows = {}
    for budget in BUDGETS:
        values = {name: wide[f"{budget}_{name}"] for name in _RATE_COLUMNS}
        if values["limit_15min"] is not None:
            rows[budget] = RateLimitState(budget=budget, **values)
    return rows


def _registration(wide: dict[str, Any]) -> WebhookRegistration | None:
    if wide["registration_at"] is None:
        return None
    return WebhookRegistration(at=wide["registration_at"], outcome=wide["registration_outcome"] or "",
                               error=wide["registration_error"])


def _registration_outcome(outcome: str | None) -> str | None:
    if outcome is None:
        return None
    # Registration records say how it went (e.g. unchanged, repaired, failed); only failure matters here.
    return "failed" if outcome.lower() in ("failed", "error") else "ok"


def subscription_facts(look: SubscriptionLook, settings: Settings,
                       registration: WebhookRegistration | None) -> SubscriptionFacts:
    return SubscriptionFacts(
        checked=look.checked,
        exists=look.exists,
        callback_url=look.callback_url,
        expected_callback_url=settings.webhook_callback_url,
        check_error=look.error,
        last_registration_outcome=_registration_outcome(registration.outcome) if registration else None,
        last_registration_error=scrub_text(registration.error) if registration and registration.error else None,
        last_registration_at=registration.at if registration else None,
    )


def connected_reason(granted: frozenset[str] | None) -> str | None:
    """A connected connection's status reason, from the same verdict the findings use.

    Read from the grant rather than the stored text: rows written before the verdict was one
    function say "every needed permission" beside a grant without profile:read_all.
    """
    return vocab.grant_verdict(granted).status_reason if granted is not None else None


async def gather_facts(rt: Runtime, who: str, probe: SubscriptionProbe) -> ConnectionFacts:
    """Everything a diagnosis of `who` (an e-mail or a Strava athlete id) rests on. Raises BadWho."""
    email, athlete_id = parse_who(who)
    look_task = asyncio.ensure_future(probe.look())
    try:
        facts = await _gather_from_db(rt, who.strip(), email, athlete_id)
    except BaseException:
        look_task.cancel()
        raise
    look, registration = await look_task, facts.pop("_registration")
    if registration is not None and look.checked and registration.at >= look.at:
        # The subscription was (re-)registered since our cached look: that look may be stale.
        probe.forget()
        look = await probe.look()
    return ConnectionFacts(**facts, subscription=subscription_facts(look, rt.settings, registration),
                           strava_configured=look.configured)


async def _gather_from_db(rt: Runtime, who: str, email: str | None, athlete_id: int | None) -> dict[str, Any]:
    """Two statements in one session: the user's row and the app-wide row."""
    now = rt.clock.now()
    settings = rt.settings
    counts = connected_count_for(rt)
    async with rt.sessions() as session:
        found = (await session.execute(_user_query(email, athlete_id))).first()
        cached_count = counts.fresh(now)
        wide = dict((await session.execute(_app_wide_query(cached_count is None))).mappings().one())
    if cached_count is None:
        counts.store(now, int(wide["connected"] or 0))
    else:
        wide["connected"] = cached_count
    user: User | None = found[0] if found is not None else None
    conn: StravaConnection | None = found[1] if found is not None else None
    attempt = _attempt_facts(found[2]) if found is not None else None
    if found is not None:
        wide.update(jobs_queued=found.jobs_queued, jobs_waiting=found.jobs_waiting, next_run=found.next_run,
                    athlete_last_event=found.athlete_last_event, jobs_failed=found.jobs_failed,
                    last_job_failure=found.last_job_failure)
    budgets = budget_windows(_rate_limit_rows(wide), now)
    registration = _registration(wide)
    common: dict[str, Any] = {
        "now": now,
        "who": who,
        "app_athlete_capacity": settings.strava_athlete_capacity,
        "connected_athletes": int(wide["connected"] or 0),
        "app_last_event_at": wide["app_last_event"],
        "budgets": budgets,
        "_registration": registration,
    }
    if user is None:
        return {**common, "email": None, "status": "unknown_user"}
    status = conn.status if conn is not None else vocab.NOT_CONNECTED
    facts: dict[str, Any] = {
        **common,
        "email": user.email,
        "status": status,
        "last_attempt": attempt,
        "user_jobs_queued": int(wide.get("jobs_queued") or 0),
        "user_jobs_waiting_for_window": int(wide.get("jobs_waiting") or 0),
        "user_jobs_failed": int(wide.get("jobs_failed") or 0),
        "last_job_failure": scrub_text(wide["last_job_failure"]) if wide.get("last_job_failure") else None,
    }
    if facts["user_jobs_waiting_for_window"]:
        facts["next_window_at"] = wide.get("next_run") or next_quarter(now)
    if conn is None:
        return facts
    kind = conn.last_refresh_error_kind
    granted = vocab.parse_scopes(conn.granted_scopes) if conn.granted_scopes is not None else None
    facts.update(
        athlete_id=conn.athlete_id,
        granted_scopes=granted,
        token_expires_at=conn.expires_at,
        connected_at=conn.connected_at,
        last_refresh_at=conn.last_refresh_at,
        # An error kind we do not know (a newer writer) still counts as a refresh problem.
        last_refresh_error_kind=(kind if kind in REFRESH_ERROR_KINDS else vocab.ERR_TRANSIENT) if kind else None,
        last_refresh_error=scrub_text(conn.last_refresh_error) if conn.last_refresh_error else None,
        last_refresh_error_at=conn.last_refresh_error_at,
        consecutive_refresh_failures=conn.refresh_failures or 0,
        status_reason=(connected_reason(granted) if status == vocab.CONNECTED else None) or conn.status_reason,
        status_changed_at=conn.status_changed_at,
        last_event_at=_latest(conn.last_event_at, wide.get("athlete_last_event")),
    )
    return facts
