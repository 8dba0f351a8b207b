"""Browser-facing routes that change state accept only requests sent from our own pages.

A page elsewhere can make a visitor's browser post a form to us (cross-site request forgery): a
Connect link token of the attacker's, say, so that the victim's Strava ends up in the attacker's
FitGlue account. Browsers say where a request comes from: ``Sec-Fetch-Site`` (every current
browser) and ``Origin`` (every POST; ``null`` when the page's referrer policy hides it, as ours
does). Where neither tells, a form token proves the form was ours: our page sets a random value in
an HttpOnly, SameSite=Lax cookie (which browsers do not send on another site's POST) and an HMAC of
it in the form, which another site can neither read nor compute.

Server-to-server routes (Strava's webhook, Slack, the admin API) are authenticated by signature or
bearer token instead, and the OAuth callback, a cross-site GET by nature, by its state and cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from functools import lru_cache

from aiohttp import web
from multidict import MultiMapping
from yarl import URL

from service.core.crypto import constant_time_equals, derive_key
from service.core.settings import Settings, reveal

FORM_COOKIE = "fitglue_form"
FORM_FIELD = "form_token"
_NONCE_BYTES = 24
_MAX_NONCE_LENGTH = 64
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")  # one we could have issued (token_urlsafe)


def cookie_name(name: str, settings: Settings) -> str:
    """``__Host-`` + name behind https: browsers then accept the cookie only from this very host
    (Secure, Path=/, no Domain), so a sibling subdomain cannot plant a value we would reuse."""
    return f"__Host-{name}" if settings.secure_cookies else name


def set_browser_cookie(response: web.StreamResponse, settings: Settings, name: str, value: str,
                       max_age: int | None = None) -> None:
    """An HttpOnly, SameSite=Lax cookie for the whole site (Secure behind https)."""
    response.set_cookie(cookie_name(name, settings), value, max_age=max_age, path="/", httponly=True, samesite="Lax",
                        secure=settings.secure_cookies)


def read_browser_cookie(request: web.Request, settings: Settings, name: str) -> str | None:
    return request.cookies.get(cookie_name(name, settings))


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` as browsers write it in ``Origin`` (default ports left out)."""
    parsed = URL(url)
    return str(parsed.origin()).lower()


def cross_site_reason(headers: MultiMapping[str], public_url: str, form_token_valid: bool) -> str | None:
    """None when the request comes from our own page; otherwise why we cannot believe that.

    An explicit cross-site signal always refuses, even with a form token.
    """
    fetch_site = (headers.get("Sec-Fetch-Site") or "").strip().lower()
    origin = (headers.get("Origin") or "").strip().lower()
    if fetch_site == "cross-site":
        return "the browser says the form was sent from another website"
    if fetch_site in ("same-origin", "none"):  # "none": typed or bookmarked by the person themselves
        return None
    if origin and origin != "null":
        if origin == origin_of(public_url):
            return None
        return f"the form was sent from {origin[:100]}, not from FitGlue"
    # Same-site (a sibling host), an old browser, or Origin hidden by a referrer policy: our form token decides.
    if form_token_valid:
        return None
    return "the request carried no sign that it came from FitGlue's own page"


@lru_cache(maxsize=8)
def _form_keys(secret_keys: tuple[str, ...]) -> tuple[bytes, ...]:
    return tuple(derive_key(key, "fitglue connect form") for key in secret_keys)


def _keys(settings: Settings) -> tuple[bytes, ...]:
    current = reveal(settings.secret_key) or ""
    return _form_keys((current, *(key.get_secret_value() for key in settings.previous_secret_keys)))


def _mac(key: bytes, nonce: str) -> str:
    return base64.urlsafe_b64encode(hmac.new(key, nonce.encode(), hashlib.sha256).digest()).decode().rstrip("=")


def form_nonce(request: web.Request, settings: Settings) -> str:
    """This browser's form nonce: the one its cookie already holds (other tabs keep working), or a new one."""
    existing = read_browser_cookie(request, settings, FORM_COOKIE) or ""
    return existing if _NONCE.fullmatch(existing) else secrets.token_urlsafe(_NONCE_BYTES)


def form_token(settings: Settings, nonce: str) -> str:
    """The hidden-field value our page puts beside the cookie holding ``nonce``."""
    return _mac(_keys(settings)[0], nonce)


def form_token_valid(settings: Settings, nonce: str | None, token: str | None) -> bool:
    """The form's token matches this browser's cookie (under the current or a previous key)."""
    if not nonce or not token or len(nonce) > _MAX_NONCE_LENGTH or len(token) > 100:
        return False
    return any(constant_time_equals(_mac(key, nonce), token) for key in _keys(settings))


def set_form_cookie(response: web.StreamResponse, settings: Settings, nonce: str) -> None:
    # A session cookie: it only has to outlive the page that carries its token.
    set_browser_cookie(response, settings, FORM_COOKIE, nonce)


def refusal(request: web.Request, settings: Settings, form_token_value: str | None) -> str | None:
    """Why this state-changing browser request is refused, or None when it came from our page."""
    valid = form_token_valid(settings, read_browser_cookie(request, settings, FORM_COOKIE), form_token_value)
    return cross_site_reason(request.headers, settings.public_url, valid)
