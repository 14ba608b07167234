"""`vapixlog serve --devices N`: independent emulated devices in one process."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest

from conftest import start_server
from reboots import ADMIN, boot_id, reboot_and_wait
from servers import USERS, Server, free_port_block

COUNT = 3


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[list[Server]]:
    first = start_server(
        tmp_path / "state",
        "--devices",
        str(COUNT),
        "--reboot-downtime",
        "0.5",
        "--serial",
        "ACCC8E000010",
        port=free_port_block(COUNT),  # consecutive ports, away from ephemeral client ports
    )
    devices = [first] + [
        Server(first.state_dir, port=first.port + index) for index in range(1, COUNT)
    ]
    yield devices
    if first.proc:
        first.stop()


def identity(server: Server) -> dict[str, str]:
    """Serial (the report's `Serial No:`), host name (the boot entry) and boot id
    (systemready.cgi) of one device."""
    text = httpx.get(server.url + "/axis-cgi/serverreport.cgi", auth=ADMIN).text
    ready = {"apiVersion": "1.0", "method": "systemready"}
    reply = httpx.post(server.url + "/axis-cgi/systemready.cgi", json=ready).json()
    serial = re.search(r"^Serial No: (\S+)$", text, re.MULTILINE)
    hostname = re.search(r"starting on (\S+) ", text)
    assert serial and hostname, text
    return {"serial": serial[1], "hostname": hostname[1], "boot": reply["data"]["bootid"]}


def test_devices_have_their_own_identity_state_and_boots(fleet: list[Server]) -> None:
    state = fleet[0].state_dir
    urls = (state / "devices.txt").read_text().split()
    assert urls == [device.url for device in fleet]
    reports = [identity(device) for device in fleet]
    assert [r["serial"] for r in reports] == ["ACCC8E000010", "ACCC8E000011", "ACCC8E000012"]
    assert len({r["hostname"] for r in reports}) == COUNT
    assert len({r["boot"] for r in reports}) == COUNT

    # Users of the state dir apply to every device (a viewer is refused a write everywhere).
    viewer = ("viewer", USERS["viewer"][1])
    for device in fleet:
        assert httpx.get(device.url + "/config/rest/log/v1", auth=viewer).status_code == 200

    # Log state is per device.
    httpx.patch(
        fleet[0].url + "/config/rest/log/v1/persistent/enabled", json={"data": True}, auth=ADMIN
    )
    enabled = [
        httpx.get(d.url + "/config/rest/log/v1/persistent/enabled", auth=ADMIN).json()["data"]
        for d in fleet
    ]
    assert enabled == [True, False, False]
    assert (state / "devices" / "0000" / "log" / "persistent").is_dir()


def test_one_device_reboots_alone(fleet: list[Server]) -> None:
    before = [boot_id(device) for device in fleet]
    httpx.post(
        fleet[1].url + "/config/rest/log/v1/writeMessage",
        json={"data": {"msg": "on device 1"}},
        auth=ADMIN,
    )
    new_id, refused = reboot_and_wait(fleet[1])
    assert refused and new_id != before[1]
    assert [boot_id(fleet[0]), boot_id(fleet[2])] == [before[0], before[2]]
    log = httpx.get(fleet[1].url + "/axis-cgi/systemlog.cgi", auth=ADMIN).text
    assert "on device 1" not in log and f"previous boot {before[1]} shut down cleanly" in log


def test_bad_device_counts_are_refused(tmp_path: Path) -> None:
    import subprocess

    from servers import VAPIXLOG

    for count in ("0", "-1", "many"):
        result = subprocess.run(
            [*VAPIXLOG, "serve", "--devices", count, "--state-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        assert result.returncode == 2 and "Traceback" not in result.stderr


def test_every_device_keeps_its_date_header_current_across_reboots(fleet: list[Server]) -> None:
    """The devices share one clock (`vapixlog.uvicorn_server`): each one's `Date` header
    follows the time, also on a device started by a reboot after the clock began."""
    reboot_and_wait(fleet[1])

    def dates() -> list[float]:
        answers = [httpx.get(device.url + "/axis-cgi/systemready.cgi") for device in fleet]
        return [parsedate_to_datetime(a.headers["date"]).timestamp() for a in answers]

    first = dates()
    assert all(abs(date - time.time()) < 2 for date in first), first
    time.sleep(2.2)
    later = dates()
    assert all(b - a >= 2 for a, b in zip(first, later, strict=True)), (first, later)
    assert all(abs(date - time.time()) < 2 for date in later), later
