"""Strava tokens on a connection row: encrypted on the way in, decrypted only where a call needs them."""

from __future__ import annotations

from service.core.crypto import TokenCipher
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
