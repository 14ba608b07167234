"""Sending a whole, small answer from a plain ASGI layer (the edge, authentication, faults)."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import Send

from vapixlog.edge.headers import hardened

Headers = Sequence[tuple[bytes, bytes]]


async def send_answer(
    send: Send, status: int, body: bytes, content_type: bytes, headers: Headers = ()
) -> None:
    """One response with its length, never cached, hardened (`vapixlog.edge.headers`)."""
    all_headers = hardened(
        [
            *headers,
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
        ]
    )
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})
