"""Hardening headers on every response, and the Content-Security-Policy of every HTML page.

Every response gets `X-Content-Type-Options: nosniff` (a log line or a JSON body is never
sniffed into HTML). Every HTML response gets a Content-Security-Policy (the strict one below
unless the page set its own), `X-Frame-Options: DENY` and `Referrer-Policy: no-referrer`. Pages
therefore never carry inline script: their scripts are files of the same origin. These are
stricter than an Axis device's (`SAMEORIGIN`, `strict-origin-when-cross-origin`): recorded in
docs/fidelity.md.

`hardened` is the rule. `SecurityHeaders` applies it to every response of the app it wraps:
the Starlette app of the pages and CGIs (`vapixlog.app`). The answers made elsewhere apply it
where they are made: those of the plain ASGI layers (`vapixlog.edge.answers.send_answer`: the edge,
authentication, faults) and the DCA REST app's JSON (`NOSNIFF`). A wrapper around every `send`
of the `writeMessage` hot path cost 5 us of its 60 on the server (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_DIRECTIVES = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "object-src": "'none'",
}


def content_security_policy(**overrides: str) -> str:
    """The strict policy with some directives replaced (`style_src="'self' 'unsafe-inline'"`)."""
    directives = {**_DIRECTIVES, **{k.replace("_", "-"): v for k, v in overrides.items()}}
    return "; ".join(f"{name} {value}" for name, value in directives.items())


STRICT_CSP = content_security_policy()

NOSNIFF = (b"x-content-type-options", b"nosniff")
_HTML_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
_CSP = b"content-security-policy"


class SecurityHeaders:
    """Adds the headers above to every HTTP response of `app`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": hardened(message.get("headers", []))}
            await send(message)

        await self.app(scope, receive, send_hardened)


def hardened(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` and the hardening headers they lack (a new list)."""
    headers = list(headers)
    # One pass for what every response needs (a JSON answer has two or three headers).
    ctype: bytes | None = None
    nosniff = False
    for name, value in headers:
        lower = name.lower()
        if lower == b"content-type":
            if ctype is None:  # the first one, as a client reads it
                ctype = value
        elif lower == NOSNIFF[0]:
            nosniff = True
    if not nosniff:
        headers.append(NOSNIFF)
    if ctype is not None and ctype.lower().startswith(b"text/html"):
        names = {name.lower() for name, _ in headers}
        if _CSP not in names:
            headers.append((_CSP, STRICT_CSP.encode()))
        headers += [(name, value) for name, value in _HTML_HEADERS if name not in names]
    return headers
