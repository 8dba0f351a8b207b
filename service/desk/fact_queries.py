"""The database side of gathering facts: two statements, one for the user and one app-wide, and
the models rebuilt from the app-wide row.

Both are single rows of indexed look-ups, so a diagnosis costs two round trips whatever the size
of the tables (the connected-athletes count is the exception; ``connected_count`` caches it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select

from service.core.runtime import Runtime
from service.db.models import (
    Job,
    OAuthAttempt,
    OutboundEvent,
    RateLimitState,
    StravaConnection,
    User,
    WebhookEvent,
    WebhookRegistration,
)
from service.desk.connected_count import connected_count_for
from service.outbox.outbox_ops import undelivered_condition
from service.queue.store import FAILED, QUEUED, WAITING_EVENT_CAP, WAITING_RATE_LIMIT
from service.ratelimit.windows import DEFAULT_LIMITS, next_midnight, next_quarter, same_window
from service.subscription.state import PROCESSED
from troubleshooting import BudgetWindow
from troubleshooting.vocabulary import BUDGETS, Budget, ConnectionStatus, Window


async def read_fact_rows(rt: Runtime, email: str | None, athlete_id: int | None,
                         now: datetime) -> tuple[Any, dict[str, Any]]:
    """Two statements in one session: the user's row (None for an unknown user; see ``user_query``)
    and the app-wide row as a dict (see ``app_wide_query``), its ``connected`` count from the
    cache while that is fresh."""
    counts = connected_count_for(rt)
    async with rt.sessions() as session:
        found = (await session.execute(user_query(email, athlete_id))).first()
        cached_count = counts.fresh(now)
        wide = dict((await session.execute(app_wide_query(cached_count is None))).mappings().one())
    if cached_count is None:
        counts.store(now, int(wide["connected"] or 0))
    else:
        wide["connected"] = cached_count
    return found, wide


def user_query(email: str | None, athlete_id: int | None) -> Any:
    """One row: the user, their connection, their latest attempt, their jobs, their athlete's newest event."""
    latest_attempt = (select(OAuthAttempt.id).where(OAuthAttempt.user_id == User.id)
                      .order_by(OAuthAttempt.started_at.desc(), OAuthAttempt.id.desc()).limit(1)
                      .correlate(User).scalar_subquery())
    queued = and_(Job.user_id == User.id, Job.state == QUEUED)
    # Held for the next 15-minute window: by Strava's rate limit, or by the caps on checking
    # unsigned events (service.background.webhooks.unconfirmed); either way they resume by themselves then.
    waiting = and_(queued, Job.waiting_for.in_((WAITING_RATE_LIMIT, WAITING_EVENT_CAP)))
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
            # Only an event Strava confirmed counts as heard: an unsigned event proves nothing by arriving.
            select(func.max(WebhookEvent.received_at)).where(WebhookEvent.owner_id == StravaConnection.athlete_id,
                                                             WebhookEvent.state == PROCESSED)
            .correlate(StravaConnection).scalar_subquery().label("athlete_last_event"),
            *_undelivered_columns(),
        )
        .outerjoin(StravaConnection, StravaConnection.user_id == User.id)
        .outerjoin(OAuthAttempt, OAuthAttempt.id == latest_attempt)
    )
    if athlete_id is not None:
        return query.where(StravaConnection.athlete_id == athlete_id)
    return query.where(User.email_normalized == email)


def newest_heard() -> Any:
    """The newest event Strava confirmed, from any athlete: newest first along ix_events_received.
    `state || ''` keeps SQLite off ix_events_state, which it would otherwise choose and then sort
    every processed event (1,000,000 events: 350 ms; tests/integration/test_query_plans.py)."""
    return (select(WebhookEvent.received_at).where(WebhookEvent.state.concat("") == PROCESSED)
            .order_by(WebhookEvent.received_at.desc()).limit(1))


def _undelivered_columns() -> list[Any]:
    """The user's outbound events their receiver has not taken: how many, since when, the last error."""
    stuck = undelivered_condition(StravaConnection.athlete_id, User.id)
    return [
        select(func.count()).select_from(OutboundEvent).where(stuck).correlate(User, StravaConnection)
        .scalar_subquery().label("events_undelivered"),
        select(func.min(OutboundEvent.created_at)).where(stuck).correlate(User, StravaConnection)
        .scalar_subquery().label("events_undelivered_since"),
        select(OutboundEvent.last_error).where(stuck, OutboundEvent.last_error.is_not(None))
        .order_by(OutboundEvent.id.desc()).limit(1).correlate(User, StravaConnection)
        .scalar_subquery().label("events_last_error"),
    ]


_RATE_COLUMNS = ("limit_15min", "limit_daily", "usage_15min", "usage_daily", "observed_at")


def app_wide_query(count_connected: bool) -> Any:
    """One row of scalar subqueries, each an index or primary-key look-up: what is app-wide."""
    latest_registration = (select(WebhookRegistration.id)
                           .order_by(WebhookRegistration.at.desc(), WebhookRegistration.id.desc())
                           .limit(1).scalar_subquery())
    columns: list[Any] = [newest_heard().scalar_subquery().label("app_last_event")]
    for name in ("at", "outcome", "error"):
        columns.append(select(getattr(WebhookRegistration, name)).where(WebhookRegistration.id == latest_registration)
                       .scalar_subquery().label(f"registration_{name}"))
    for budget in BUDGETS:
        for name in _RATE_COLUMNS:
            columns.append(select(getattr(RateLimitState, name)).where(RateLimitState.budget == budget)
                           .scalar_subquery().label(f"{budget}_{name}"))
    if count_connected:
        columns.append(select(func.count()).select_from(StravaConnection)
                       .where(StravaConnection.status == ConnectionStatus.CONNECTED).scalar_subquery().label("connected"))
    return select(*columns)


def rate_limit_rows(wide: dict[str, Any]) -> dict[Budget, RateLimitState]:
    rows = {}
    for budget in BUDGETS:
        values = {name: wide[f"{budget}_{name}"] for name in _RATE_COLUMNS}
        if values["limit_15min"] is not None:
            rows[budget] = RateLimitState(budget=budget, **values)
    return rows


def last_registration(wide: dict[str, Any]) -> WebhookRegistration | None:
    if wide["registration_at"] is None:
        return None
    return WebhookRegistration(at=wide["registration_at"], outcome=wide["registration_outcome"] or "",
                               error=wide["registration_error"])


def budget_windows(rows: dict[Budget, RateLimitState], now: datetime) -> tuple[BudgetWindow, ...]:
    """Both budgets' 15-minute and daily windows, with usage only from the current window."""
    windows: list[BudgetWindow] = []
    for budget in BUDGETS:
        row = rows.get(budget)
        short_limit, daily_limit = DEFAULT_LIMITS[budget]
        short_usage = daily_usage = None
        if row is not None:
            short_limit, daily_limit = row.limit_15min, row.limit_daily
            # Usage counts only when it was observed inside the current window; before that it is unknown.
            short_usage = row.usage_15min if same_window(Window.FIFTEEN_MIN, row.observed_at, now) else None
            daily_usage = row.usage_daily if same_window(Window.DAILY, row.observed_at, now) else None
        windows.append(BudgetWindow(budget, Window.FIFTEEN_MIN, short_limit, short_usage, next_quarter(now)))
        windows.append(BudgetWindow(budget, Window.DAILY, daily_limit, daily_usage, next_midnight(now)))
    return tuple(windows)
