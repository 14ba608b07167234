"""The bytes a remote syslog server receives: the three formats and the two framings.

    AXIS     2025-03-04T09:15:02.000+01:00 axis-b8a44f000001 [ ERR     ] vapixlog[2104]: text
    RFC3164  <11>Mar  4 09:15:02.000 axis-b8a44f000001 vapixlog[2104]: text
    RFC5424  <11>1 2025-03-04T09:15:02.000+01:00 axis-b8a44f000001 vapixlog 2104 - - text

- AXIS is the device's own log line (`line.format_line`), without PRI (DECISIONS 13).
- RFC 3164: PRI, `Mmm dd hh:mm:ss` in the device's local time (day padded with a space,
  English month names whatever the locale), then milliseconds, as the device sends them
  (remote-syslog.md section 7; strict RFC 3164 has whole seconds), HOSTNAME, `TAG[pid]: `.
- RFC 5424: PRI, VERSION 1, the timestamp with milliseconds and the UTC offset, HOSTNAME,
  APP-NAME (the tag), PROCID (the pid), MSGID and STRUCTURED-DATA nil (`-`), as the device
  sends them. A message with non-ASCII text starts with the UTF-8 BOM, as section 6.4
  requires of UTF-8 (ASCII text is valid MSG-ANY and matches the device's bytes).
- PRI = facility * 8 + severity with facility user (1), as in the device's test messages
  (which facility its other messages use is not documented).

Header fields (HOSTNAME, APP-NAME) may only hold printable US-ASCII without spaces
(RFC 5424 section 6.2, RFC 3164 section 4.1.2), an RFC 3164 TAG not even `:` or `[`: anything
else becomes `_`, and each is cut to its maximum length. The message is escaped as in the
device's own log (`line.escape`): no control character, so a message never splits into two
and LF framing stays unambiguous.

Framing: a UDP datagram carries one message (RFC 5426); over TCP each message ends with LF,
over TLS each is preceded by its length in octets and a space (RFC 5425 section 4.3); the
spec leaves TCP framing open and DECISIONS 13 settles it so.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from vapixlog.forward.config import Format, Protocol
from vapixlog.syslog.entry import Entry
from vapixlog.syslog.line import escape

FACILITY_USER = 1
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_NOT_PRINTUSASCII = re.compile(r"[^\x21-\x7e]")
# RFC 3164 ends the TAG at the first non-alphanumeric character; receivers accept the usual
# `-`, `_`, `.` and `/` (as in `remote-syslogd`, `postfix/smtpd`), but `:` or `[` would end it.
_NOT_TAG = re.compile(r"[^A-Za-z0-9_./-]")
_BOM = "\ufeff"
_HOSTNAME_MAX = 255
_APP_NAME_MAX = 48
_TAG_MAX = 32  # RFC 3164 section 4.1.3

Encoder = Callable[[Entry], bytes]


@functools.lru_cache(maxsize=256)  # a device's few host names and tags, in every message
def header_field(text: str, limit: int) -> str:
    """`text` as a syslog header field: printable US-ASCII, at most `limit`, never empty."""
    return _NOT_PRINTUSASCII.sub("_", text)[:limit] or "-"


def pri(entry: Entry) -> str:
    return f"<{FACILITY_USER * 8 + entry.severity}>"


def axis(entry: Entry) -> str:
    return entry.line


def rfc3164(entry: Entry) -> str:
    t = entry.time
    stamp = f"{_MONTHS[t.month - 1]} {t.day:2d} {t:%H:%M:%S}.{t.microsecond // 1000:03d}"
    host = header_field(entry.hostname, _HOSTNAME_MAX)
    tag = _NOT_TAG.sub("_", entry.tag)[:_TAG_MAX] or "-"
    return f"{pri(entry)}{stamp} {host} {tag}[{entry.pid}]: {escape(entry.message)}"


def rfc5424(entry: Entry) -> str:
    stamp = entry.line[: entry.line.index(" ")]  # the line's time: ISO 8601, milliseconds
    host = header_field(entry.hostname, _HOSTNAME_MAX)
    app = header_field(entry.tag, _APP_NAME_MAX)
    head = f"{pri(entry)}1 {stamp} {host} {app} {entry.pid} - -"
    if not entry.message:
        return head  # MSG is optional: no trailing space
    text = escape(entry.message)
    return f"{head} {text}" if text.isascii() else f"{head} {_BOM}{text}"


_FORMATS: dict[Format, Callable[[Entry], str]] = {
    Format.AXIS: axis,
    Format.RFC3164: rfc3164,
    Format.RFC5424: rfc5424,
}


def encoder(syslog_format: Format, protocol: Protocol) -> Encoder:
    """Entry -> the bytes to send for it, framed for `protocol`."""
    render = _FORMATS[syslog_format]

    def payload(entry: Entry) -> bytes:
        # "replace": only a host name given on the command line could hold a lone surrogate
        # (undecodable argv bytes); the tag and message are escaped.
        return render(entry).encode("utf-8", "replace")

    if protocol is Protocol.UDP:
        return payload
    if protocol is Protocol.TCP:
        return lambda entry: payload(entry) + b"\n"

    def octet_counted(entry: Entry) -> bytes:
        data = payload(entry)
        return b"%d %s" % (len(data), data)

    return octet_counted
