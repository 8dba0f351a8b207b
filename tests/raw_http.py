"""A raw HTTP/1.1 client over asyncio streams, for what aiohttp's client will not do: send a body
in pieces with pauses between them, or send part of a body and then nothing."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def server_address(client: Any) -> tuple[str, int]:
    """(host, port) of an aiohttp TestClient's or TestServer's server."""
    server = getattr(client, "server", client)
    return server.host, server.port


async def _read_response(reader: asyncio.StreamReader) -> RawResponse:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        body = await reader.read()
    return RawResponse(status, headers, body)


async def send(address: tuple[str, int], method: str, path: str, pieces: list[bytes], *,
               headers: dict[str, str] | None = None, chunked: bool = False, pause_s: float = 0.005,
               content_length: int | None = None, finish: bool = True, answer_within_s: float = 15
               ) -> RawResponse:
    """Send the request head, then each piece of the body with `pause_s` between them.

    `Content-Length` is the total of the pieces (or `content_length`), unless `chunked`. With
    `finish=False` the body is left incomplete: the pieces are sent and then nothing more, as a
    slow-drip client does. Waits at most `answer_within_s` for the answer.
    """
    host, port = address
    reader, writer = await asyncio.open_connection(host, port)
    try:
        sent = {"Host": f"{host}:{port}", "Connection": "close", **(headers or {})}
        if chunked:
            sent["Transfer-Encoding"] = "chunked"
        else:
            sent["Content-Length"] = str(content_length if content_length is not None
                                         else sum(len(p) for p in pieces))
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in sent.items()) + "\r\n"
        writer.write(head.encode("latin-1"))
        for index, piece in enumerate(pieces):
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
            await writer.drain()
            if index < len(pieces) - 1:
                await asyncio.sleep(pause_s)  # the pieces must arrive apart, as on a real network
        if chunked and finish:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        return await asyncio.wait_for(_read_response(reader), answer_within_s)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def halves(body: bytes, first: int = 60) -> list[bytes]:
    """The body as two pieces: the first `first` bytes and the rest."""
    return [body[:first], body[first:]]
