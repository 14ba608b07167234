"""Throttling of failed logins per client address: the state machine, the middleware, e2e."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import client_for, start_server
from fakeclock import FakeClock
from servers import Server
from vapixlog.auth import AuthMiddleware, DigestAuthority, Role, UserStore
from vapixlog.auth.throttle import LoginPolicy, LoginThrottle
from vapixlog.syslog.line import parse_line

REALM = "AXIS_ACCC8E123456"
POLICY = LoginPolicy(
    free_failures=3, first_delay=0.2, max_delay=0.8, max_pending=2, forget_after=1.0
)
FAST = 0.15  # an answer that was not delayed


# ----- the state machine -----------------------------------------------------------------


def test_policy_is_checked() -> None:
    with pytest.raises(ValueError):
        LoginPolicy(first_delay=0)
    with pytest.raises(ValueError):
        LoginPolicy(max_delay=1000, forget_after=10)
    with pytest.raises(ValueError):
        LoginPolicy(max_pending=0)


def test_delays_grow_after_the_free_failures_and_cap() -> None:
    clock = FakeClock(50.0)
    throttle = LoginThrottle(POLICY, clock=clock)
    results = []
    for _ in range(7):
        assert throttle.admit("a") is None
        delay, messages = throttle.failure("a")
        results.append((delay, messages))
        if delay:
            throttle.release("a")
    assert [delay for delay, _ in results] == [0, 0, 0, 0.2, 0.4, 0.8, 0.8]
    assert [m for _, m in results] == [
        [],
        [],
        ["throttling failed logins from a after 3 failures"],
    ] + [[]] * 4
    assert throttle.throttled("a")
    assert not throttle.throttled("b")
    assert throttle.failure("b") == (0.0, [])


def test_pending_delays_are_bounded_per_address() -> None:
    throttle = LoginThrottle(POLICY, clock=FakeClock(50.0))
    for _ in range(3):
        throttle.failure("a")
    assert throttle.failure("a")[0] == 0.2  # two delayed answers outstanding
    assert throttle.failure("a")[0] == 0.4
    assert throttle.admit("a") == 0.4  # a third attempt is refused, not checked
    assert throttle.admit("b") is None
    throttle.release("a")
    assert throttle.admit("a") is None


def test_users_at_one_address_are_counted_apart() -> None:
    throttle = LoginThrottle(POLICY, clock=FakeClock(50.0))
    for _ in range(POLICY.free_failures + 1):
        throttle.failure("a", "alice")
    assert throttle.throttled("a", "alice")
    assert not throttle.throttled("a", "bob")
    assert throttle.failure("a", "bob")[0] == 0.0  # bob's first failure: answered at once
    assert throttle.failure("b", "alice")[0] == 0.0  # so is alice's from another address


def test_rotating_user_names_buys_no_free_attempts() -> None:
    policy = LoginPolicy(free_failures=3, max_users_per_address=2)
    throttle = LoginThrottle(policy, clock=FakeClock(50.0))
    throttle.failure("a", "u0")
    throttle.failure("a", "u1")
    delays = [throttle.failure("a", f"name{i}")[0] for i in range(4)]
    assert delays[:3] == [0.0, 0.0, 0.0] and delays[3] > 0  # all of them share one entry
    assert throttle.throttled("a", "anyone-else")
    assert not throttle.throttled("a", "u0")
    assert len(throttle) == 3


def test_success_resets_and_summarises() -> None:
    throttle = LoginThrottle(POLICY, clock=FakeClock(50.0))
    assert throttle.success("a") == []
    throttle.failure("a")
    assert throttle.success("a") == []  # below the threshold: no episode, no summary
    assert throttle.failure("a") == (0.0, [])  # counting starts again
    for _ in range(4):
        throttle.failure("a")
    throttle.admit("a")  # 2 pending now: refused
    assert throttle.success("a") == [
        "throttling failed logins from a ended after a successful login: "
        "5 failures, 2 of them not audited one by one, "
        "1 attempts refused while too many were pending"
    ]
    assert not throttle.tracking("a")
    throttle.release("a")  # a late release after the reset is harmless
    assert throttle.failure("a") == (0.0, [])


def test_quiet_addresses_are_forgotten_with_a_summary() -> None:
    clock = FakeClock(50.0)
    throttle = LoginThrottle(POLICY, clock=clock)
    for _ in range(3):
        throttle.failure("a")
    throttle.failure("b")
    assert throttle.next_expiry() == clock.now + 1.0
    clock.now += 0.5
    assert throttle.expire() == []
    clock.now += 0.5
    assert throttle.expire() == [
        "throttling failed logins from a ended after no failure for 1 s: "
        "3 failures, 0 of them not audited one by one"
    ]
    assert len(throttle) == 0
    assert throttle.next_expiry() is None


def test_tracked_addresses_are_bounded() -> None:
    policy = LoginPolicy(free_failures=1, max_addresses=10)
    throttle = LoginThrottle(policy, clock=FakeClock(50.0))
    ended = []
    for i in range(100):
        ended += throttle.failure(f"10.0.0.{i}")[1]
    assert len(throttle) == 10
    assert len([m for m in ended if "too many addresses" in m]) == 90


# ----- the middleware --------------------------------------------------------------------


class App:
    """An inner app answering 200 to whoever got through."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


class Env:
    def __init__(self, tmp_path: Path, policy: LoginPolicy | None = POLICY) -> None:
        store = UserStore.load_or_create(tmp_path / "users.json", REALM)
        store.add("alice", Role.ADMIN, "secret")
        self.failures: list[tuple[str | None, str, str]] = []
        self.audits: list[str] = []
        self.app = AuthMiddleware(
            App(),
            store=store,
            digest=DigestAuthority(REALM),
            on_failure=lambda user, host, reason: self.failures.append((user, host, reason)),
            on_throttle=self.audits.append,
            login_policy=policy,
        )

    def client(self, host: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(host, 1234))
        return httpx.AsyncClient(transport=transport, base_url="http://device")


async def timed(client: httpx.AsyncClient, password: str, path: str = "/x") -> tuple[int, float]:
    start = time.monotonic()
    response = await client.get(path, auth=("alice", password))
    return response.status_code, time.monotonic() - start


async def timed_response(client: httpx.AsyncClient, password: str) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    response = await client.get("/config/x", auth=("alice", password))
    return response, time.monotonic() - start


def test_wrong_passwords_get_slower_other_addresses_do_not(tmp_path: Path) -> None:
    env = Env(tmp_path)

    async def scenario() -> None:
        async with env.client("192.0.2.1") as attacker, env.client("192.0.2.2") as other:
            results = [await timed(attacker, "wrong") for _ in range(6)]
            assert [status for status, _ in results] == [401] * 6
            times = [t for _, t in results]
            assert max(times[:3]) < FAST
            assert 0.2 <= times[3] < 0.4
            assert 0.4 <= times[4] < 0.8
            assert 0.8 <= times[5] < 1.6
            # Another address is neither delayed nor refused meanwhile.
            status, took = await timed(other, "wrong")
            assert status == 401
            assert took < FAST
            status, took = await timed(other, "secret")
            assert (status, took < FAST) == (200, True)
            # The right password from the throttled address gets in at once and resets it.
            status, took = await timed(attacker, "secret")
            assert (status, took < FAST) == (200, True)
            assert (await timed(attacker, "wrong"))[1] < FAST

    asyncio.run(scenario())
    # The first failures are audited one by one, then one start and one summary entry.
    assert [host for _, host, _ in env.failures] == ["192.0.2.1"] * 3 + ["192.0.2.2"] + [
        "192.0.2.1"
    ]
    assert env.audits == [
        "throttling failed logins from 192.0.2.1 for user 'alice' after 3 failures",
        "throttling failed logins from 192.0.2.1 for user 'alice' ended after a successful login: "
        "6 failures, 3 of them not audited one by one",
    ]


def test_concurrent_attempts_beyond_the_bound_get_429_unchecked(tmp_path: Path) -> None:
    env = Env(tmp_path)

    async def scenario() -> None:
        async with env.client("192.0.2.1") as attacker:
            for _ in range(3):
                await attacker.get("/config/x", auth=("alice", "wrong"))
            # The right password is among them: refused too once the bound is reached.
            results = await asyncio.gather(
                *(timed_response(attacker, "secret" if i == 9 else "wrong") for i in range(10))
            )
        statuses = [response.status_code for response, _ in results]
        assert statuses.count(401) == 2  # max_pending
        assert statuses.count(429) == 8
        assert statuses[9] == 429
        for response, took in results:
            if response.status_code == 429:
                assert took < FAST  # refused at once, nothing blocked
                assert response.json()["error"]["code"] == 9
                assert response.headers["retry-after"] == "1"
                assert "www-authenticate" not in response.headers
            else:
                assert took >= 0.2

    asyncio.run(scenario())
    assert len(env.failures) == 3


def test_throttling_episode_ends_after_a_quiet_period(tmp_path: Path) -> None:
    env = Env(tmp_path)

    async def scenario() -> None:
        async with env.client("192.0.2.1") as attacker:
            for _ in range(4):
                await attacker.get("/x", auth=("alice", "wrong"))
            await asyncio.sleep(1.3)  # forget_after, then the timer fires
            assert len(env.audits) == 2
            assert (await timed(attacker, "wrong"))[1] < FAST  # starts afresh

    asyncio.run(scenario())
    assert env.audits[1] == (
        "throttling failed logins from 192.0.2.1 for user 'alice' ended after no failure for 1 s: "
        "4 failures, 1 of them not audited one by one"
    )
    assert len(env.failures) == 4


def test_no_policy_no_throttling(tmp_path: Path) -> None:
    env = Env(tmp_path, policy=None)

    async def scenario() -> None:
        async with env.client("192.0.2.1") as attacker:
            for _ in range(20):
                status, took = await timed(attacker, "wrong")
                assert (status, took < FAST) == (401, True)

    asyncio.run(scenario())
    assert len(env.failures) == 20
    assert env.audits == []


# ----- a real server ---------------------------------------------------------------------


@pytest.fixture
def throttled_server(tmp_path: Path) -> Iterator[Server]:
    """A device with the project's throttle instead of the device's brute-force block."""
    server = start_server(tmp_path / "state", "--brute-force-protection", "off")
    yield server
    server.stop()


def test_real_server_slows_a_burst_of_wrong_passwords(throttled_server: Server) -> None:
    def attempt(client: httpx.Client) -> tuple[int, float]:
        start = time.monotonic()
        status = client.get("/axis-cgi/systemlog.cgi").status_code
        return status, time.monotonic() - start

    other_transport = httpx.HTTPTransport(local_address="127.0.0.2")
    wrong = httpx.Client(base_url=throttled_server.url, auth=("root", "nope"), timeout=30)
    other = httpx.Client(
        base_url=throttled_server.url, auth=("root", "nope"), timeout=30, transport=other_transport
    )
    with wrong, other, client_for(throttled_server) as admin:
        results = [attempt(wrong) for _ in range(8)]
        assert [status for status, _ in results] == [401] * 8
        times = [took for _, took in results]
        # Defaults: 5 failures answered at once, then 0.25 s, 0.5 s, 1 s.
        assert max(times[:5]) < 0.25, times
        assert times[5] >= 0.25
        assert times[6] >= 0.5
        assert times[7] >= 1.0
        status, took = attempt(other)  # another client address is unaffected
        assert (status, took < 0.25) == (401, True)
        log = admin.get("/axis-cgi/systemlog.cgi")  # a success resets 127.0.0.1
        assert log.status_code == 200
        status, took = attempt(wrong)
        assert (status, took < 0.25) == (401, True)
        lines = [parse_line(raw) for raw in admin.get("/axis-cgi/systemlog.cgi").text.splitlines()]
    audit = [line.message for line in lines if line is not None and line.tag == "audit"]
    started = "throttling failed logins from 127.0.0.1 for user 'root' after 5 failures"
    assert audit.count(started) == 1
    assert (
        "throttling failed logins from 127.0.0.1 for user 'root' ended after a successful login: "
        "8 failures, 3 of them not audited one by one"
    ) in audit
    assert not [m for m in audit if "throttling failed logins from 127.0.0.2" in m]


def test_one_address_holds_few_delayed_answers_whichever_names_it_tries() -> None:
    policy = LoginPolicy(free_failures=1, max_pending=4, max_pending_per_address=3)
    throttle = LoginThrottle(policy, clock=FakeClock(50.0))
    for name in ("a", "b", "c"):
        throttle.failure("x", name)  # free
        assert throttle.failure("x", name)[0] > 0  # delayed: one pending each
    assert throttle.admit("x", "a") is not None  # the address holds 3: refused
    assert throttle.admit("y", "a") is None  # another address is not
    throttle.release("x", "b")
    assert throttle.admit("x", "a") is None
    throttle.success("x", "c")  # forgets c's entry while its answer is pending
    throttle.release("x", "c")
    throttle.release("x", "a")
    assert throttle.failure("x", "a")[0] > 0 and throttle.admit("x", "a") is None
