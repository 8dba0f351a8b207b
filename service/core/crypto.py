"""Encryption of Strava tokens at rest and signing of Connect links, keyed from FITGLUE_SECRET_KEY.

Each purpose derives its own key with HKDF, so the signing key and the encryption key never
coincide. Previous keys (FITGLUE_PREVIOUS_SECRET_KEYS) still decrypt and verify during a rotation;
new writes always use the current key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets as _secrets
import string

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OctKey


def derive_key(secret: str, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"fitglue", info=purpose.encode()).derive(
        secret.encode()
    )


def generate_secret() -> str:
    return _secrets.token_urlsafe(32)


def generate_events_secret() -> str:
    """A Standard Webhooks secret for FITGLUE_EVENTS_SECRET: `whsec_` + base64 of 32 random bytes
    (the specification asks for 24 to 64)."""
    return "whsec_" + base64.b64encode(_secrets.token_bytes(32)).decode()


ALPHANUMERIC = string.ascii_letters + string.digits


def random_alphanumeric(length: int) -> str:
    """`length` characters drawn uniformly from A-Z, a-z, 0-9 by the OS's CSPRNG (~5.95 bits each).

    For values that travel in URLs and cookies unquoted (OAuth state, browser secrets) and are
    checked against that alphabet when they come back.
    """
    return "".join(_secrets.choice(ALPHANUMERIC) for _ in range(length))


def digest(value: str) -> str:
    """A one-way fingerprint for looking up single-use values (OAuth state) without storing them."""
    return hashlib.sha256(value.encode()).hexdigest()


class DecryptionError(Exception):
    """Stored ciphertext no current or previous key can open (wrong or rotated-away key)."""


class TokenCipher:
    def __init__(self, current_key: str, previous_keys: tuple[str, ...] = ()) -> None:
        fernets = [
            Fernet(base64.urlsafe_b64encode(derive_key(key, "fitglue token encryption")))
            for key in (current_key, *previous_keys)
        ]
        self._multi = MultiFernet(fernets)

    def encrypt(self, plaintext: str) -> str:
        return self._multi.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._multi.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise DecryptionError("stored token cannot be decrypted with the configured keys") from None

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt under the current key (used by `fitglue rotate-keys`)."""
        try:
            return self._multi.rotate(ciphertext.encode()).decode()
        except InvalidToken:
            raise DecryptionError("stored token cannot be decrypted with the configured keys") from None


class BadSignature(Exception):
    """A tampered, truncated or foreign token."""


class Signer:
    """Compact JWS (HS256, via joserfc, authlib's JOSE successor) tokens: small JSON claims, verified with the current or a previous key."""

    def __init__(self, current_key: str, previous_keys: tuple[str, ...] = (), purpose: str = "link") -> None:
        self._keys = [
            OctKey.import_key(derive_key(key, f"fitglue signing {purpose}")) for key in (current_key, *previous_keys)
        ]

    def sign(self, claims: dict) -> str:
        payload = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()
        return jws.serialize_compact({"alg": "HS256"}, payload, self._keys[0], algorithms=["HS256"])

    def verify(self, token: str) -> dict:
        if not token or len(token) > 2048:
            raise BadSignature("missing or oversized token")
        for key in self._keys:
            try:
                obj = jws.deserialize_compact(token, key, algorithms=["HS256"])
            except JoseError:
                continue
            except Exception:  # malformed base64/JSON: the parser raises assorted errors
                raise BadSignature("malformed token") from None
            try:
                claims = json.loads(obj.payload)
            except (ValueError, RecursionError):
                raise BadSignature("malformed token") from None
            if not isinstance(claims, dict):
                raise BadSignature("malformed token")
            return claims
        raise BadSignature("signature does not match")


def constant_time_equals(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    # surrogatepass: a header holding bytes that are not UTF-8 reaches us as lone surrogates; it
    # must compare unequal, not raise.
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))
