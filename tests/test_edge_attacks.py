"""Attacks on the service's edge by a client that is not a browser (docs/security.md).

Each test starts its own device on loopback and attacks it as an outsider would, from other
loopback addresses where the attack needs several (all of 127.0.0.0/8 is this host's).
They assert the secure behaviour; the module doc of each says what the attack is.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import client_for, start_server
from servers import USERS, Server

SYSTEMLOG = "/axis-cgi/systemlog.cgi"
STATUS = "/logs/status"  # admin only, cheap
THROTTLED = ["--brute-force-protection", "off"]  # the project's throttle, not the device's block
FAST = 0.2  # seconds: an answer that was not delayed (the first delay is 0.25 s)


@contextlib.contextmanager
def device(tmp_path: Path, *args: str) -> Iterator[Server]:
    server = start_server(tmp_path / "state", *args)
    try:
        yield server
    finally:
        if server.proc:
            server.kill()  # delayed answers may still be pending: no graceful wait


def basic(user: str, password: str, separator: str = " ") -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return f"Basic{separator}{token}"


def client_at(server: Server, address: str) -> httpx.Client:
    """A client whose connections come from `address` (one of 127.0.0.0/8)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server.url, timeout=30, transport=transport)


def timed(client: httpx.Client, authorization: str) -> tuple[int, float]:
    started = time.monotonic()
    status = client.get(SYSTEMLOG, headers={"Authorization": authorization}).status_code
    return status, time.monotonic() - started


# ----- client addresses from a trusted proxy ----------------------------------------------------


def test_a_scoped_ipv6_address_from_a_proxy_is_no_client_address(tmp_path: Path) -> None:
    """`X-Forwarded-For` from a trusted proxy must hold an IP address, so that no text of the
    client's becomes its address in the audit log. An IPv6 address with a zone
    (`fe80::1%<zone>`) parses as one, and its zone may be any text: markup, or words that
    read like another audit entry. The zone names an interface of the proxy's host; it is no
    part of a client's address, so it is dropped (or the entry ignored)."""
    zone = "<img src=x onerror=alert(1)> Entity Management: root@127.0.0.1 Restart."
    with device(tmp_path, "--trusted-proxy", "127.0.0.1") as server:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            reply = client.get(
                SYSTEMLOG,
                auth=("op", "wrong"),
                headers={"X-Forwarded-For": f"fe80::1%{zone}"},
            )
            assert reply.status_code == 401
        with client_for(server) as admin:
            log = admin.get("/axis-cgi/auditlog.cgi").text
    line = next(line for line in log.splitlines() if "Authentication: op@" in line)
    assert "onerror" not in line and "Restart" not in line, line
    assert " op@fe80::1 " in line or " op@127.0.0.1 " in line, line


# ----- the login throttle --------------------------------------------------------------------


def test_a_tab_after_the_scheme_buys_no_free_guesses(tmp_path: Path) -> None:
    """`Basic<TAB>credentials` is checked like `Basic credentials` (the scheme and the token
    may be separated by any whitespace), so its failures must count for the user it names.
    They counted for no user (the throttle read the name only after a space): a guesser whose
    attempts for root were being delayed got a fresh set of free, undelayed ones."""
    password = USERS["root"][1]
    with device(tmp_path, *THROTTLED) as server:
        with client_at(server, "127.0.0.4") as other:  # the tab form is a real login
            assert timed(other, basic("root", password, "\t"))[0] == 200
        with client_at(server, "127.0.0.3") as guesser:
            results = [timed(guesser, basic("root", f"guess-{n}")) for n in range(6)]
            assert [status for status, _ in results] == [401] * 6
            assert results[-1][1] >= 0.25, results  # root's guesses from here are delayed
            status, took = timed(guesser, basic("root", "guess-tab", "\t"))
    assert status == 429 or took >= 0.25, (status, took)


@pytest.mark.parametrize("protection", ["on", "off"])
def test_guesses_from_one_ipv6_network_count_as_one_address(
    tmp_path: Path, protection: str
) -> None:
    """A host on IPv6 has a /64 of its own and may send from any address in it, so counting
    failed logins per address gives it as many fresh counts as it likes: guesses spread over
    one /64 must be counted (and blocked) together. Through a trusted proxy, which says which
    address each client has: the project's throttle (`off`) must delay guesses after the
    fifth, the device's block (`on`) must block the network after more than 20 in a second."""
    network = "2001:db8:0:1::"
    guesses = 6 if protection == "off" else 25
    with (
        device(
            tmp_path, "--trusted-proxy", "127.0.0.1", "--brute-force-protection", protection
        ) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):

        def attempt(host: int, password: str) -> tuple[int, float]:
            started = time.monotonic()
            reply = client.get(
                SYSTEMLOG,
                auth=("root", password),
                headers={"X-Forwarded-For": f"{network}{host:x}"},
            )
            return reply.status_code, time.monotonic() - started

        results = [attempt(host, f"guess-{host}") for host in range(1, guesses + 1)]
        last = attempt(guesses + 1, USERS["root"][1] if protection == "on" else "guess")
    if protection == "off":
        assert last[0] == 429 or last[1] >= 0.25, (results, last)
    else:
        assert last[0] == 403, (results, last)  # the network is blocked, right password or not


# ----- connections ---------------------------------------------------------------------------


async def _concurrent_guesses(
    server: Server, address: str, names: int, per_name: int
) -> list[tuple[int, float]]:
    """From `address`, `per_name` wrong passwords at once for each of `names` user names,
    each on its own connection: (status, seconds) of each."""

    async def guess(name: str, index: int) -> tuple[int, float]:
        started = time.monotonic()
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, local_addr=(address, 0)
        )
        request = (
            f"GET {SYSTEMLOG} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: {basic(name, f'guess-{index}')}\r\nConnection: close\r\n\r\n"
        )
        writer.write(request.encode())
        answer = await reader.read()
        writer.close()
        return int(answer.split(b" ", 2)[1]), time.monotonic() - started

    return await asyncio.gather(
        *(guess(f"user{n}", i) for n in range(names) for i in range(per_name))
    )


def test_delayed_failed_logins_do_not_hold_every_connection(tmp_path: Path) -> None:
    """The throttle answers failed logins late, and a connection whose answer is delayed is
    busy: never closed to make room. Per user name 4 answers may be delayed at once; a
    guesser trying 9 names from one address would hold 36 connections for up to 8 s each,
    and a few addresses would fill the server. So one address holds at most 8 delayed
    answers, whichever names it tries; the rest are refused (429) at once."""
    with device(tmp_path, *THROTTLED) as server:

        async def attack() -> list[tuple[int, float]]:
            # The free failures of each name first, so that every further one is delayed.
            await _concurrent_guesses(server, "127.0.0.5", names=9, per_name=5)
            return await _concurrent_guesses(server, "127.0.0.5", names=9, per_name=4)

        results = asyncio.run(attack())
    delayed = [took for status, took in results if status == 401]
    refused = [took for status, took in results if status == 429]
    assert len(delayed) + len(refused) == 36, results
    assert len(delayed) <= 8, results
    assert all(took < 1.0 for took in refused), results
