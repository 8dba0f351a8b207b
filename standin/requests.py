"""Reading Strava-style parameters from a request: query string and form body alike."""

from __future__ import annotations

import email.parser
import email.policy

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from service.core.inputs import BadInput, parse_id


async def _multipart_fields(request: web.Request) -> list[tuple[str, str]]:
    """The text fields of a multipart/form-data body (files are ignored).

    Parsed from the body the app's body reader has already read in full (service.core.request_bodies), so
    the stream aiohttp's own multipart reader would need is spent; the standard library's MIME
    parser reads the bytes instead.
    """
    head = f"Content-Type: {request.headers.get('Content-Type', '')}\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + await request.read())
    if not message.is_multipart():
        return []
    fields = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str) and part.get_filename() is None:
            content = part.get_content()
            fields.append((name, content if isinstance(content, str) else content.decode("utf-8", "replace")))
    return fields


async def all_params(request: web.Request) -> MultiDictProxy[str]:
    """Query parameters followed by form fields (form or multipart bodies; files are ignored)."""
    merged: MultiDict[str] = MultiDict(request.query)
    if request.body_exists and request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, str):
                merged.add(key, value)
    elif request.body_exists and request.content_type == "multipart/form-data":
        for key, value in await _multipart_fields(request):
            merged.add(key, value)
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


def sent_by_another_site(request: web.Request) -> bool:
    """A browser says this form was posted from a page on another site.

    The stand-in's own pages (consent, athlete controls) post forms that change its state; like
    any site it refuses them when they come from elsewhere. Requests that carry neither header
    (scripts, tests, a service calling it) are not a browser's, and pass.
    """
    fetch_site = (request.headers.get("Sec-Fetch-Site") or "").lower()
    if fetch_site in ("same-origin", "none"):
        return False
    if fetch_site == "cross-site":
        return True
    origin = (request.headers.get("Origin") or "").lower()
    return bool(origin) and origin != "null" and origin != f"{request.scheme}://{request.host}".lower()
