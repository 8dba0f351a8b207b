"""The one Strava client: a shared aiohttp session, bases from STRAVA_OAUTH_URL / STRAVA_API_URL.

The OAuth 2.0 authorize URI and token-request bodies are plain form encoding (urllib.parse); the
exchange itself goes through the same session, hooks and error mapping as every other call. Each response is shown to `hooks.after_response` (the rate-limit ledger reads its headers);
`hooks.before_call` lets the caller hold background work back when the budget is nearly spent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlencode

import aiohttp

from service.core.clock import Clock, from_epoch
from service.core.http_answers import read_at_most
from service.core.inputs import BadInput, parse_json
from service.core.redact import redact_url
from service.strava.errors import StravaError, StravaRequestError, Transient, classify

log = logging.getLogger(__name__)
# Strava's answers (a token grant, an activity, a subscription list) are JSON of a few kilobytes; an
# activity with every segment effort stays well under a megabyte. Anything past this is not read.
MAX_ANSWER_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    refresh_token: str
    expires_at_epoch: int
    athlete: Mapping[str, Any] | None = None

    @property
    def expires_at(self) -> datetime:
        return from_epoch(self.expires_at_epoch)

    def __repr__(self) -> str:  # never print tokens, even in a debugger or traceback
        return f"TokenGrant(expires_at_epoch={self.expires_at_epoch}, athlete={bool(self.athlete)})"


class StravaHooks(Protocol):
    async def before_call(self, path: str, interactive: bool) -> None: ...

    async def after_response(self, method: str, path: str, status: int, headers: Mapping[str, str]) -> None: ...


class NoHooks:
    async def before_call(self, path: str, interactive: bool) -> None:
        return None

    async def after_response(self, method: str, path: str, status: int, headers: Mapping[str, str]) -> None:
        return None


class StravaClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        oauth_url: str,
        api_url: str,
        client_id: str,
        client_secret: str,
        clock: Clock,
        hooks: StravaHooks | None = None,
        timeout_s: float = 15.0,
    ) -> None:
        self._session = session
        self.oauth_url = oauth_url.rstrip("/")
        self.api_url = api_url.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.clock = clock
        self.hooks: StravaHooks = hooks or NoHooks()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    # ---- OAuth -----------------------------------------------------------------------------

    def authorize_url(self, redirect_uri: str, state: str, scopes: tuple[str, ...]) -> str:
        # Strava wants comma-separated scopes (RFC 6749 would join them with spaces).
        query = urlencode({
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": ",".join(scopes),
            "state": state,
            "approval_prompt": "force",
        })
        return f"{self.oauth_url}/authorize?{query}"

    async def exchange_code(self, code: str) -> TokenGrant:
        body = self._token_request_body(grant_type="authorization_code", code=code)
        data = await self._oauth_post("/token", body, "code exchange")
        return self._grant(data, with_athlete=True)

    async def refresh(self, refresh_token: str) -> TokenGrant:
        body = self._token_request_body(grant_type="refresh_token", refresh_token=refresh_token)
        data = await self._oauth_post("/token", body, "token refresh")
        return self._grant(data, with_athlete=False)

    def _token_request_body(self, **params: str) -> str:
        """The form body of a POST to /oauth/token (RFC 6749 4.1.3 and 6), client credentials included."""
        return urlencode({**params, "client_id": self.client_id, "client_secret": self._client_secret})

    async def deauthorize(self, access_token: str) -> None:
        await self._request(
            "POST",
            f"{self.oauth_url}/deauthorize",
            "/oauth/deauthorize",
            "deauthorize",
            headers={"Authorization": f"Bearer {access_token}"},
            interactive=True,
        )

    # ---- REST ----------------------------------------------------------------------------

    async def get_athlete(self, access_token: str, interactive: bool = False) -> dict[str, Any]:
        return await self._api("GET", "/athlete", access_token, "athlete", interactive=interactive)

    async def get_activity(self, access_token: str, activity_id: int, interactive: bool = False) -> dict[str, Any]:
        return await self._api("GET", f"/activities/{int(activity_id)}", access_token, "activity",
                               interactive=interactive)

    async def list_activities(
        self, access_token: str, after_epoch: int | None = None, page: int = 1, per_page: int = 100
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"page": page, "per_page": per_page}
        if after_epoch is not None:
            params["after"] = after_epoch
        result = await self._api("GET", "/athlete/activities", access_token, "activity list", params=params)
        return list(result) if isinstance(result, list) else []

    # ---- push subscriptions (app credentials; the secret rides in the query: never logged raw)

    async def list_subscriptions(self, interactive: bool = True) -> list[dict[str, Any]]:
        result = await self._request(
            "GET", f"{self.api_url}/push_subscriptions", "/push_subscriptions", "subscription list",
            params=self._app_credentials(), interactive=interactive,
        )
        return list(result) if isinstance(result, list) else []

    async def create_subscription(self, callback_url: str, verify_token: str) -> int:
        result = await self._request(
            "POST", f"{self.api_url}/push_subscriptions", "/push_subscriptions", "subscription create",
            data={**self._app_credentials(), "callback_url": callback_url, "verify_token": verify_token},
            interactive=True, timeout=aiohttp.ClientTimeout(total=30),
        )
        if not isinstance(result, dict) or "id" not in result:
            raise Transient("subscription create: Strava's answer carried no subscription id", None)
        return int(result["id"])

    async def delete_subscription(self, subscription_id: int) -> None:
        await self._request(
            "DELETE", f"{self.api_url}/push_subscriptions/{int(subscription_id)}", "/push_subscriptions",
            "subscription delete", params=self._app_credentials(), interactive=True,
        )

    # ---- plumbing --------------------------------------------------------------------------

    def _app_credentials(self) -> dict[str, str]:
        return {"client_id": self.client_id, "client_secret": self._client_secret}

    def _grant(self, data: Any, with_athlete: bool) -> TokenGrant:
        """Strava's 200 from /oauth/token as a grant: two non-empty token strings and `expires_at`, a
        whole number of Unix seconds (reference strava-api.md 1.4). Anything else is Transient, so the
        caller keeps the refresh token it has instead of storing junk (`str(None)` was once "None")."""
        fields = data if isinstance(data, Mapping) else {}
        access, refresh, expires = (fields.get(k) for k in ("access_token", "refresh_token", "expires_at"))
        if not (isinstance(access, str) and access and isinstance(refresh, str) and refresh
                and isinstance(expires, int) and not isinstance(expires, bool) and expires > 0):
            raise Transient("token response from Strava was incomplete", 200)
        try:
            from_epoch(expires)  # beyond year 9999 (or the platform's range): not a time we can store
        except (OverflowError, OSError, ValueError):
            raise Transient("token response from Strava had an impossible expiry", 200) from None
        return TokenGrant(access_token=access, refresh_token=refresh, expires_at_epoch=expires,
                          athlete=fields.get("athlete") if with_athlete else None)

    async def _oauth_post(self, path: str, body: str, context: str) -> Any:
        return await self._request(
            "POST", f"{self.oauth_url}{path}", f"/oauth{path}", context,
            data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}, interactive=True,
        )

    async def _api(self, method: str, path: str, access_token: str, context: str, *,
                   params: Mapping[str, Any] | None = None, interactive: bool = False) -> Any:
        return await self._request(
            method, f"{self.api_url}{path}", path, context, params=params,
            headers={"Authorization": f"Bearer {access_token}"}, interactive=interactive,
        )

    async def _request(
        self,
        method: str,
        url: str,
        path: str,
        context: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        interactive: bool = False,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> Any:
        await self.hooks.before_call(path, interactive)
        try:
            # Strava's API does not redirect; followed, a 307/308 would resend the body (client secret,
            # refresh token) to wherever Location points. A 3xx is an error like any other non-2xx.
            async with self._session.request(
                method, url, params=params, data=data, headers=headers, timeout=timeout or self._timeout,
                allow_redirects=False,
            ) as response:
                status = response.status
                await self.hooks.after_response(method, path, status, response.headers)
                raw = await read_at_most(response, MAX_ANSWER_BYTES)
        except TimeoutError:
            raise Transient(f"{context}: Strava did not answer in time") from None
        except aiohttp.ClientError as exc:
            # The exception text may quote the URL, and with it the client secret.
            log.warning("Strava %s %s failed: %s", method, redact_url(url), type(exc).__name__)
            raise Transient(f"{context}: could not reach Strava ({type(exc).__name__})") from None
        if raw is None:
            log.warning("Strava %s %s answered HTTP %s with more than %d bytes; not read", method, redact_url(url),
                        status, MAX_ANSWER_BYTES)
            raise StravaRequestError(f"{context}: Strava's answer was too large to read", status)
        body: Any = None
        if raw:
            try:
                body = parse_json(raw)
            except BadInput:
                body = None
        if 200 <= status < 300:
            return body
        error: StravaError = classify(status, body, context)
        log.info("Strava %s %s -> %s", method, redact_url(url), error.summary)
        raise error
