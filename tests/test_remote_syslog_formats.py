"""The bytes of each remote syslog format and framing, against the spec's wire shapes
(remote-syslog.md section 7) and RFC 3164, 5424, 5425 and 5426."""

from __future__ import annotations

import datetime

import pytest

from vapixlog.forward.config import Format, Protocol
from vapixlog.forward.formats import encoder
from vapixlog.severity import Severity
from vapixlog.syslog.entry import Entry
from vapixlog.syslog.line import format_line

PLUS_ONE = datetime.timezone(datetime.timedelta(hours=1))
TIME = datetime.datetime(2025, 3, 4, 9, 15, 2, 7_900, tzinfo=PLUS_ONE)


def entry(message: str = "remote-syslogd-test: This is Error message", **fields: object) -> Entry:
    values: dict[str, object] = {
        "time": TIME,
        "hostname": "axis-b8a44f000001",
        "severity": Severity.ERROR,
        "tag": "remote-syslogd",
        "pid": 2104,
        "message": message,
        "audit": False,
    }
    values.update(fields)
    made = Entry(**values, line="")  # type: ignore[arg-type]
    line = format_line(made.time, made.hostname, made.severity, made.tag, made.pid, made.message)
    return made._replace(line=line)


def udp(syslog_format: Format, item: Entry) -> bytes:
    return encoder(syslog_format, Protocol.UDP)(item)


def test_the_spec_wire_shapes() -> None:
    # As the knowledge base shows them (remote-syslog.md section 7), with a pid.
    assert udp(Format.RFC3164, entry()) == (
        b"<11>Mar  4 09:15:02.007 axis-b8a44f000001 remote-syslogd[2104]: "
        b"remote-syslogd-test: This is Error message"
    )
    assert udp(Format.RFC5424, entry()) == (
        b"<11>1 2025-03-04T09:15:02.007+01:00 axis-b8a44f000001 remote-syslogd 2104 - - "
        b"remote-syslogd-test: This is Error message"
    )
    assert udp(Format.AXIS, entry()) == (
        b"2025-03-04T09:15:02.007+01:00 axis-b8a44f000001 [ ERR     ] remote-syslogd[2104]: "
        b"remote-syslogd-test: This is Error message"
    )


@pytest.mark.parametrize("severity", list(Severity))
def test_pri_is_facility_user_and_the_severity(severity: Severity) -> None:
    item = entry(severity=severity)
    expected = f"<{8 + severity}>".encode()
    assert udp(Format.RFC3164, item).startswith(expected)
    assert udp(Format.RFC5424, item).startswith(expected + b"1 ")
    assert not udp(Format.AXIS, item).startswith(b"<")  # no PRI (DECISIONS 13)


def test_timestamps() -> None:
    utc = datetime.datetime(2025, 12, 24, 23, 59, 59, 999_999, tzinfo=datetime.UTC)
    west = datetime.datetime(
        2025, 1, 14, 0, 0, 0, tzinfo=datetime.timezone(-datetime.timedelta(hours=5, minutes=30))
    )
    assert udp(Format.RFC5424, entry(time=utc)).split(b" ")[1] == b"2025-12-24T23:59:59.999+00:00"
    assert udp(Format.RFC5424, entry(time=west)).split(b" ")[1] == b"2025-01-14T00:00:00.000-05:30"
    # RFC 3164: local time, no year, no offset; a one-digit day is padded with a space.
    assert udp(Format.RFC3164, entry(time=utc))[4:23] == b"Dec 24 23:59:59.999"
    assert udp(Format.RFC3164, entry(time=west))[4:23] == b"Jan 14 00:00:00.000"
    assert udp(Format.RFC3164, entry())[4:23] == b"Mar  4 09:15:02.007"


def test_text_is_escaped_and_utf8_is_marked() -> None:
    item = entry("line one\nline two\x1b[2J \\ tab\there")
    escaped = b"line one\\x0aline two\\x1b[2J \\\\ tab\\x09here"
    for syslog_format in Format:
        data = udp(syslog_format, item)
        assert data.endswith(escaped) and b"\n" not in data
    # RFC 5424 section 6.4: UTF-8 text starts with the BOM; ASCII text is sent as it is.
    assert udp(Format.RFC5424, entry("caf\u00e9")).endswith(" - - \ufeffcaf\u00e9".encode())
    assert udp(Format.RFC3164, entry("caf\u00e9")).endswith(": caf\u00e9".encode())
    # Bidi overrides cannot disguise a forwarded message either (DECISIONS 19).
    assert udp(Format.RFC5424, entry("a\u202eb")).endswith(b" - - a\\u202eb")


def test_header_fields_are_printable_ascii() -> None:
    item = entry("m", hostname="caf\u00e9 host", tag="my app:x")
    assert (
        udp(Format.RFC5424, item)
        == b"<11>1 2025-03-04T09:15:02.007+01:00 caf__host my_app:x 2104 - - m"
    )
    assert udp(Format.RFC3164, item) == b"<11>Mar  4 09:15:02.007 caf__host my_app_x[2104]: m"
    long_tag = entry("m", tag="t" * 60)
    assert udp(Format.RFC5424, long_tag).split(b" ")[3] == b"t" * 48  # APP-NAME: 48 at most
    assert b" " + b"t" * 32 + b"[2104]: " in udp(Format.RFC3164, long_tag)  # TAG: 32
    # RFC 5424: an empty message is no MSG at all, not an empty one after a space.
    assert udp(Format.RFC5424, entry("")).endswith(b" 2104 - -")


def test_framing() -> None:
    item = entry("caf\u00e9")
    payload = udp(Format.RFC5424, item)
    assert encoder(Format.RFC5424, Protocol.TCP)(item) == payload + b"\n"
    # RFC 5425: the length in octets (not characters), a space, the message.
    assert encoder(Format.RFC5424, Protocol.TLS)(item) == f"{len(payload)} ".encode() + payload
    axis = udp(Format.AXIS, item)
    assert encoder(Format.AXIS, Protocol.TLS)(item) == f"{len(axis)} ".encode() + axis
