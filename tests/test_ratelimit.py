"""Rate limiting of writeMessage: the token bucket (fake clock) and a real server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from conftest import client_for, start_server
from fakeclock import FakeClock
from servers import VAPIXLOG, run_cli
from vapixlog.ratelimit import (
    DEFAULT_WRITE_RATE,
    Rate,
    RateLimiter,
    TokenBucket,
    WriteLimiter,
    parse_rate,
    retry_after,
)
from vapixlog.severity import Severity
from vapixlog.syslog.line import parse_line

WRITE = "/config/rest/log/v1/writeMessage"


# ----- parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("200/1", Rate(200, 1.0)),
        ("20/0.5", Rate(20, 0.5)),
        (" 600 / 60 ", Rate(600, 60.0)),
        ("1/.25", Rate(1, 0.25)),
        ("off", None),
        ("OFF", None),
        ("none", None),
    ],
)
def test_parse_rate(text: str, rate: Rate | None) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["abc", "", "0/1", "10/0", "10", "/1", "-1/1", "1.5/1", "1/x"])
def test_parse_rate_refuses_bad_values(text: str) -> None:
    with pytest.raises(ValueError, match="invalid rate limit"):
        parse_rate(text)


def test_default_and_str() -> None:
    assert str(DEFAULT_WRITE_RATE) == "1000/1"
    assert str(Rate(20, 0.5)) == "20/0.5"
    assert Rate(20, 0.5).per_second == 40


@pytest.mark.parametrize(("seconds", "header"), [(0.001, 1), (0.05, 1), (1.0, 1), (1.01, 2)])
def test_retry_after_is_whole_seconds_at_least_one(seconds: float, header: int) -> None:
    assert retry_after(seconds) == header


# ----- the bucket ------------------------------------------------------------------------


def test_bucket_allows_a_burst_then_refills() -> None:
    bucket = TokenBucket(5, 10.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(5)] == [0.0] * 5
    assert bucket.take(0.0) == pytest.approx(0.1)  # one token takes 1/10 s
    assert bucket.take(0.05) == pytest.approx(0.05)
    assert bucket.take(0.1) == 0.0
    assert bucket.take(0.1) > 0
    # Refills to its capacity, never beyond.
    assert bucket.full_at() == pytest.approx(0.1 + 0.5)
    assert [bucket.take(100.0) for _ in range(5)] == [0.0] * 5
    assert bucket.take(100.0) > 0


def test_bucket_ignores_a_clock_going_backwards() -> None:
    bucket = TokenBucket(1, 1.0, now=10.0)
    assert bucket.take(10.0) == 0.0
    assert bucket.take(5.0) == pytest.approx(1.0)


def test_limiter_keys_are_independent_and_suppressions_counted() -> None:
    clock = FakeClock(1000.0)
    limiter = RateLimiter(Rate(3, 1.0), clock=clock, quiet=1.0)
    assert [limiter.check("root", "10.0.0.1") for _ in range(3)] == [0.0] * 3
    waits = [limiter.check("root", "10.0.0.1") for _ in range(4)]
    assert all(w > 0 for w in waits)
    assert limiter.check("other", "10.0.0.1") == 0.0  # another user
    assert limiter.check("root", "10.0.0.2") == 0.0  # another address
    assert limiter.suppressing
    assert limiter.due() == []  # the burst has not ended yet
    assert limiter.next_due() == pytest.approx(clock.now + 1.0)
    clock.advance(0.5)
    assert limiter.check("root", "10.0.0.1") == 0.0  # refilled 1.5 tokens: accepted
    assert limiter.due() == []  # an accepted write alone does not end the episode
    clock.advance(0.6)
    (episode,) = limiter.due()
    assert (episode.user, episode.address, episode.count) == ("root", "10.0.0.1", 4)
    assert limiter.message(episode) == (
        "suppressed 4 messages from user root at 10.0.0.1 (rate limit 3/1)"
    )
    assert not limiter.suppressing
    assert limiter.next_due() is None


def test_sustained_flood_is_reported_periodically() -> None:
    clock = FakeClock(1000.0)
    limiter = RateLimiter(Rate(1, 1.0), clock=clock, quiet=1.0, report_every=10.0)
    reports: list[int] = []
    refused = 0
    for _ in range(250):  # 25 s of a write every 0.1 s: 9 of 10 refused
        refused += limiter.check("root", "a") > 0
        reports += [episode.count for episode in limiter.due()]
        clock.advance(0.1)
    assert len(reports) == 2  # one every 10 s while the flood goes on
    assert refused - 50 <= sum(reports) < refused
    reported = sum(reports)
    clock.advance(1.0)
    reported += sum(e.count for e in limiter.due())
    assert reported == refused


def test_idle_full_buckets_are_evicted() -> None:
    clock = FakeClock(1000.0)
    limiter = RateLimiter(Rate(10, 1.0), clock=clock)
    for i in range(1000):
        limiter.check("root", f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) == 1000
    clock.advance(1.0)  # every bucket is full again
    limiter.check("root", "192.0.2.1")
    assert len(limiter) == 1
    # A bucket still refilling is kept, so its limit holds.
    for _ in range(10):
        limiter.check("root", "192.0.2.1")
    clock.advance(0.5)
    limiter.check("root", "192.0.2.2")
    assert len(limiter) == 2
    assert limiter.check("root", "192.0.2.1") == 0.0  # 5 tokens back
    assert [limiter.check("root", "192.0.2.1") > 0 for _ in range(5)] == [False] * 4 + [True]


def test_buckets_are_bounded_even_when_busy() -> None:
    clock = FakeClock(1000.0)
    limiter = RateLimiter(Rate(10, 60.0), clock=clock, max_keys=100)
    for i in range(1000):
        limiter.check("root", f"addr{i}")
        clock.advance(0.001)
    assert len(limiter) == 100


# ----- the asyncio glue ------------------------------------------------------------------


def test_write_limiter_reports_once_after_the_burst() -> None:
    async def scenario() -> None:
        reports: list[str] = []
        limiter = WriteLimiter(Rate(5, 10.0), report=reports.append, quiet=0.2)
        answers = [limiter.check("root", "127.0.0.1") for _ in range(20)]
        assert answers[:5] == [None] * 5
        assert answers[5:] == [2] * 15  # a token every 2 s
        await asyncio.sleep(0.1)
        assert reports == []
        await asyncio.sleep(0.3)
        assert reports == ["suppressed 15 messages from user root at 127.0.0.1 (rate limit 5/10)"]
        assert limiter.check("root", "127.0.0.1") == 2
        limiter.close()  # shutdown reports what is pending at once
        assert reports[1:] == [
            "suppressed 1 messages from user root at 127.0.0.1 (rate limit 5/10)"
        ]

    asyncio.run(scenario())


def test_write_limiter_off_never_limits() -> None:
    limiter = WriteLimiter(None, report=lambda message: pytest.fail(message))
    assert all(limiter.check("root", "x") is None for _ in range(10_000))
    limiter.close()


# ----- a real server ---------------------------------------------------------------------


def _write(client: httpx.Client, msg: str) -> httpx.Response:
    return client.post(WRITE, json={"data": {"msg": msg}})


def _suppressed_entries(client: httpx.Client) -> list[str]:
    text = client.get("/axis-cgi/systemlog.cgi").text
    assert text.startswith("\n----- System log -----\n\n\n")  # the device's framing
    lines = [parse_line(raw) for raw in text.splitlines()[4:]]
    found = []
    for line in lines:
        assert line is not None
        if line.message.startswith("suppressed "):
            assert (line.severity, line.tag) == (Severity.WARNING, "vapixlog")
            found.append(line.message)
    return found


def test_burst_is_limited_and_reported_once(tmp_path: Path) -> None:
    server = start_server(tmp_path / "state", "--rate-limit", "20/1")
    try:
        result = run_cli(
            "users", "add", "root2", "--role", "admin", "--password", "pw2",
            state_dir=server.state_dir,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        time.sleep(1.2)  # the server picks up user changes within a second
        with client_for(server) as root:
            responses = [_write(root, f"burst {i}") for i in range(100)]
            # Neither another user at the same address nor the same user at another
            # address is limited by the burst.
            other_user = httpx.Client(base_url=server.url, auth=("root2", "pw2"), timeout=10)
            other_address = httpx.Client(
                base_url=server.url,
                auth=("root", "rootpass"),
                timeout=10,
                transport=httpx.HTTPTransport(local_address="127.0.0.2"),
            )
            with other_user, other_address:
                assert [_write(other_user, "u").status_code for _ in range(15)] == [200] * 15
                assert [_write(other_address, "a").status_code for _ in range(15)] == [200] * 15
            statuses = [r.status_code for r in responses]
            assert statuses[:20] == [200] * 20
            limited = [r for r in responses if r.status_code == 429]
            assert set(statuses) == {200, 429}
            assert len(limited) >= 10, statuses  # (many more unless very slow)
            for response in limited:
                body = response.json()
                assert body["status"] == "error"
                assert body["error"]["code"] == 9
                assert body["error"]["message"].startswith("Rate limited: ")
                assert int(response.headers["retry-after"]) >= 1
            assert _suppressed_entries(root) == []  # not during the burst...
            time.sleep(2.0)
            # ...but exactly one entry after it, with the exact count.
            assert _suppressed_entries(root) == [
                f"suppressed {len(limited)} messages from user root at 127.0.0.1 (rate limit 20/1)"
            ]
            log = root.get("/axis-cgi/systemlog.cgi").text
            accepted = [r for r in responses if r.status_code == 200]
            assert log.count("log-api[") == len(accepted) + 30  # no refused one is logged
            assert _write(root, "after").status_code == 200
            assert len(_suppressed_entries(root)) == 1
    finally:
        server.stop()


def test_rate_limit_off_never_answers_429(tmp_path: Path) -> None:
    server = start_server(tmp_path / "state", "--rate-limit", "off")
    try:
        with client_for(server) as root:
            statuses = {_write(root, f"m {i}").status_code for i in range(300)}
            assert statuses == {200}
            assert _suppressed_entries(root) == []
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("abc", "use N/SECONDS"),
        ("0/1", "at least 1"),
        ("10/0", "positive number of seconds"),
        ("", "use N/SECONDS"),
    ],
)
def test_bad_rate_limit_flag_exits_2(tmp_path: Path, value: str, why: str) -> None:
    import subprocess

    result = subprocess.run(
        [*VAPIXLOG, "serve", "--state-dir", str(tmp_path), "--rate-limit", value],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "--rate-limit" in result.stderr
    assert why in result.stderr
