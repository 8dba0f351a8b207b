"""Strava tokens on a connection row: encrypted on the way in, decrypted only where a call needs them."""

from __future__ import annotations

from sqlalchemy import select

from service.core.crypto import DecryptionError, TokenCipher
from service.core.runtime import Runtime
from service.db.models import StravaConnection
from service.strava import TokenGrant


def store_grant(conn: StravaConnection, grant: TokenGrant, cipher: TokenCipher) -> None:
    # Always persist what came back: Strava may rotate the refresh token, and the old one dies at once.
    conn.access_token_enc = cipher.encrypt(grant.access_token)
    conn.refresh_token_enc = cipher.encrypt(grant.refresh_token)
    conn.expires_at = grant.expires_at


def drop_tokens(conn: StravaConnection) -> None:
    conn.access_token_enc = None
    conn.refresh_token_enc = None
    conn.expires_at = None


def access_token(conn: StravaConnection, cipher: TokenCipher) -> str | None:
    return cipher.decrypt(conn.access_token_enc) if conn.access_token_enc else None


def refresh_token(conn: StravaConnection, cipher: TokenCipher) -> str | None:
    return cipher.decrypt(conn.refresh_token_enc) if conn.refresh_token_enc else None


async def reencrypt_all_tokens(rt: Runtime, batch: int = 500) -> tuple[int, int]:
    """Re-encrypt every stored token under the current FITGLUE_SECRET_KEY, `batch` rows per
    transaction (rows locked while they change); (connections rotated, connections whose tokens no
    configured key can read)."""
    rotated = unreadable = 0
    last_id = 0
    while True:
        async with rt.sessions() as session, session.begin():
            rows = (await session.execute(
                select(StravaConnection).where(StravaConnection.id > last_id).order_by(StravaConnection.id)
                .limit(batch).with_for_update())).scalars().all()
            if not rows:
                return rotated, unreadable
            for conn in rows:
                last_id = conn.id
                try:
                    if conn.access_token_enc:
                        conn.access_token_enc = rt.cipher.rotate(conn.access_token_enc)
                    if conn.refresh_token_enc:
                        conn.refresh_token_enc = rt.cipher.rotate(conn.refresh_token_enc)
                    rotated += 1 if conn.refresh_token_enc else 0
                except DecryptionError:
                    unreadable += 1
