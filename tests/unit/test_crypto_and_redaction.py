from __future__ import annotations

import logging

import pytest

from service.core.crypto import BadSignature, DecryptionError, Signer, TokenCipher
from service.core.logs import SecretScrubber
from service.core.redact import redact_url, scrub_text


def test_tokens_encrypt_and_survive_a_key_rotation():
    old = TokenCipher("old-key")
    stored = old.encrypt("access-123")
    assert "access-123" not in stored
    rotating = TokenCipher("new-key", ("old-key",))
    assert rotating.decrypt(stored) == "access-123"
    rewritten = rotating.rotate(stored)
    assert TokenCipher("new-key").decrypt(rewritten) == "access-123"
    with pytest.raises(DecryptionError):
        TokenCipher("new-key").decrypt(stored)


def test_signed_tokens_reject_tampering_and_foreign_keys():
    token = Signer("k").sign({"lid": "abc", "exp": 1})
    assert Signer("k2", ("k",)).verify(token) == {"lid": "abc", "exp": 1}
    for bad in (token[:-3] + "xyz", "", "not.a.token", Signer("other").sign({"lid": "abc", "exp": 1})):
        with pytest.raises(BadSignature):
            Signer("k").verify(bad)


def test_link_and_encryption_keys_differ():
    # same secret, different purposes: a link signature must not verify as another purpose's
    token = Signer("k", purpose="connect-link").sign({"a": 1})
    with pytest.raises(BadSignature):
        Signer("k", purpose="other").verify(token)


def test_redact_url_hides_client_secret_and_tokens():
    url = "https://www.strava.com/api/v3/push_subscriptions?client_id=5&client_secret=s3cr3t&x=1"
    assert "s3cr3t" not in redact_url(url) and "client_id=5" in redact_url(url) and "x=1" in redact_url(url)
    assert redact_url("http://h/connect/strava?t=abc.def.ghi") == "http://h/connect/strava?t=REDACTED"


def test_scrub_text_removes_bearer_and_key_values():
    text = 'Authorization: Bearer abc123def and refresh_token=zzz999 {"client_secret": "qq11qq"}'
    scrubbed = scrub_text(text, ("qq11qq",))
    assert "abc123def" not in scrubbed and "zzz999" not in scrubbed and "qq11qq" not in scrubbed


def test_log_scrubber_cleans_messages_and_tracebacks():
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "token %s", ("my-secret-value",), None)
    try:
        raise RuntimeError("leak my-secret-value")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    SecretScrubber(("my-secret-value",)).filter(record)
    assert "my-secret-value" not in record.getMessage() and "my-secret-value" not in (record.exc_text or "")
