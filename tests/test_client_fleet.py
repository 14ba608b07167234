"""`vapixlog capture` on a fleet: 50 emulated devices plus an unreachable one, and a device
killed in the middle of the procedure."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import time
from pathlib import Path

import httpx
import pytest

from conftest import start_server
from servers import USERS, VAPIXLOG, Server, free_port, free_port_block

ROOT = ("root", USERS["root"][1])
PERSISTENT = "/config/rest/log/v1/persistent/enabled"


def capture(*args: str, timeout: float = 120) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAPIXLOG_")}
    env["VAPIXLOG_PASSWORD"] = ROOT[1]
    result = subprocess.run(
        [*VAPIXLOG, "capture", "--json", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout), result.stderr


def wait_until_up(urls: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(auth=ROOT, timeout=5) as client:
        for url in urls:
            while True:
                try:
                    client.get(url + PERSISTENT)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, f"{url} did not start"
                    time.sleep(0.05)


def persistent_states(urls: list[str]) -> list[bool]:
    with httpx.Client(auth=ROOT, timeout=10) as client:
        return [client.get(url + PERSISTENT).json()["data"] for url in urls]


def persistent_text(tar_path: Path) -> str:
    with tarfile.open(tar_path) as tar:
        return "".join(
            tar.extractfile(m).read().decode()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.name == "var/log/persist-all.log"
        )


@pytest.mark.timeout(180)
def test_fleet_of_50_and_an_unreachable_device(tmp_path: Path) -> None:
    fleet = Server(tmp_path / "state", port=free_port_block(50))
    fleet.extra_args = ["--devices", "50", "--reboot-downtime", "0.5"]
    fleet.add_users()
    fleet.start()
    try:
        urls = (fleet.state_dir / "devices.txt").read_text().split()
        assert len(urls) == 50
        wait_until_up(urls)
        unreachable = f"http://127.0.0.1:{free_port()}"
        devices_file = tmp_path / "fleet.txt"
        devices_file.write_text("# the lab\n" + "\n".join([*urls[:25], unreachable, *urls[25:]]))
        out = tmp_path / "out"
        code, report, stderr = capture("--devices-file", str(devices_file), "--output", str(out))

        assert code == 1
        assert report["succeeded"] == 50 and report["failed"] == 1
        by_url = {d["device"]: d for d in report["devices"]}
        assert [d["device"] for d in report["devices"]] == [*urls[:25], unreachable, *urls[25:]]
        failed = by_url[unreachable]
        assert not failed["ok"] and failed["failed_stage"] == "connect"
        assert "connection refused" in failed["error"]
        assert "after 5 tries" in failed["error"]  # first contact is retried with backoff
        assert stderr.startswith(f"vapixlog: {unreachable}: ") and stderr.count("\n") == 1

        tars = sorted(out.glob("*.tar"))
        assert len(tars) == 50
        assert len(list(out.glob("*.tar.json"))) == 50  # a sidecar each (DECISIONS 8)
        assert {str(out / Path(by_url[u]["file"]).name) for u in urls} == {str(t) for t in tars}
        for url in urls[::7]:
            device = by_url[url]
            assert device["ok"] and device["bytes"] == Path(device["file"]).stat().st_size
            text = persistent_text(Path(device["file"]))
            assert f"boot {device['boot_id']}" in text and "reboot: ending boot" in text
        assert persistent_states(urls) == [False] * 50
    finally:
        fleet.stop()


def reboot_requested(server: Server) -> bool:
    """The reboot request is in the device's audit log (AXIS OS 12.5+, the default)."""
    folder = server.state_dir / "audit" / "log"
    return any(" Restart." in p.read_text() for p in folder.glob("messages-*.log"))


@pytest.mark.timeout(120)
def test_a_device_killed_during_the_procedure(tmp_path: Path) -> None:
    survivors = [start_server(tmp_path / f"state{i}", "--reboot-downtime", "0.5") for i in range(2)]
    victim = start_server(tmp_path / "victim", "--reboot-downtime", "5")
    servers = [survivors[0], victim, survivors[1]]
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VAPIXLOG_")}
        env["VAPIXLOG_PASSWORD"] = ROOT[1]
        args = [arg for s in servers for arg in ("--device", s.url)]
        proc = subprocess.Popen(
            [
                *VAPIXLOG,
                "capture",
                "--json",
                "--wait-timeout",
                "4",
                "-o",
                str(tmp_path / "o"),
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + 30
        while not reboot_requested(victim):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        victim.kill()  # SIGKILL while it is down for its reboot
        stdout, stderr = proc.communicate(timeout=60)
        assert "Traceback" not in stderr, stderr
        assert proc.returncode == 1
        report = json.loads(stdout)
        ok = [d["ok"] for d in report["devices"]]
        assert ok == [True, False, True]
        failed = report["devices"][1]
        assert failed["failed_stage"] == "wait"
        assert "did not come back with a new boot within 4 s" in failed["error"]
        assert "could NOT be turned off" in failed["error"]
        assert stderr.count("\n") == 1 and stderr.startswith(f"vapixlog: {victim.url}: ")
        assert len(list((tmp_path / "o").glob("*.tar"))) == 2
        assert persistent_states([s.url for s in survivors]) == [False, False]
    finally:
        for server in servers:
            if server.proc:
                server.stop()
