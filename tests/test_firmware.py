"""firmwaremanagement.cgi: JSON-RPC replies and errors, and the reboot it performs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import start_server
from reboots import ADMIN, FIRMWARE, boot_id, reboot_and_wait, rpc, wait_for_new_boot
from servers import USERS, Server
from syslog_files import persistent_lines

RESTART = "/axis-cgi/restart.cgi"


@pytest.fixture
def device(tmp_path: Path) -> Iterator[Server]:
    server = start_server(tmp_path / "state", "--reboot-downtime", "0.5")
    yield server
    if server.proc:
        server.stop()


@pytest.mark.parametrize(
    ("body", "code", "echo"),
    [
        (b"{not json", 400, {}),
        (b"[]", 400, {}),
        (b'{"apiVersion": "1.0", "context": "c"}', 400, {"context": "c"}),
        (b'{"method": 5}', 400, {}),
        (b'{"method": "reboot", "context": "c"}', 400, {"context": "c", "method": "reboot"}),
        (b'{"apiVersion": "one", "method": "reboot"}', 400, {"method": "reboot"}),
        (b'{"apiVersion": "1.0", "method": "reboot", "params": []}', 400, {"method": "reboot"}),
        (b'{"apiVersion": "1.0", "method": "reboot", "context": 7}', 400, {"method": "reboot"}),
        (
            b'{"apiVersion": "2.0", "method": "reboot", "context": "x"}',
            417,
            {"method": "reboot", "context": "x"},
        ),
        (b'{"apiVersion": "1.0", "method": "bogus"}', 405, {"method": "bogus"}),
        (
            b'{"apiVersion": "1.0", "method": "upgrade", "context": "u"}',
            405,
            {"method": "upgrade", "context": "u"},
        ),
        (b"x" * 20_000, 400, {}),
    ],
)
def test_errors_are_http_200_with_an_error_object(
    shared_server: Server, body: bytes, code: int, echo: dict[str, Any]
) -> None:
    response = httpx.post(
        shared_server.url + FIRMWARE,
        content=body,
        auth=ADMIN,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200
    reply = response.json()
    assert reply["error"]["code"] == code and reply["error"]["message"]
    assert reply["apiVersion"] == "1.10"  # the device's own version, whatever was asked
    for key, value in echo.items():
        assert reply[key] == value
    assert "data" not in reply


def test_get_supported_versions(shared_server: Server) -> None:
    reply = rpc(shared_server, {"method": "getSupportedVersions", "context": "v"}).json()
    # As captured from AXIS OS 12.11.77: the device's version, in the same key order.
    assert list(reply) == ["apiVersion", "context", "method", "data"]
    assert reply == {
        "apiVersion": "1.10",
        "context": "v",
        "method": "getSupportedVersions",
        "data": {"apiVersions": ["1.10"]},
    }


def test_status_names_the_active_firmware(shared_server: Server) -> None:
    reply = rpc(shared_server, {"apiVersion": "1.0", "context": "s", "method": "status"}).json()
    assert list(reply) == ["apiVersion", "context", "method", "data"]
    data = reply["data"]
    assert data["activeFirmwareVersion"] == "12.11.77"
    assert set(data) == {"activeFirmwareVersion", "activeFirmwarePart", "resetSource"}
    assert data["resetSource"] in ("poweron", "reboot", "crash")


@pytest.mark.parametrize(("user", "status"), [("viewer", 403), ("op", 403), (None, 401)])
def test_only_admins_may_reboot(shared_server: Server, user: str | None, status: int) -> None:
    auth = (user, USERS[user][1]) if user else None
    response = rpc(shared_server, {"apiVersion": "1.0", "method": "reboot"}, auth=auth)
    assert response.status_code == status
    assert httpx.get(shared_server.url + FIRMWARE, auth=ADMIN).status_code == 405


def test_reboot_is_a_cold_start_with_a_new_boot(device: Server) -> None:
    with httpx.Client(base_url=device.url, auth=ADMIN) as client:
        client.patch("/config/rest/log/v1/persistent/enabled", json={"data": True})
        client.post("/config/rest/log/v1/writeMessage", json={"data": {"msg": "before reboot"}})
    first = boot_id(device)
    pid = device.proc.pid if device.proc else None
    second, refused = reboot_and_wait(device)
    assert second != first
    assert refused, "connections must be refused while the device is down"
    assert device.proc is not None and device.proc.pid == pid  # same process, same address

    log = httpx.get(device.url + "/axis-cgi/systemlog.cgi", auth=ADMIN).text
    assert f"previous boot {first} shut down cleanly" in log
    assert "before reboot" not in log  # the volatile log of the old boot is gone
    messages = [line.message for line in persistent_lines(device.state_dir)]
    reboot_at = messages.index(f"reboot: ending boot {first}, shutting down")
    assert messages.index("before reboot") < reboot_at
    assert second in messages[reboot_at + 1]
    audit = httpx.get(device.url + "/axis-cgi/auditlog.cgi", auth=ADMIN).text
    assert "Entity Management: root@127.0.0.1 Restart." in audit


def test_a_second_reboot_while_one_is_under_way_gets_423(device: Server) -> None:
    async def both() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(auth=ADMIN, timeout=10) as client:
            body = {"apiVersion": "1.0", "method": "reboot"}
            replies = await asyncio.gather(
                *(client.post(device.url + FIRMWARE, json=body) for _ in range(2))
            )
        return [reply.json() for reply in replies]

    first = boot_id(device)
    replies = asyncio.run(both())
    codes = sorted(reply.get("error", {}).get("code", 0) for reply in replies)
    assert codes == [0, 423], replies
    # The device comes back once, and then accepts a reboot again.
    wait_for_new_boot(device, first)
    reboot_and_wait(device)


def test_status_and_lifetime_counters_follow_reboots_and_crashes(device: Server) -> None:
    def status() -> dict[str, Any]:
        reply = rpc(device, {"apiVersion": "1.10", "method": "status"}).json()
        return dict(reply["data"])

    def lifetime() -> dict[str, int]:
        return dict(json.loads((device.state_dir / "lifetime.json").read_text()))

    assert status()["resetSource"] == "poweron"
    assert lifetime() == {"boots": 1, "restarts": 0}
    reboot_and_wait(device)
    assert status()["resetSource"] == "reboot"
    assert lifetime() == {"boots": 2, "restarts": 1}
    device.kill()
    device.start()
    assert status()["resetSource"] == "crash"
    assert lifetime() == {"boots": 3, "restarts": 1}  # a crash is a boot, not a restart
    device.restart()  # SIGTERM: an orderly shutdown, then a power-on
    assert status()["resetSource"] == "poweron"
    assert lifetime() == {"boots": 4, "restarts": 1}


def test_restart_cgi_reboots_on_get(device: Server) -> None:
    before = boot_id(device)
    assert httpx.post(device.url + RESTART, auth=ADMIN).status_code == 405
    for user in ("viewer", "op"):
        assert httpx.get(device.url + RESTART, auth=(user, USERS[user][1])).status_code == 403
    response = httpx.get(device.url + RESTART, auth=ADMIN, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    after, _ = wait_for_new_boot(device, before)
    assert after != before
    log = httpx.get(device.url + "/axis-cgi/systemlog.cgi", auth=ADMIN).text
    assert "resetSource" not in log
    assert json.loads((device.state_dir / "lifetime.json").read_text())["restarts"] == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/156"},  # any browser: <img src>
        {"Accept": "text/html,application/xhtml+xml"},  # a navigation
        {"Upgrade-Insecure-Requests": "1"},
        {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"},
        {"User-Agent": "Mozilla/5.0", "Referer": "http://attacker.test/"},
    ],
)
def test_restart_cgi_refuses_browsers_from_elsewhere(
    shared_server: Server, headers: dict[str, str]
) -> None:
    before = boot_id(shared_server)
    response = httpx.get(shared_server.url + RESTART, auth=ADMIN, headers=headers)
    assert response.status_code == 403
    assert "cross-site" in response.text
    time.sleep(0.2)
    assert boot_id(shared_server) == before


def test_restart_cgi_from_the_devices_own_page_is_allowed(device: Server) -> None:
    before = boot_id(device)
    headers = {"User-Agent": "Mozilla/5.0", "Sec-Fetch-Site": "same-origin"}
    assert httpx.get(device.url + RESTART, auth=ADMIN, headers=headers).status_code == 200
    assert wait_for_new_boot(device, before)[0] != before
