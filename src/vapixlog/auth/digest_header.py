"""The parameters of a Digest ``Authorization`` header (RFC 7616 section 3.4), and the shape
of one header, to check a client's next ones by.

`parse_params` reads any header RFC 9110's list and parameter grammar allows, strictly.
`HeaderShape` is for the usual case: a client sends the same header on every request of a
connection but for three values, the nonce count (``nc``), its own nonce (``cnonce``) and
the ``response``. Given the shape of a header that verified, `HeaderShape.values` finds those
three in the next header by comparing the rest as text: a few C-level string comparisons
instead of a parse. It answers only when the next header, parsed, would give the same
parameters but for those three values (see `values`); otherwise the header is parsed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

_MAX_HEADER = 8192

_TCHAR_RUN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_SEP_RE = re.compile(r"[\s,]*")  # whitespace and empty list elements (RFC 9110 §5.6.1)
# A quoted string as `"(?:[^"\\]|\\.)*"` in the "unrolled loop" form: the same strings, matched
# without one alternation per character (a 64-digit response cost microseconds).
_PARAM_RE = re.compile(
    rf'({_TCHAR_RUN})[ \t]*=[ \t]*(?:"([^"\\]*(?:\\.[^"\\]*)*)"|([^\s,"]+))', re.S
)
_AFTER_RE = re.compile(r"[ \t]*(?:,|\Z)")
# One parameter of a header whose quoted strings are emptied (see `parse_params`), with the
# separators before and after it: a header in the grammar `parse_params` walks is exactly a
# run of these.
_TILE_RE = re.compile(rf'([\s,]*({_TCHAR_RUN})[ \t]*=[ \t]*(?:""|([^\s,"]+))[ \t]*(?:,|\Z)[\s,]*)')
_UNESCAPE_RE = re.compile(r"\\(.)", re.S)


def _unescaped(match: re.Match[str]) -> str:
    return match.group(1)


class MalformedHeader(ValueError):
    """The credentials could not be parsed."""


def parse_params(text: str) -> dict[str, str]:
    """Parse ``name=value, name="quoted \\"value\\""`` into a dict with lowercase names.

    Rejects duplicates (an ambiguous header is an attack surface, never a client need),
    unterminated quotes and junk between parameters.
    """
    if len(text) > _MAX_HEADER:
        raise MalformedHeader("header too long")
    params: dict[str, str] = {}
    if "\\" not in text:
        # No escapes (what clients send): every `"` opens or closes a quoted string, so the
        # header with its quoted strings emptied has the same shape, and is short to match:
        # the regular expressions never walk the long values (nonce, uri, response). It is
        # well formed if its parameters (with their separators) make up all of it.
        parts = text.split('"')
        skeleton = '""'.join(parts[0::2])
        tiles = _TILE_RE.findall(skeleton) if len(parts) % 2 else ()
        if tiles and "".join([tile[0] for tile in tiles]) == skeleton:
            quoted_values = iter(parts[1::2])
            for _, raw_name, token in tiles:
                name = raw_name.lower()
                if name in params:
                    raise MalformedHeader(f"duplicate parameter {name}")
                params[name] = token or next(quoted_values)
            return params
    # Escapes, or malformed (the walk finds where, for the reason).
    return _walk_params(text)


def _walk_params(text: str) -> dict[str, str]:
    """`parse_params` one parameter at a time (the definition the quick path agrees with)."""
    params: dict[str, str] = {}
    for name, value, _ in _walk(text):
        if name in params:
            raise MalformedHeader(f"duplicate parameter {name}")
        params[name] = value
    return params


def _walk(text: str) -> Iterator[tuple[str, str, tuple[int, int]]]:
    """Each parameter: its name in lower case, its value, and where the value is in `text`
    (inside the quotes of a quoted one)."""
    pos, end = 0, len(text)
    while True:
        pos = _SEP_RE.match(text, pos).end()  # type: ignore[union-attr]  # cannot fail
        if pos >= end:
            return
        m = _PARAM_RE.match(text, pos)
        if m is None:
            raise MalformedHeader("cannot parse parameters")
        quoted = m.group(2)
        if quoted is None:
            yield m.group(1).lower(), m.group(3), m.span(3)
        elif "\\" in quoted:
            yield m.group(1).lower(), _UNESCAPE_RE.sub(_unescaped, quoted), m.span(2)
        else:
            yield m.group(1).lower(), quoted, m.span(2)
        after = _AFTER_RE.match(text, m.end())
        if after is None:
            raise MalformedHeader("cannot parse parameters")
        pos = after.end()


# -- the shape of a header ---------------------------------------------------------------

VARYING = ("nonce", "nc", "cnonce", "response")  # the values a shape leaves open
NC_DIGIT = "[0-9a-fA-F]"  # a nonce count is eight of these (RFC 7616 section 3.4)


class HeaderShape(NamedTuple):
    """A header with its `VARYING` values left open (see the module)."""

    pattern: re.Pattern[str]  # the header's text, each varying value a group of its length
    params: dict[str, str]  # the header's parameters

    def values(self, text: str) -> tuple[str, ...] | None:
        """The `VARYING` values of `text` if it has this shape, else None.

        It has the shape when it is equal to the header outside those values, and they are as
        long as the header's and cannot change how it parses: ``nc`` hex digits only, the
        others without a quote or a backslash, and without a space or a comma where the
        header had them unquoted (a token). Parsed, it would give the header's parameters
        but for those values (a shape comes from a header without a backslash: no escape
        anywhere).
        """
        match = self.pattern.fullmatch(text)
        return match.group(*VARYING) if match is not None else None


def shape_of(text: str) -> HeaderShape | None:
    """The shape of a well-formed header with every `VARYING` value and no backslash, else
    None."""
    if "\\" in text or len(text) > _MAX_HEADER:
        return None
    params: dict[str, str] = {}
    spans: dict[str, tuple[int, int]] = {}
    try:
        for name, value, span in _walk(text):
            if name in params:
                return None
            params[name] = value
            spans[name] = span
    except MalformedHeader:
        return None
    if not all(params.get(name) for name in VARYING):
        return None
    pattern: list[str] = []
    pos = 0
    for start, end, name in sorted((*spans[name], name) for name in VARYING):
        if name == "nc":
            allowed = NC_DIGIT
        elif text[start - 1] == '"':  # quoted: anything but a quote or a backslash
            allowed = '[^"\\\\]'
        else:  # a token: no space, comma or quote either
            allowed = '[^\\s,"\\\\]'
        pattern += (re.escape(text[pos:start]), f"(?P<{name}>{allowed}{{{end - start}}})")
        pos = end
    pattern.append(re.escape(text[pos:]))
    return HeaderShape(re.compile("".join(pattern)), params)
