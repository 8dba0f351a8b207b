"""What issue 13 adds to SupportDesk: one user's history, who has a finding, and Connect links for
all of them. Mixed into the desk (`SupportDesk(SupportViews)`), so the bot, the CLI and the admin
API keep one flat API and the desk's boundary (`raises_only_support_error`) covers these methods too;
the work lives in `history.py`, `affected.py` and `bulk_links.py`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from service.connections import history_log
from service.db.models import StravaConnection
from service.desk.affected import AffectedDesk
from service.desk.bulk_links import BulkLinksDesk
from service.desk.history import HistoryDesk
from troubleshooting.vocabulary import ConnectionStatus


class SupportViews(HistoryDesk, AffectedDesk, BulkLinksDesk):
    """`history`, `affected`, `start_bulk_links`, `bulk_run`, `send_bulk_links`."""


def note_disconnect(session: AsyncSession, conn: StravaConnection, now: datetime, actor: str) -> None:
    """The history entry of a disconnect, in its transaction (before the row's status changes)."""
    history_log.record_status_change(session, conn.user_id, now, conn.status, ConnectionStatus.NOT_CONNECTED,
                                     f"disconnected by {actor}")
