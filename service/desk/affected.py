"""Who else has a finding: `fitglue affected FINDING_ID`, `/fitglue affected …` and
`GET /admin/api/affected`.

Each supported finding is a selection on indexed columns (support_tables.py / migration 0008) that mirrors
its rule in `troubleshooting/rules.py` from local state only: no diagnosis per user and no Strava
call, so a count over 100,000 users is a few index range scans. Two rules lean on something the
database does not hold, and the selection says so: `webhook_silent` assumes the push subscription
is healthy (the diagnosis checks it live; `fitglue webhook status` does here), and
`missing_permissions` judges each distinct stored grant once with the same `grant_verdict`.

For each user, `since` is when they got the finding (status change, grant, first failed refresh
of the current run, the attempt, the last event heard) and `last_change` the last change to their
connection or attempt. Times are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, and_, cast, func, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import join

from service.core.clock import iso_utc
from service.core.runtime import Runtime
from service.db.models import OAuthAttempt, StravaConnection, User
from service.desk.boundary import raises_only_support_error
from service.desk.error_table import SupportError
from service.desk.fact_queries import newest_heard
from troubleshooting import Thresholds
from troubleshooting.permissions import grant_verdict, parse_scopes
from troubleshooting.vocabulary import (
    FAILED_ATTEMPT_OUTCOMES,
    AttemptOutcome,
    ConnectionStatus,
    RefreshErrorKind,
)

AFFECTED_FINDINGS: tuple[str, ...] = ("needs_reauth", "revoked", "missing_permissions", "token_refresh_failing",
                                      "authorization_failed", "webhook_silent")
LISTED = 20  # users shown by name; `count` is all of them


@dataclass(frozen=True)
class AffectedUser:
    email: str
    athlete_id: int | None
    since: datetime
    last_change: datetime
    user_id: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"email": self.email, "athlete_id": self.athlete_id, "since": iso_utc(self.since),
                "last_change": iso_utc(self.last_change)}


@dataclass(frozen=True)
class AffectedReport:
    finding: str
    count: int
    since: datetime | None  # the filter asked for (None: since ever)
    users: list[AffectedUser]
    by_day: list[tuple[str, int]]  # (YYYY-MM-DD in UTC, users who got the finding that day), oldest first

    def to_dict(self) -> dict[str, Any]:
        return {"finding": self.finding, "count": self.count, "since": iso_utc(self.since),
                "users": [u.to_dict() for u in self.users],
                "by_day": [{"date": day, "count": n} for day, n in self.by_day]}


@dataclass(frozen=True)
class Selection:
    """FROM + WHERE of one finding, and its `since` / `last_change` columns."""

    source: Any  # a join of users and connections (and attempts)
    where: Any
    since: Any
    last_change: Any
    athlete_id: Any = None  # the athlete id column, when not the connection's
    reason: Any = None  # what the digest groups "top reasons" by


def _joined() -> Any:
    return join(User, StravaConnection, StravaConnection.user_id == User.id)


def _status(status: str) -> Selection:
    return Selection(_joined(), StravaConnection.status == status, StravaConnection.status_changed_at,
                     func.coalesce(StravaConnection.updated_at, StravaConnection.status_changed_at),
                     reason=StravaConnection.status_reason)


async def _missing_permissions(session: AsyncSession) -> Selection:
    grants = (await session.execute(select(StravaConnection.granted_scopes).where(
        StravaConnection.status == ConnectionStatus.CONNECTED, StravaConnection.granted_scopes.is_not(None)).distinct()
    )).scalars().all()
    short = [g for g in grants if not grant_verdict(parse_scopes(g)).complete]
    return Selection(_joined(), and_(StravaConnection.status == ConnectionStatus.CONNECTED,
                                     StravaConnection.granted_scopes.in_(short)),
                     StravaConnection.connected_at,
                     func.coalesce(StravaConnection.updated_at, StravaConnection.connected_at),
                     reason=StravaConnection.granted_scopes)


def _refresh_failing(t: Thresholds) -> Selection:
    return Selection(_joined(), and_(
        StravaConnection.status == ConnectionStatus.CONNECTED, StravaConnection.refresh_failing_since.is_not(None),
        StravaConnection.last_refresh_error_kind.in_((RefreshErrorKind.TRANSIENT, RefreshErrorKind.RATE_LIMITED)),
        StravaConnection.refresh_failures >= t.refresh_failures_before_warning),
        StravaConnection.refresh_failing_since,
        func.coalesce(StravaConnection.last_refresh_error_at, StravaConnection.refresh_failing_since),
        reason=StravaConnection.last_refresh_error_kind)


def _distinct_on(query: Any, column: Any) -> Any:
    """PostgreSQL's DISTINCT ON: `postgresql.distinct_on` from SQLAlchemy 2.1, `.distinct(col)` before."""
    try:
        from sqlalchemy.dialects.postgresql import distinct_on
    except ImportError:  # SQLAlchemy 2.0
        return query.distinct(column)
    return query.ext(distinct_on(column))


def _latest_attempts(sqlite: bool) -> Any:
    """Each user's newest attempt (user_id, id), if it failed or is still pending: one scan of the
    covering index ix_attempts_user_latest (user_id, started_at, id, outcome), however many users."""
    wanted = [*sorted(FAILED_ATTEMPT_OUTCOMES), AttemptOutcome.PENDING]
    if sqlite:
        # SQLite takes the bare columns of max()'s row; the filter must come after (HAVING), or it
        # would pick the newest attempt among the failed ones instead.
        return (select(OAuthAttempt.user_id, OAuthAttempt.id, func.max(OAuthAttempt.started_at))
                .group_by(OAuthAttempt.user_id).having(OAuthAttempt.outcome.in_(wanted)).subquery("latest"))
    newest = (_distinct_on(select(OAuthAttempt.user_id, OAuthAttempt.id, OAuthAttempt.outcome), OAuthAttempt.user_id)
              # All descending: the index read backwards, no sort of every attempt.
              .order_by(OAuthAttempt.user_id.desc(), OAuthAttempt.started_at.desc(), OAuthAttempt.id.desc())
              .subquery())
    return select(newest.c.user_id, newest.c.id).where(newest.c.outcome.in_(wanted)).subquery("latest")


# Up to this many newest-attempt ids go into the two statements as a list (well under SQLite's and
# asyncpg's 32,767 parameters); more (an incident at scale) and the statements scan for them themselves.
MAX_LISTED_ATTEMPTS = 20_000


async def _authorization_failed(session: AsyncSession, t: Thresholds, now: datetime) -> Selection:
    """The user's newest attempt failed (or never came back), and no connection was made since. On
    SQLite the newest attempts are found once, here, and looked up by id in the report's statements;
    PostgreSQL reads them in each statement (a backward index-only scan, cheaper than 3,000 parameters)."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    latest = _latest_attempts(sqlite)
    newest = OAuthAttempt.id.in_(select(latest.c.id))
    if sqlite:  # its scan is the report's cost there: once, not in each of the two statements
        ids = (await session.execute(select(latest.c.id).limit(MAX_LISTED_ATTEMPTS + 1))).scalars().all()
        newest = OAuthAttempt.id.in_(ids) if len(ids) <= MAX_LISTED_ATTEMPTS else newest
    abandoned = and_(OAuthAttempt.outcome == AttemptOutcome.PENDING, OAuthAttempt.finished_at.is_(None),
                     OAuthAttempt.started_at < now - timedelta(seconds=t.attempt_abandoned_after_s))
    source = (join(OAuthAttempt, User, User.id == OAuthAttempt.user_id)
              .outerjoin(StravaConnection, StravaConnection.user_id == User.id))
    where = and_(
        newest,
        or_(OAuthAttempt.outcome != AttemptOutcome.PENDING, abandoned),
        or_(StravaConnection.status.is_(None), StravaConnection.status != ConnectionStatus.CONNECTED),
        or_(StravaConnection.connected_at.is_(None), StravaConnection.connected_at < OAuthAttempt.started_at))
    return Selection(source, where, OAuthAttempt.started_at,
                     func.coalesce(OAuthAttempt.finished_at, OAuthAttempt.started_at), OAuthAttempt.athlete_id,
                     reason=OAuthAttempt.outcome)


async def _webhook_silent(session: AsyncSession, t: Thresholds, now: datetime) -> Selection | None:
    heard = (await session.execute(newest_heard())).scalar()
    if heard is None:
        return None  # nobody is heard: not any one athlete's problem
    cutoff = now - timedelta(days=t.webhook_silent_days)
    reference = func.coalesce(StravaConnection.last_event_at, StravaConnection.connected_at)
    # Two ranges of ix_connections_last_event (status, last_event_at), so only the quiet are read: heard
    # of before the cutoff, or never (then connected before it).
    connected = StravaConnection.status == ConnectionStatus.CONNECTED
    quiet = union_all(
        select(StravaConnection.id).where(connected, StravaConnection.last_event_at < cutoff),
        select(StravaConnection.id).where(connected, StravaConnection.last_event_at.is_(None),
                                          StravaConnection.connected_at < cutoff))
    # A grant that cannot read activities explains the silence (missing_permissions): each distinct grant
    # (read from the covering ix_connections_grant) judged once by the same verdict as the diagnosis.
    grants = (await session.execute(select(StravaConnection.granted_scopes).where(connected).distinct())
              ).scalars().all()
    readable = [g for g in grants if g is not None and grant_verdict(parse_scopes(g)).can_read_activities]
    where = and_(StravaConnection.id.in_(quiet), reference < heard,
                 or_(StravaConnection.granted_scopes.is_(None), StravaConnection.granted_scopes.in_(readable)))
    return Selection(_joined(), where, reference, func.coalesce(StravaConnection.updated_at, reference))


async def selection_for(session: AsyncSession, finding: str, t: Thresholds, now: datetime) -> Selection | None:
    if finding in (ConnectionStatus.NEEDS_REAUTH, ConnectionStatus.REVOKED):
        return _status(finding)
    if finding == "missing_permissions":
        return await _missing_permissions(session)
    if finding == "token_refresh_failing":
        return _refresh_failing(t)
    if finding == "authorization_failed":
        return await _authorization_failed(session, t, now)
    if finding == "webhook_silent":
        return await _webhook_silent(session, t, now)
    raise ValueError(finding)


def _day(session: AsyncSession, column: Any) -> Any:
    if session.get_bind().dialect.name == "sqlite":
        return func.date(column)
    return cast(column, Date)


def _day_text(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)[:10]


async def read_affected(rt: Runtime, finding: str, since: datetime | None, t: Thresholds,
                        listed: int | None = LISTED) -> AffectedReport:
    """Two statements in one session: the `listed` most recently affected users (every one with None),
    and the count per UTC day they got the finding, whose sum is the count."""
    now = rt.clock.now()
    async with rt.sessions() as session:
        chosen = await selection_for(session, finding, t, now)
        if chosen is None:
            return AffectedReport(finding, 0, since, [], [])
        where = chosen.where if since is None else and_(chosen.where, chosen.since >= since)
        query = (select(User.id, User.email, StravaConnection.athlete_id if chosen.athlete_id is None
                        else chosen.athlete_id, chosen.since, chosen.last_change)
                 .select_from(chosen.source).where(where).order_by(chosen.since.desc(), User.id.desc()))
        rows = (await session.execute(query if listed is None else query.limit(listed))).all()
        day = _day(session, chosen.since)
        days = (await session.execute(select(day, func.count()).select_from(chosen.source).where(where)
                                      .group_by(day).order_by(day))).all()
    users = [AffectedUser(email, athlete, _aware(at), _aware(last or at), user_id)
             for user_id, email, athlete, at, last in rows if at is not None]
    count = sum(int(n) for _, n in days)  # the per-day counts are every match: no third pass to count them
    return AffectedReport(finding, count, since, users, [(_day_text(d), int(n)) for d, n in days if d])


async def top_reasons(rt: Runtime, finding: str, since: datetime | None, t: Thresholds,
                      limit: int = 3) -> list[tuple[str, int]]:
    """The most common reasons (status reason, granted scopes, attempt outcome, error class) among
    the users with `finding` since `since`, most common first."""
    async with rt.sessions() as session:
        chosen = await selection_for(session, finding, t, rt.clock.now())
        if chosen is None or chosen.reason is None:
            return []
        where = chosen.where if since is None else and_(chosen.where, chosen.since >= since)
        rows = (await session.execute(select(chosen.reason, func.count()).select_from(chosen.source).where(where)
                                      .group_by(chosen.reason).order_by(func.count().desc()).limit(limit))).all()
    return [(str(reason) if reason else "none recorded", int(n)) for reason, n in rows]


async def still_affected(session: AsyncSession, chosen: Selection, user_id: int) -> bool:
    """Whether one user is still selected (a bulk run checks each user just before their link)."""
    found = await session.execute(select(User.id).select_from(chosen.source).where(chosen.where, User.id == user_id)
                                  .limit(1))
    return found.first() is not None


def _aware(value: Any) -> datetime:
    """Coalesced columns lose the UTC type decorator on the way back: make them aware again."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parse_since(raw: str | None) -> datetime | None:
    """`--since` / `since=`: an ISO 8601 date or time (UTC when no offset is given). Raises ValueError."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    if len(text) > 40:
        raise ValueError("since is too long to be a time")
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@raises_only_support_error  # failures leave as SupportError only (service/desk/boundary.py)
class AffectedOps:
    """`desk.affected`: who has a finding now (reads only)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def report(self, finding: str, since: str | datetime | None = None) -> AffectedReport:
        """Users who have `finding` now (one of AFFECTED_FINDINGS), optionally only those who got it
        at or after `since`. Raises SupportError `bad_argument` (exit 2) for anything else."""
        from service.desk.observations import thresholds_from

        if finding not in AFFECTED_FINDINGS:
            raise SupportError("bad_argument", f"`affected` knows the findings {', '.join(AFFECTED_FINDINGS)}; "
                               f"not {finding[:60]!r}")
        try:
            when = since if isinstance(since, datetime) else parse_since(since)
        except (ValueError, OverflowError):  # OverflowError: an offset past year 1 or 9999 in UTC
            raise SupportError("bad_argument", "since must be an ISO 8601 date or time, e.g. 2026-11-27 or "
                               "2026-11-27T08:00:00Z") from None
        return await read_affected(self.rt, finding, when, thresholds_from(self.rt.settings))
