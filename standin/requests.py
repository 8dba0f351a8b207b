"""Reading Strava-style parameters from a request: query string and form body alike."""

from __future__ import annotations

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from service.core.inputs import BadInput, parse_id
from service.core.request_bodies import form_fields
from service.core.same_site import sent_by_another_site

# The stand-in's own pages (consent, athlete controls) post forms that change its state; like any
# site it refuses them when they come from elsewhere (service.core.same_site).
__all__ = ["all_params", "bearer_token", "path_id", "sent_by_another_site"]


async def all_params(request: web.Request) -> MultiDictProxy[str]:
    """Query parameters followed by form fields (urlencoded or multipart bodies, as Strava takes
    both; files are ignored), read the way every route of ours reads a form (service.core.request_bodies)."""
    merged: MultiDict[str] = MultiDict(request.query)
    merged.extend(await form_fields(request))
    return MultiDictProxy(merged)


def path_id(raw: str) -> int | None:
    """An id from a path or a form (activity, athlete), by service.core.inputs' rule; None when it is not one."""
    try:
        return parse_id(raw, "id")
    except BadInput:
        return None


def bearer_token(request: web.Request, params: MultiDictProxy[str] | None = None) -> str | None:
    """``Authorization: Bearer …``, else an ``access_token`` parameter (undocumented, but works)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    source = params if params is not None else request.query
    return source.get("access_token") or None
