"""systemready.cgi as on devices (system-ready.md): anonymous, string fields per API version,
a UUID boot id that changes on every boot, an uptime that restarts, errors as code 1000 in
HTTP 200; driven through httpx, curl and ax-devil-device-api. The client's use of it to tell a
reboot (`BootState`) is at the end."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import start_server
from reboots import ADMIN, reboot_and_wait
from servers import Server
from vapixlog.client import BootState

PATH = "/axis-cgi/systemready.cgi"
FIELDS = {
    "1.2": ["systemready", "needsetup"],
    "1.4": ["systemready", "needsetup", "uptime", "bootid"],
    "1.5": ["systemready", "needsetup", "uptime", "bootid", "passphrasepolicy"],
}


def call(server: Server, body: Any, **kwargs: Any) -> dict[str, Any]:
    response = httpx.post(server.url + PATH, json=body, timeout=10, **kwargs)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    reply: dict[str, Any] = response.json()
    return reply


@pytest.fixture(scope="module", params=["1.2", "1.4", "1.5"])
def device(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    version = request.param
    server = start_server(
        tmp_path_factory.mktemp(f"sr{version}") / "state",
        "--systemready-version",
        version,
        "--reboot-downtime",
        "0.3",
    )
    yield server
    if server.proc:
        server.stop()


def version_of(server: Server) -> str:
    return server.extra_args[server.extra_args.index("--systemready-version") + 1]


def test_fields_follow_the_api_version_as_strings(device: Server) -> None:
    version = version_of(device)
    # Any requested 1.x gets the device's own version, and no login is needed.
    reply = call(device, {"apiVersion": "1.0", "context": "boot", "method": "systemready"})
    assert list(reply) == ["apiVersion", "context", "method", "data"]
    assert reply["apiVersion"] == version
    data = reply["data"]
    assert list(data) == FIELDS[version]
    assert all(isinstance(value, str) for value in data.values())
    assert data["systemready"] == "yes" and data["needsetup"] == "no"
    if "bootid" in data:
        assert str(uuid.UUID(data["bootid"])) == data["bootid"]
        assert int(data["uptime"]) >= 0
    # Credentials sent anyway do no harm; no context, no context in the reply.
    again = call(device, {"apiVersion": "1", "method": "systemready"}, auth=ADMIN)
    assert list(again) == ["apiVersion", "method", "data"]


def test_get_supported_versions(device: Server) -> None:
    reply = call(device, {"context": "v", "method": "getSupportedVersions"})
    version = version_of(device)
    assert reply == {
        "apiVersion": version,
        "context": "v",
        "method": "getSupportedVersions",
        "data": {"apiVersions": [version]},
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1]", "JSON object"),
        (b'{"apiVersion": "1.4", "method": "shutdown"}', "Unknown method"),
        (b'{"apiVersion": "2.0", "method": "systemready"}', "Unsupported API version"),
        (b'{"method": "systemready"}', "apiVersion"),
        (b'{"apiVersion": "1.4", "method": "systemready", "params": {"timeout": "9"}}', "timeout"),
        (b'{"apiVersion": "1.4", "method": "systemready", "params": {"timeout": 61}}', "timeout"),
        (b'{"apiVersion": "1.4", "method": "systemready", "params": {"timeout": -1}}', "timeout"),
        (b'{"apiVersion": "1.4", "method": "systemready", "params": 5}', "params"),
    ],
)
def test_errors_are_code_1000_in_http_200(device: Server, body: bytes, message: str) -> None:
    response = httpx.post(device.url + PATH, content=body, timeout=10)
    assert response.status_code == 200
    reply = response.json()
    assert reply["apiVersion"] == version_of(device)
    assert reply["error"]["code"] == 1000
    assert message in reply["error"]["message"]
    assert "data" not in reply


def test_boot_id_and_uptime_change_with_a_reboot(device: Server) -> None:
    query = {"apiVersion": "1.4", "method": "systemready", "params": {"timeout": 5}}
    before = call(device, query)["data"]
    time.sleep(1.1)
    reboot_and_wait(device)
    after = call(device, query)["data"]
    assert after["systemready"] == "yes"
    if version_of(device) == "1.2":
        assert after == before  # nothing tells the boots apart
        return
    assert after["bootid"] != before["bootid"]
    assert int(after["uptime"]) < int(before["uptime"]) + 1


def test_real_clients_read_it(device: Server) -> None:
    from ax_devil_device_api import Client, DeviceConfig

    config = DeviceConfig.http("127.0.0.1", "nobody", "wrong", port=device.port)
    with Client(config) as client:  # anonymous: the wrong login is never used
        state = client.systemready.systemready(timeout=2)
        assert state["systemready"] == "yes"
        assert client.systemready.get_supported_versions() == [version_of(device)]
    curl = subprocess.run(
        ["curl", "-s", "--anyauth", "-u", "root:x", "-H", "Content-Type: application/json",
         "-d", '{"apiVersion":"1.0","method":"systemready"}', device.url + PATH],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert '"systemready":"yes"' in curl.stdout


def test_a_page_of_another_site_is_refused(tmp_path: Path) -> None:
    server = start_server(tmp_path / "state")
    try:
        body = {"apiVersion": "1.0", "method": "systemready"}
        reply = call(server, body, headers={"Origin": "http://attacker.test"})
        assert reply["error"]["code"] == 403 and reply["apiVersion"] == "1.5"
    finally:
        server.stop()


# -- the client's reading of it ---------------------------------------------------------


def reply(**data: str) -> dict[str, Any]:
    return {"apiVersion": "1.5", "method": "systemready", "data": data}


def test_boot_state_from_replies() -> None:
    old = BootState.from_reply(reply(systemready="yes", needsetup="no"))
    assert old is not None and old.ready and old.boot_id is None and old.uptime is None
    new = BootState.from_reply(reply(systemready="no", uptime="12", bootid="b"))
    assert new is not None and not new.ready and new.boot_id == "b" and new.uptime == 12
    error = {"apiVersion": "1.5", "error": {"code": 1000, "message": "x"}}
    assert BootState.from_reply(error) is None
    assert BootState.from_reply([]) is None
    odd = BootState.from_reply(reply(uptime="-3", bootid=""))
    assert odd is not None and odd.boot_id is None and odd.uptime is None


def test_reboot_is_told_by_boot_id_then_uptime() -> None:
    before = BootState(True, "a", 100.0, read_at=0.0)
    assert BootState(True, "b", 500.0, read_at=10.0).rebooted_since(before) is True
    assert BootState(True, "a", 0.0, read_at=10.0).rebooted_since(before) is False
    no_ids = BootState(True, None, 100.0, read_at=0.0)
    assert BootState(True, None, 3.0, read_at=30.0).rebooted_since(no_ids) is True
    assert BootState(True, None, 129.0, read_at=30.0).rebooted_since(no_ids) is False
    assert BootState(True, read_at=30.0).rebooted_since(BootState(True)) is None
