"""The volatile ring: bounded in bytes, oldest lines evicted first."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vapixlog.syslog import VolatileLog


def test_keeps_lines_in_order_with_text() -> None:
    log = VolatileLog(1000)
    for line in ("one", "two", "three"):
        log.append(line)
    assert log.lines() == ["one", "two", "three"]
    assert log.text() == b"one\ntwo\nthree\n"
    assert log.size_bytes == len(log.text()) == 14
    assert log.dropped == 0
    assert len(log) == 3


def test_empty() -> None:
    log = VolatileLog(10)
    assert log.lines() == []
    assert log.text() == b""
    assert log.tail(3) == []
    assert log.size_bytes == 0


def test_evicts_oldest_first() -> None:
    log = VolatileLog(12)  # room for three "aaa\n"
    for line in ("aaa", "bbb", "ccc", "ddd"):
        log.append(line)
    assert log.lines() == ["bbb", "ccc", "ddd"]
    assert log.dropped == 1
    assert log.size_bytes == 12


def test_bound_counts_utf8_bytes() -> None:
    log = VolatileLog(8)
    log.append("ä€")  # 2 + 3 bytes + newline = 6
    log.append("x")  # 2 more: 8, still fits
    assert log.size_bytes == 8
    log.append("y")
    assert log.lines() == ["x", "y"]


def test_line_larger_than_ring_is_dropped() -> None:
    log = VolatileLog(5)
    log.append("ok")
    log.append("x" * 5)  # 6 bytes with its newline
    assert log.lines() == ["ok"]
    assert log.dropped == 1


def test_tail() -> None:
    log = VolatileLog(10_000)
    for i in range(100):
        log.append(f"line {i}")
    assert log.tail(3) == ["line 97", "line 98", "line 99"]
    assert log.tail(0) == []
    assert log.tail(1000) == log.lines()


def test_clear() -> None:
    log = VolatileLog(100)
    log.append("a")
    log.clear()
    assert log.lines() == []
    assert log.size_bytes == 0


def _cost(line: str) -> int:
    return len(line.encode("utf-8", "surrogatepass")) + 1


@given(st.lists(st.text(max_size=30)), st.integers(min_value=0, max_value=200))
def test_bound_always_holds(lines: list[str], max_bytes: int) -> None:
    log = VolatileLog(max_bytes)
    for line in lines:
        log.append(line)
    text = log.text()
    assert len(text) == log.size_bytes <= max_bytes
    assert log.dropped == len(lines) - len(log)
    # Lines too big for the ring are skipped; of the rest, the newest that fit are kept.
    fitting = [line for line in lines if _cost(line) <= max_bytes]
    kept = log.lines()
    assert kept == fitting[len(fitting) - len(kept) :]
    if len(kept) < len(fitting):
        previous = fitting[len(fitting) - len(kept) - 1]
        assert log.size_bytes + _cost(previous) > max_bytes
