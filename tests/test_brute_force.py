"""The device's brute-force protection (device-security.md section 2), on by default: more than
20 completed wrong logins from one address in a second block it for 10 s, with 403 on every
path; anonymous challenges and schemes the policy does not offer do not count. Each test that
fails logins uses its own server or its own source address (127.0.0.N)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import start_server
from fakeclock import FakeClock
from servers import USERS, Server
from vapixlog.auth.bruteforce import BruteForceBlock, DosPolicy
from vapixlog.client import AddressBlockedError, Client

API = "/config/rest/log/v1/persistent/enabled"
READY = "/axis-cgi/systemready.cgi"
PASSWORD = USERS["root"][1]


def test_more_than_the_count_in_the_interval_blocks_for_the_period() -> None:
    clock = FakeClock()
    block = BruteForceBlock(DosPolicy(site_count=3, page_count=3), clock=clock)
    assert [block.failure("a", "/p") for _ in range(3)] == [False] * 3
    assert not block.blocked("a")
    assert block.failure("a", "/q") is True  # the fourth within 1 s, over any page
    assert block.blocked("a") and not block.blocked("b")
    clock.now += 9.9
    assert block.blocked("a")
    clock.now += 0.2
    assert not block.blocked("a")  # it clears by itself, and counting starts afresh
    assert block.failure("a", "/p") is False


def test_failures_spread_over_time_never_block() -> None:
    clock = FakeClock()
    block = BruteForceBlock(DosPolicy(site_count=3, page_count=3), clock=clock)
    for _ in range(50):
        assert block.failure("a", "/p") is False
        clock.now += 0.4


def test_the_page_count_is_per_page() -> None:
    clock = FakeClock()
    block = BruteForceBlock(DosPolicy(site_count=100, page_count=2), clock=clock)
    assert not block.failure("a", "/p") and not block.failure("a", "/p")
    assert not block.failure("a", "/q")
    assert block.failure("a", "/p")


@pytest.fixture
def device(tmp_path: Path) -> Iterator[Server]:
    server = start_server(tmp_path / "state", "--auth-policy", "recommended")
    yield server
    if server.proc:
        server.stop()


def client_from(address: str, server: Server, auth: httpx.Auth | None = None) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server.url, transport=transport, auth=auth, timeout=10)


def test_a_guessing_address_is_blocked_on_every_path(device: Server) -> None:
    with client_from("127.0.0.5", device) as guesser:
        # A new DigestAuth per call: one challenge (not counted), then one wrong answer.
        responses = [guesser.get(API, auth=httpx.DigestAuth("root", "wrong")) for _ in range(22)]
    statuses = [response.status_code for response in responses]
    assert statuses == [401] * 21 + [403], statuses  # the 21st failure in 1 s blocks
    blocked = responses[-1]
    assert blocked.headers["content-type"].startswith("text/html")
    assert "<h1>Forbidden</h1>" in blocked.text
    with client_from("127.0.0.5", device, httpx.DigestAuth("root", PASSWORD)) as same:
        assert same.get(API).status_code == 403  # the right password too
        ready = same.post(READY, json={"apiVersion": "1.0", "method": "systemready"})
        assert ready.status_code == 403  # anonymous paths too
    with client_from("127.0.0.6", device, httpx.DigestAuth("root", PASSWORD)) as other:
        assert other.get(API).status_code == 200
        log = other.get("/axis-cgi/systemlog.cgi").text
    assert (
        "httpd[" in log
        and "[evasive20:warn] [client 127.0.0.5:" in log
        and "Blocklisting address 127.0.0.5: possible DoS attack." in log
    )
    with client_from("127.0.0.6", device, httpx.DigestAuth("root", PASSWORD)) as other:
        audit = other.get("/axis-cgi/auditlog.cgi").text
    blocked_line = "Network Remediation Activity: Firewall blocked 127.0.0.5 (Authentication DoS)."
    assert blocked_line in audit and blocked_line not in log  # AXIS OS 12.5+: the audit log
    # The client names the block as such.
    with Client(device.url, user="root", password=PASSWORD) as client:
        client._client._http._transport = httpx.AsyncHTTPTransport(local_address="127.0.0.5")
        with pytest.raises(AddressBlockedError):
            client.persistent_enabled()


def test_challenges_and_unoffered_schemes_do_not_count(device: Server) -> None:
    with client_from("127.0.0.7", device) as anonymous:
        for _ in range(40):
            assert anonymous.get(API).status_code == 401  # a challenge only
            # Basic is not offered over HTTP by the default policy: not a failed login.
            assert anonymous.get(API, auth=("root", "wrong")).status_code == 401
    with client_from("127.0.0.7", device, httpx.DigestAuth("root", PASSWORD)) as admin:
        assert admin.get(API).status_code == 200


def test_off_means_the_throttle_instead(tmp_path: Path) -> None:
    server = start_server(tmp_path / "state", "--brute-force-protection", "off")
    try:
        with client_from("127.0.0.8", server) as guesser:
            start = time.monotonic()
            wrong = [guesser.get(API, auth=httpx.DigestAuth("root", "wrong")) for _ in range(8)]
            took = time.monotonic() - start
        statuses = [response.status_code for response in wrong]
        assert set(statuses) <= {401, 429} and 403 not in statuses
        assert took >= 1.5  # five free, then 0.25 + 0.5 + 1 s of delays
    finally:
        server.stop()
