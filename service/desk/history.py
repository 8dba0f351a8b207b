"""One user's history: a merged timeline, newest first, of everything that happened to their
Strava connection (`fitglue history`, `/fitglue history`, `GET /admin/api/users/{who}/history`).

Each kind lives in its own table (`history_sources`); every source is read with one indexed,
bounded query — its newest `limit + 1` rows older than the cursor — and the sources are merged
here. A page therefore costs a handful of index range scans whatever the user's history holds
(10,000 webhook events included), and never a per-row look-up.

Order and paging: entries are ordered by (time, source, row id), newest first. The cursor
`next_before` names the last entry of a page as `<microseconds since the epoch>-<source>-<row id>`;
the next page is everything strictly older. It is opaque to callers and checked strictly.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.inputs import MAX_ROW_ID, BadInput, parse_who
from service.core.runtime import Runtime
from service.db.models import StravaConnection, User
from service.desk.boundary import raises_only_support_error
from service.desk.error_table import SupportError
from service.desk.history_sources import SOURCES, Cursor, HistoryEntry, Subject

__all__ = ["HISTORY_KINDS", "HistoryPage", "parse_history_cursor", "read_history"]

# Every kind an entry can have (DESIGN.md part 2, "history"); event_delivery once outbound events exist.
HISTORY_KINDS: tuple[str, ...] = ("link_issued", "oauth_attempt", "scopes_changed", "refresh_ok", "refresh_failed",
                                  "webhook_event", "job", "status_changed", "agent_action", "event_delivery")
DEFAULT_LIMIT = 50
_CURSOR = re.compile(r"([0-9]{1,19})-([0-9])-([0-9]{1,19})")


@dataclass(frozen=True)
class HistoryPage:
    email: str
    entries: list[HistoryEntry]
    next_before: str | None  # the cursor of the next page; None on the last one

    def to_dict(self) -> dict[str, Any]:
        return {"entries": [e.to_dict() for e in self.entries], "next_before": self.next_before}


def format_cursor(entry: HistoryEntry) -> str:
    micros = int(entry.at.timestamp()) * 1_000_000 + entry.at.microsecond
    return f"{micros}-{entry.source}-{entry.row_id}"


def parse_history_cursor(raw: str | None, name: str = "before") -> Cursor | None:
    """A `before` cursor as `next_before` gave it; missing or empty: None. Raises BadInput."""
    if raw is None or raw == "":
        return None
    match = _CURSOR.fullmatch(raw.strip())
    # Row ids are our tables' (1..2^31-1; a link's place in its instant is below that too): a larger
    # one is tampering, and no database may see it (SQLite overflows, PostgreSQL's int4 refuses it).
    if (match is None or int(match.group(2)) >= len(SOURCES) or int(match.group(1)) > 253_402_300_799_999_999
            or int(match.group(3)) > MAX_ROW_ID):
        raise BadInput(f"{name} must be a cursor as `next_before` gave it (e.g. 1764424980000000-0-42)")
    micros, source, row_id = (int(g) for g in match.groups())
    at = datetime.fromtimestamp(micros // 1_000_000, tz=UTC).replace(microsecond=micros % 1_000_000)
    return Cursor(at, source, row_id)


async def _subject(session: AsyncSession, who: str) -> Subject | None:
    """The user named by `who` and their athlete id, in one statement."""
    parsed = parse_who(who)
    query = select(User.id, User.email, StravaConnection.athlete_id).outerjoin(
        StravaConnection, StravaConnection.user_id == User.id)
    if parsed.email is not None:
        query = query.where(User.email_normalized == parsed.email)
    else:
        query = query.where(StravaConnection.athlete_id == parsed.athlete_id)
    found = (await session.execute(query)).first()
    return Subject(found[0], found[1], found[2]) if found is not None else None


async def read_history(rt: Runtime, who: str, limit: int = DEFAULT_LIMIT,
                       before: Cursor | None = None) -> HistoryPage | None:
    """A page of `who`'s history (an e-mail or athlete id; BadInput when it is neither), newest
    first; None for a well-formed `who` that matches no user. Reads only, in one session."""
    parse_who(who)  # a malformed WHO is refused before the database is touched
    async with rt.sessions() as session:
        subject = await _subject(session, who)
        if subject is None:
            return None
        streams = [await source.read(session, subject, limit + 1, before) for source in SOURCES]
    merged = list(heapq.merge(*streams, key=lambda e: e.sort_key, reverse=True))
    page = merged[:limit]
    more = len(merged) > limit
    return HistoryPage(subject.email, page, format_cursor(page[-1]) if more and page else None)


@raises_only_support_error  # failures leave as SupportError only (service/desk/boundary.py)
class HistoryOps:
    """`desk.history`: one user's history (reads only, so nothing is audited here)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def page(self, who: str, limit: int = DEFAULT_LIMIT, before: str | Cursor | None = None) -> HistoryPage:
        """A page of `who`'s history, newest first. `before` is a previous page's `next_before`.
        Raises SupportError `bad_argument` (exit 2) for a malformed `who` or cursor, `unknown_user`
        for a well-formed one that matches nobody."""
        try:
            cursor = parse_history_cursor(before) if isinstance(before, str | None) else before
            page = await read_history(self.rt, who, limit, cursor)
        except BadInput as exc:
            raise SupportError("bad_argument", str(exc)) from None
        if page is None:
            raise SupportError("unknown_user", f"no FitGlue user is {who}")
        return page
