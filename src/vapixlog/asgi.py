"""Sending a whole, small answer from a plain ASGI layer (the edge, authentication)."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import Send

Headers = Sequence[tuple[bytes, bytes]]


async def send_answer(
    send: Send, status: int, body: bytes, content_type: bytes, headers: Headers = ()
) -> None:
    """One response with its length, never cached."""
    all_headers = [
        *headers,
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})
