"""The log line format: Axis layout, escaping, parsing."""

from __future__ import annotations

import math
import os
import re
import sys
import time
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vapixlog.severity import Severity
from vapixlog.syslog import ParsedLine, escape, format_line, parse_line, unescape
from vapixlog.syslog.line import format_timestamp
from vapixlog.syslog.system_log import LocalClock

CDT = timezone(timedelta(hours=-5))
AXIS = (
    "2020-10-09T10:30:02.425-05:00 axis-accc8ef7d108 [ INFO    ] systemd[1]: "
    "Started Rotate log files."
)
# Anything a terminal or a line-based reader could act on.
FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# Unicode format characters (bidi overrides and isolates, zero-width, tags), from this
# Python's own Unicode database: a newer database with new ones makes the test below fail.
FORMAT_CHARS = [
    chr(code) for code in range(sys.maxunicode + 1) if unicodedata.category(chr(code)) == "Cf"
]


def test_format_matches_axis_device() -> None:
    ts = datetime(2020, 10, 9, 10, 30, 2, 425_000, tzinfo=CDT)
    line = format_line(
        ts, "axis-accc8ef7d108", Severity.INFO, "systemd", 1, "Started Rotate log files."
    )
    assert line == AXIS


@pytest.mark.parametrize(
    ("severity", "field"),
    [
        (Severity.ERROR, "[ ERR     ]"),
        (Severity.WARNING, "[ WARNING ]"),
        (Severity.NOTICE, "[ NOTICE  ]"),
        (Severity.EMERGENCY, "[ EMERG   ]"),
    ],
)
def test_level_is_padded_to_nine(severity: Severity, field: str) -> None:
    ts = datetime(2024, 1, 2, 3, 4, 5, 6_000, tzinfo=UTC)
    line = format_line(ts, "h", severity, "t", 7, "m")
    assert line == f"2024-01-02T03:04:05.006+00:00 h {field} t[7]: m"


def test_naive_time_is_local_with_offset() -> None:
    line = format_line(datetime(2024, 1, 2, 3, 4, 5), "h", Severity.INFO, "t", 1, "m")
    assert re.match(r"2024-01-02T03:04:05\.000[+-]\d\d:\d\d h ", line)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a\\b", "a\\\\b"),
        ("\x00", "\\x00"),
        ("tab\there", "tab\\x09here"),
        ("two\nlines\r", "two\\x0alines\\x0d"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("\x7f", "\\x7f"),
        ("\x80\x9b\x9f", "\\x80\\x9b\\x9f"),
        ("a\u2028b\u2029", "a\\u2028b\\u2029"),
        ("\ud800\udfff", "\\ud800\\udfff"),
        ("user\u202egnp.exe", "user\\u202egnp.exe"),
        ("\u2066x\u2069\u200b\ufeff", "\\u2066x\\u2069\\u200b\\ufeff"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("ä€😀 \xa0ok", "ä€😀 \xa0ok"),
    ],
)
def test_escape_each_class(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped
    assert unescape(escaped) == raw


def test_every_format_character_is_escaped() -> None:
    assert len(FORMAT_CHARS) > 100
    for char in FORMAT_CHARS:
        escaped = escape(char)
        assert re.fullmatch(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8})", escaped), hex(ord(char))
        assert unescape(escaped) == char


def test_plain_text_is_returned_unchanged() -> None:
    text = "nothing special here: [x] {y} ümlaut"
    assert escape(text) is text


def test_tag_is_escaped_too() -> None:
    ts = datetime(2024, 1, 1, tzinfo=UTC)
    line = format_line(ts, "h", Severity.INFO, "evil\ntag", 1, "m")
    assert "\n" not in line
    assert "evil\\x0atag[1]: m" in line


def test_unescape_keeps_unknown_sequences() -> None:
    assert unescape("C:\\path\\xZZ \\q") == "C:\\path\\xZZ \\q"


@given(st.text())
def test_escape_round_trip(text: str) -> None:
    assert unescape(escape(text)) == text


@given(st.text())
def test_escaped_output_is_safe(text: str) -> None:
    escaped = escape(text)
    assert FORBIDDEN.search(escaped) is None
    assert not any(unicodedata.category(char) == "Cf" for char in escaped)
    escaped.encode("utf-8")  # always encodable: no lone surrogates left


@given(
    st.sampled_from(list(Severity)),
    st.text(),
    st.text(),
    st.integers(min_value=0, max_value=2**22),
)
def test_parse_round_trip(severity: Severity, tag: str, message: str, pid: int) -> None:
    # The tag is the text before the first "[digits]: ", so tags with that are not round-trip.
    if re.search(r"\[\d+\]: ", escape(tag)):
        return
    ts = datetime(2021, 5, 6, 7, 8, 9, 123_456, tzinfo=CDT)
    line = format_line(ts, "axis-00408c000000", severity, tag, pid, message)
    parsed = parse_line(line + "\n")
    assert parsed == ParsedLine(
        "2021-05-06T07:08:09.123-05:00",
        "axis-00408c000000",
        severity,
        escape(tag),
        pid,
        escape(message),
    )
    assert parsed is not None
    assert unescape(parsed.message) == message


@pytest.mark.parametrize(
    "line",
    ["", "garbage", "t h [ BOGUS ] x[1]: m", "t h [ INFO    ] x: no pid", "t h INFO x[1]: m"],
)
def test_parse_rejects_other_lines(line: str) -> None:
    assert parse_line(line) is None


def test_parse_axis_example() -> None:
    assert parse_line(AXIS) == ParsedLine(
        "2020-10-09T10:30:02.425-05:00",
        "axis-accc8ef7d108",
        Severity.INFO,
        "systemd",
        1,
        "Started Rotate log files.",
    )


@pytest.fixture
def kolkata() -> Iterator[None]:
    """A zone with a half-hour offset and no daylight saving since 1945 (+05:30)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kolkata"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.mark.usefixtures("kolkata")
@given(
    start=st.floats(min_value=1e9, max_value=4e9),
    steps=st.lists(st.floats(min_value=0, max_value=2.5), min_size=1, max_size=30),
)
def test_the_clock_writes_each_time_as_the_datetime_would(start: float, steps: list[float]) -> None:
    """`LocalClock.text` makes the text of a second once and adds milliseconds: the same text
    as the datetime of the instant, for instants in the same second, the next ones, and at
    the edges where rounding to microseconds carries into the next second."""
    clock = LocalClock()
    stamps = [start + sum(steps[: i + 1]) for i in range(len(steps))]
    stamps += [math.floor(start) + 0.9999996, math.floor(start) + 1.0, math.floor(start) + 0.0005]
    for stamp in sorted(stamps):
        expected = format_timestamp(datetime.fromtimestamp(stamp).astimezone())
        assert clock.text(stamp) == expected, stamp
        assert expected.endswith("+05:30")
