"""The answers the authentication layer sends itself: 401 challenges, 429 while failed
logins are throttled, and the 403 of a blocked address. Under `/config/` they speak the DCA
envelope, elsewhere plain text (the CGIs' dialect); the block answers as Apache does."""

from __future__ import annotations

import orjson
from starlette.types import Send

from vapixlog.edge.answers import Headers, send_answer

_CONFIG_PREFIX = "/config/"

# What Apache answers a blocked address (mod_evasive's 403).
_FORBIDDEN = (
    b'<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
    b"<title>403 Forbidden</title>\n</head><body>\n<h1>Forbidden</h1>\n"
    b"<p>You don't have permission to access this resource.</p>\n</body></html>\n"
)


async def send_error(
    send: Send, kind: str, path: str, *, status: int, code: int, message: str, headers: Headers = ()
) -> None:
    """An error in the dialect of `path`: the DCA envelope with `code`, or text."""
    if path.startswith(_CONFIG_PREFIX):
        error = {"status": "error", "error": {"code": code, "message": message}}
        body, ctype = orjson.dumps(error), b"application/json"
    else:
        body, ctype = message.encode() + b"\n", b"text/plain; charset=utf-8"
    await _send(send, kind, status, body, ctype, headers)


async def send_blocked(send: Send, kind: str) -> None:
    """403 for an address the brute-force protection blocks, on every path."""
    await _send(send, kind, 403, _FORBIDDEN, b"text/html; charset=iso-8859-1", ())


async def _send(
    send: Send, kind: str, status: int, body: bytes, ctype: bytes, headers: Headers
) -> None:
    if kind == "websocket":
        # Before accept, a close makes the server answer 403; a websocket handshake cannot
        # carry a challenge or a body without an extension, so keep it simple.
        await send({"type": "websocket.close", "code": 1008})
        return
    await send_answer(send, status, body, ctype, headers)
