"""firmwaremanagement.cgi: JSON-RPC replies and errors, and the reboot it performs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import start_server
from reboots import ADMIN, FIRMWARE, boot_id, reboot_and_wait, rpc, wait_for_new_boot
from servers import USERS, Server
from syslog_files import persistent_lines


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
    assert reply["apiVersion"] == "1.0"
    for key, value in echo.items():
        assert reply[key] == value
    assert "data" not in reply


def test_get_supported_versions(shared_server: Server) -> None:
    reply = rpc(shared_server, {"method": "getSupportedVersions", "context": "v"}).json()
    assert reply == {
        "context": "v",
        "method": "getSupportedVersions",
        "data": {"apiVersions": ["1.0"]},
    }


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
    reboot_at = messages.index("reboot requested by user root from 127.0.0.1")
    assert messages.index("before reboot") < reboot_at
    assert messages[reboot_at + 1] == f"reboot: ending boot {first}, shutting down"
    assert second in messages[reboot_at + 2]


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
