"""The client commands of `vapixlog`, run as subprocesses against a real server."""

from __future__ import annotations

import os
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import start_server
from servers import USERS, VAPIXLOG, Server, free_port
from test_client_library import persistent_section
from vapixlog.cli.device import new_lines


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("cli") / "state", "--reboot-downtime", "0.5")
    yield server
    if server.proc:
        server.stop()


def env_for(server: Server | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAPIXLOG_")}
    if server is not None:
        env |= {"VAPIXLOG_DEVICE": server.url, "VAPIXLOG_PASSWORD": USERS["root"][1]}
    return env | extra


def vapixlog(
    *args: str, server: Server | None, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*VAPIXLOG, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env_for(server, **env),
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_write_with_severity_names_and_numbers(device: Server) -> None:
    assert vapixlog("write", "cli plain", server=device).returncode == 0
    assert vapixlog("write", "cli err", "--severity", "err", server=device).returncode == 0
    assert vapixlog("write", "cli debug", "--severity", "7", server=device).returncode == 0
    log = vapixlog("syslog", server=device).stdout
    assert "[ INFO    ] log-api" in log and "cli plain" in log
    assert "[ ERR     ] log-api" in log and "cli err" in log
    assert "[ DEBUG   ] log-api" in log and "cli debug" in log
    bad = vapixlog("write", "x", "--severity", "loud", server=device)
    assert bad.returncode == 2 and "invalid severity 'loud'" in bad.stderr


def test_flags_instead_of_environment(device: Server) -> None:
    flags = ["--device", device.url, "--user", "viewer", "--password", USERS["viewer"][1]]
    assert vapixlog("persistent", "status", *flags, server=None).stdout == "off\n"
    denied = vapixlog("write", "viewer", *flags, server=None)
    assert denied.returncode == 1
    assert denied.stderr.startswith("vapixlog: ") and "HTTP 403, code 4" in denied.stderr
    assert len(denied.stderr.splitlines()) == 1


def test_persistent_clear_and_report(device: Server, tmp_path: Path) -> None:
    assert vapixlog("persistent", "on", server=device).returncode == 0
    assert vapixlog("persistent", "status", server=device).stdout == "on\n"
    vapixlog("write", "persistent from the cli", server=device)
    assert vapixlog("persistent", "off", server=device).returncode == 0
    assert vapixlog("persistent", "status", server=device).stdout == "off\n"
    tar = tmp_path / "report.tar"
    result = vapixlog("report", "-o", str(tar), server=device)
    assert result.returncode == 0 and f"{tar.stat().st_size} bytes" in result.stderr
    with tarfile.open(tar) as archive:
        names = archive.getnames()
        persistent = [n for n in names if n == "var/log/persist-all.log"]
        text = b"".join(archive.extractfile(n).read() for n in persistent)  # type: ignore[union-attr]
    assert b"persistent from the cli" in text
    text_report = vapixlog("report", "--mode", "text", "-o", "-", server=device).stdout
    assert "----- Server Report Start -----" in text_report and "Serial No: " in text_report
    assert "persistent from the cli" in persistent_section(text_report)
    assert vapixlog("clear", server=device).returncode == 0
    cleared = vapixlog("report", "--mode", "text", "-o", "-", server=device).stdout
    assert persistent_section(cleared) == ""


def test_reboot_wait(device: Server) -> None:
    before = vapixlog("report", "--mode", "text", "-o", "-", server=device).stdout
    result = vapixlog("reboot", "--wait", "--wait-timeout", "60", server=device)
    assert result.returncode == 0, result.stderr
    boot = result.stdout.split()[-1]
    assert len(boot) == 36 and boot not in before  # a UUID, of a boot after the report
    assert f"boot {boot}" in vapixlog("syslog", server=device).stdout


def test_syslog_follow_prints_only_new_lines_and_stops_on_ctrl_c(device: Server) -> None:
    proc = subprocess.Popen(
        [*VAPIXLOG, "syslog", "--follow", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_for(device),
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        seen: list[str] = []
        while not any("starting on" in line for line in seen):  # the first fetch
            seen.append(proc.stdout.readline())
        vapixlog("write", "followed once", server=device)
        deadline = time.monotonic() + 30
        while not any("followed once" in line for line in seen):
            assert time.monotonic() < deadline
            seen.append(proc.stdout.readline())
        vapixlog("write", "followed twice", server=device)
        while not any("followed twice" in line for line in seen):
            assert time.monotonic() < deadline
            seen.append(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(20)
    stderr = proc.stderr.read()
    assert code == 130 and "Traceback" not in stderr, stderr
    assert sum("followed once" in line for line in seen) == 1


def test_new_lines() -> None:
    assert new_lines([], ["a", "b"]) == ["a", "b"]
    assert new_lines(["a", "b"], ["a", "b", "c"]) == ["c"]
    assert new_lines(["a", "b", "c", "d"], ["b", "c", "d", "e"]) == ["e"]  # oldest dropped
    assert new_lines(["a", "b"], ["x", "y"]) == ["x", "y"]  # a new boot
    assert new_lines(["a", "b"], ["a", "b"]) == []


def test_capture_one_device_with_table(device: Server, tmp_path: Path) -> None:
    result = vapixlog("capture", "--output", str(tmp_path / "out"), server=device)
    assert result.returncode == 0, result.stderr
    (tar,) = (tmp_path / "out").glob("*.tar")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [tar.name, tar.name + ".json", "capture-journal.jsonl", "summary.json", "report.html"]
    )  # the tar, its sidecar, the journal, the fleet's summary and report
    assert tar.name.startswith(f"127.0.0.1_{device.port}_ACCC8E") and tar.suffix == ".tar"
    assert device.url in result.stdout and " ok " in result.stdout
    assert "1 device: 1 succeeded, 0 failed" in result.stdout
    assert f"report: {tmp_path / 'out' / 'report.html'} (1 device)" in result.stdout
    assert vapixlog("persistent", "status", server=device).stdout == "off\n"


def test_errors_are_one_line(tmp_path: Path) -> None:
    missing = vapixlog("write", "x", server=None)
    assert missing.returncode == 2 and missing.stderr == (
        "vapixlog: no device: give --device URL or set VAPIXLOG_DEVICE\n"
    )
    down = f"http://127.0.0.1:{free_port()}"
    refused = vapixlog("persistent", "status", "--device", down, server=None)
    assert refused.returncode == 1
    assert refused.stderr == f"vapixlog: {down}: connection refused\n"
    bad_url = vapixlog("clear", "--device", "ftp://x", server=None)
    assert bad_url.returncode == 2 and bad_url.stderr.startswith("vapixlog: invalid device URL")
    no_file = vapixlog(
        "capture", "-o", str(tmp_path), "--devices-file", "/nonexistent", server=None
    )
    assert no_file.returncode == 2 and no_file.stderr.startswith("vapixlog: ")  # a bad argument


def test_capture_reads_one_report_and_probes_none(tmp_path: Path) -> None:
    """A device whose reports take 4 s (as real ones take ~30 s) and whose reboot keeps it
    down 2 s: the capture takes the reboot plus one report, because the new boot is told by
    systemready.cgi; a client probing with reports would pay 4 s per probe. The full-size
    case (`--report-delay 30 --reboot-downtime 20`, under 60 s) is in docs/benchmarks.md."""
    server = start_server(tmp_path / "state", "--report-delay", "4", "--reboot-downtime", "2")
    try:
        started = time.monotonic()
        result = vapixlog(
            "capture", "--output", str(tmp_path / "out"), "--report-timeout", "30",
            server=server,
        )  # fmt: skip
        took = time.monotonic() - started
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert 6.0 <= took < 10.0, took  # 2 s down + 4 s report + the procedure's own requests
    assert len(list((tmp_path / "out").glob("*.tar"))) == 1
