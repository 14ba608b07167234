"""The use case of the Log API end to end (log-api.md, "Capture logs between boot sessions"):
turn persistent logging on, reboot through firmwaremanagement.cgi, turn it off, download every
log file with serverreport.cgi?mode=tar_all, clear the persistent log."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import start_server
from reboots import ADMIN, boot_id, reboot_and_wait, wait_for_new_boot
from servers import Server

LOG = "/config/rest/log/v1"


@pytest.fixture
def device(tmp_path: Path) -> Iterator[Server]:
    server = start_server(tmp_path / "state", "--reboot-downtime", "0.5")
    yield server
    if server.proc:
        server.stop()


def write(server: Server, msg: str) -> None:
    response = httpx.post(
        server.url + f"{LOG}/writeMessage", json={"data": {"msg": msg}}, auth=ADMIN
    )
    assert response.json() == {"status": "success"}


def set_persistent(server: Server, enabled: bool) -> None:
    response = httpx.patch(
        server.url + f"{LOG}/persistent/enabled", json={"data": enabled}, auth=ADMIN
    )
    assert response.json() == {"status": "success"}


def tar_all(server: Server) -> tuple[list[str], list[str]]:
    """The messages of the volatile and of the persistent part of a tar_all, in order."""
    response = httpx.get(
        server.url + "/axis-cgi/serverreport.cgi?mode=tar_all", auth=ADMIN, timeout=60
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-tar"
    volatile: list[str] = []
    persistent: list[str] = []
    with tarfile.open(fileobj=io.BytesIO(response.content)) as archive:
        for member in archive.getmembers():
            file = archive.extractfile(member)
            assert file is not None
            lines = file.read().decode().splitlines()
            if member.name == "var/log/messages":
                volatile += lines
            elif member.name == "var/log/persist-all.log":
                persistent += lines
    return volatile, persistent


def position(lines: list[str], text: str) -> int:
    found = [i for i, line in enumerate(lines) if text in line]
    assert len(found) == 1, (text, found)
    return found[0]


def test_capture_logs_between_boot_sessions(device: Server) -> None:
    set_persistent(device, True)
    write(device, "message A before the reboot")
    first = boot_id(device)
    second, _ = reboot_and_wait(device)
    write(device, "message B after the reboot")
    set_persistent(device, False)
    write(device, "message C after disabling")

    volatile, persistent = tar_all(device)
    a = position(persistent, "message A before the reboot")
    shutdown = position(persistent, f"reboot: ending boot {first}, shutting down")
    boot = position(persistent, f"), boot {second}")
    previous = position(persistent, f"previous boot {first} shut down cleanly")
    b = position(persistent, "message B after the reboot")
    assert a < shutdown < boot < previous < b
    assert not any("message C" in line for line in persistent)
    assert any("message C after disabling" in line for line in volatile)
    assert not any("message A" in line for line in volatile)

    clear = httpx.post(device.url + f"{LOG}/persistent/clearLog", json={"data": {}}, auth=ADMIN)
    assert clear.json() == {"status": "success"}
    _, persistent = tar_all(device)
    assert not any("message A" in line or "message B" in line for line in persistent)


def test_capture_across_a_crash(device: Server) -> None:
    """SIGKILL in place of the reboot: acknowledged persistent entries stay, volatile ones go."""
    write(device, "volatile only, before the crash")
    set_persistent(device, True)
    write(device, "message A acknowledged before the crash")
    first = boot_id(device)
    device.kill()
    device.start()
    wait_for_new_boot(device, first)
    write(device, "message B after the crash")
    set_persistent(device, False)

    volatile, persistent = tar_all(device)
    a = position(persistent, "message A acknowledged before the crash")
    crashed = position(persistent, f"previous boot {first} ended without a clean shutdown")
    b = position(persistent, "message B after the crash")
    assert a < crashed < b
    assert not any("before the crash" in line for line in volatile)
    assert not any("volatile only" in line for line in persistent)
