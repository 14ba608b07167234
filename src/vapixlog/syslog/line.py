"""One system log entry as one line, in the format of current Axis devices.

    2020-10-09T10:30:02.425-05:00 axis-accc8ef7d108 [ INFO    ] systemd[1]: Started Rotate ...

The tag and the message are escaped so that one line is always exactly one entry (no LF or CR
can start a fake entry) and printing the log never drives a terminal or reorders what it shows
(no ESC, no C1 CSI, no line separators, no bidi or zero-width format characters). The escaping
is reversible with `unescape`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import NamedTuple

from vapixlog.severity import Severity

# Everything that must not appear raw in a line: the backslash (so escapes are unambiguous),
# C0 controls incl. TAB/LF/CR, DEL, C1 controls, the Unicode line/paragraph separators (some
# viewers break lines there), lone surrogates (not encodable as UTF-8 at all) and the Unicode
# format characters (category Cf: bidi overrides and isolates, zero-width characters, the BOM,
# tag characters), which reorder or hide text and so let a message disguise itself.
_FORMAT = (
    "\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f"
)
_SPECIAL = re.compile(f"[\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff{_FORMAT}]")
_ESCAPED = re.compile(r"\\(?:(\\)|x([0-9a-f]{2})|u([0-9a-f]{4})|U([0-9a-f]{8}))")


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\\":
        return "\\\\"
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def escape(text: str) -> str:
    """Escape `text` for one log line; returns `text` itself when nothing needs escaping."""
    # The common case has nothing to escape: printable ASCII without a backslash (three
    # C-level checks, three times faster than the pattern's scan), or no match at all.
    if text.isascii() and text.isprintable() and "\\" not in text:
        return text
    if _SPECIAL.search(text) is None:
        return text
    return _SPECIAL.sub(_escape_char, text)


def _unescape_match(match: re.Match[str]) -> str:
    backslash, byte, unit, wide = match.groups()
    if backslash is not None:
        return "\\"
    return chr(int(byte or unit or wide, 16))


def unescape(text: str) -> str:
    """Invert `escape`. Backslashes not followed by a known escape are kept as they are."""
    if "\\" not in text:
        return text
    return _ESCAPED.sub(_unescape_match, text)


def format_timestamp(ts: datetime) -> str:
    """ISO-8601 with milliseconds and UTC offset; a naive `ts` is taken as local time."""
    if ts.tzinfo is None:
        ts = ts.astimezone()
    return ts.isoformat(timespec="milliseconds")


# "[ INFO    ]": the label padded to 7, formatted once per severity instead of per line.
_FIELDS = {severity: f"[ {severity.label:<7} ]" for severity in Severity}


def format_line(
    ts: datetime, hostname: str, severity: Severity, tag: str, pid: int, message: str
) -> str:
    """One log line, without the trailing newline. `hostname` is trusted (configuration)."""
    return line_at(format_timestamp(ts), hostname, severity, tag, pid, message)


def line_at(
    time_text: str, hostname: str, severity: Severity, tag: str, pid: int, message: str
) -> str:
    """`format_line` with the time already written as `format_timestamp` writes it."""
    # Every entry is formatted on the event loop: keep it to two C-level scans (escape) and
    # one join.
    return f"{time_text} {hostname} {_FIELDS[severity]} {escape(tag)}[{pid}]: {escape(message)}"


class ParsedLine(NamedTuple):
    """The fields of a line written by `format_line`; `tag` and `message` are still escaped."""

    timestamp: str
    hostname: str
    severity: Severity
    tag: str
    pid: int
    message: str


_LABELS = {severity.label: severity for severity in Severity}
# The tag is the shortest text before "[digits]: ", because messages may contain anything.
_LINE = re.compile(r"(\S+) (\S+) \[ ([A-Z]+) +\] (.*?)\[(\d+)\]: (.*)")


def parse_line(line: str) -> ParsedLine | None:
    """Split a log line (with or without its newline) into fields; None if it is not one."""
    match = _LINE.fullmatch(line.removesuffix("\n"))
    if match is None:
        return None
    timestamp, hostname, label, tag, pid, message = match.groups()
    severity = _LABELS.get(label)
    if severity is None:
        return None
    return ParsedLine(timestamp, hostname, severity, tag, int(pid), message)
