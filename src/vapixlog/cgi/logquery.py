"""The query parameters of `systemlog.cgi` and `accesslog.cgi`: parsing, filtering, framing.

server-report.md §3: `text=<letters/digits>` keeps entries containing the text (AXIS OS
11.11.45+), `appname=<name>` only one application's lines, and the shell CGI also accepts
`tail=<n>`, `format=text|html` and `search_txt=<q>`, rejecting unknown names. Where the
spec is silent (ours): `tail` is the last n entries after filtering (1..2147483647);
`text` and `search_txt` are case-sensitive substrings of the line as shown (at most 256
characters; `text` letters and digits only); every filter given must match; `appname` is
1..64 letters, digits, `_`, `-` or `.` and selects lines whose tag is that name (we have no
applications: the tag is the closest thing to an owner); `format=html` is not implemented.
Each parameter at most once. A bad value gets `400 text/plain` `Error: <what>.`, never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from vapixlog.syslog.line import escape, parse_line

MAX_TAIL = 2**31 - 1
MAX_TEXT = 256
MAX_SHOWN = 64
_APPNAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_TEXT = re.compile(rf"[A-Za-z0-9]{{1,{MAX_TEXT}}}")
_TAIL = re.compile(r"[0-9]{1,10}")


@dataclass
class LogQuery:
    appname: str | None = None
    texts: list[str] = field(default_factory=list)
    tail: int | None = None

    def select(self, lines: Sequence[str]) -> list[str]:
        """The lines that pass every filter, oldest first, then the last `tail` of them."""
        kept: Iterable[str] = lines
        if self.appname is not None:
            kept = [line for line in kept if _tag(line) == self.appname]
        for text in self.texts:
            kept = [line for line in kept if text in line]
        kept = list(kept)
        if self.tail is not None:
            kept = kept[-self.tail :]
        return kept


def _tag(line: str) -> str | None:
    parsed = parse_line(line)
    return parsed.tag if parsed else None


def shown(value: str) -> str:
    """A client's value for an error message: escaped, quotes too, at most 64 characters."""
    text = escape(value[:MAX_SHOWN]).replace('"', "\\x22")
    return text + ("..." if len(value) > MAX_SHOWN else "")


def error(message: str, status: int = 400, headers: dict[str, str] | None = None) -> Response:
    return PlainTextResponse(f"Error: {message}.\n", status_code=status, headers=headers)


def parse(request: Request, allowed: Sequence[str]) -> LogQuery | Response:
    """The query of `request` (parameters `allowed` only), or an error response."""
    query = LogQuery()
    seen: set[str] = set()
    for name, value in request.query_params.multi_items():
        if name not in allowed:
            return error(f'unsupported parameter "{shown(name)}"')
        if name in seen:
            return error(f'parameter "{name}" given more than once')
        seen.add(name)
        if name == "appname":
            if not _APPNAME.fullmatch(value):
                return error(
                    f'invalid appname "{shown(value)}": 1 to 64 letters, digits, "_", "-" or "."'
                )
            query.appname = value
        elif name == "text":
            if not _TEXT.fullmatch(value):
                return error(f'invalid text "{shown(value)}": 1 to {MAX_TEXT} letters or digits')
            query.texts.append(value)
        elif name == "search_txt":
            if not 1 <= len(value) <= MAX_TEXT:
                return error(f"invalid search_txt: 1 to {MAX_TEXT} characters")
            # Matched against the line as shown, where special characters are escaped.
            query.texts.append(escape(value))
        elif name == "tail":
            if not _TAIL.fullmatch(value) or not 1 <= int(value) <= MAX_TAIL:
                return error(f'invalid tail "{shown(value)}": a whole number from 1 to {MAX_TAIL}')
            query.tail = int(value)
        elif name == "format" and value != "text":
            return error(f'unsupported format "{shown(value)}": only "text"')
    return query


def framed(title: str, lines: Sequence[str]) -> PlainTextResponse:
    """The device's framing: an empty line, `----- <title> -----`, two empty lines, then
    one entry a line (server-report.md §3)."""
    body = f"\n----- {title} -----\n\n\n"
    if lines:
        body += "\n".join(lines) + "\n"
    return PlainTextResponse(body)


def only_get(request: Request) -> Response | None:
    """405 with `Allow: GET` for every other method, HEAD too (DECISIONS 16: no HEAD on CGIs)."""
    if request.method == "GET":
        return None
    return error(f"method {request.method} not allowed: use GET", 405, {"Allow": "GET"})


# The routes hand every standard method to the endpoint, which answers 405 itself
# (Starlette's own 405 would allow HEAD).
ROUTE_METHODS = ["GET", "POST", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
