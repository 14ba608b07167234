"""Crash safety: a short run of the SIGKILL harness (`crashtest.py`; `make crash-test` runs the
long one), its checkers (persistent and audit log), and the start-up repair of damaged
persistent files, end to end."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest

from conftest import start_server
from crashtest import CrashResult, check_audit_files, check_files, run_crash_test
from servers import USERS, Server
from syslog_files import persistent_lines
from vapixlog.syslog import ParsedLine, list_logs, parse_line

BASE = "/config/rest/log/v1"
ADMIN = ("root", USERS["root"][1])
PARTIAL = b"2026-11-25T19:32:11.043+00:00 axis-accc8e31c70d [ INFO    ] log-api[12]: cut sh"


def test_short_crash_run(tmp_path: Path) -> None:
    result = asyncio.run(run_crash_test(tmp_path / "state", kills=8, writers=16, seed=8))
    detail = "\n".join([result.line(), *result.start_failures, *result.problems])
    assert result.kills == 8, detail
    assert result.acked > 0, detail
    assert not result.start_failures, detail
    assert (result.lost, result.duplicated, result.torn) == (0, 0, 0), detail
    assert result.audit_acked > 0, detail
    assert (result.audit_lost, result.audit_duplicated, result.audit_torn) == (0, 0, 0), detail
    assert result.ok, detail


def test_crash_check_finds_lost_duplicated_and_torn_lines(tmp_path: Path) -> None:
    """The harness's own checker, on files damaged on purpose (so a pass means something)."""
    folder = tmp_path / "log" / "persistent"
    folder.mkdir(parents=True)
    line = "2026-11-25T19:32:11.043+00:00 axis-x [ INFO    ] log-api[1]: {}\n"
    good = "".join(line.format(f"crash k0 w0 n{i}") for i in range(3))
    run_together = line.format("crash k0 w1 n0").rstrip("\n") + line.format("crash k0 w1 n1")
    (folder / "messages-000001.log").write_text(good + line.format("crash k0 w0 n1"))
    (folder / "messages-000002.log").write_text(run_together + "garbage\n" + "torn tail")
    (folder / "notes.txt").write_text("not a log file\n")
    sent = {f"crash k0 w{w} n{i}" for w in range(2) for i in range(4)}
    result = CrashResult()
    check_files(tmp_path, sent, ["crash k0 w0 n0", "crash k0 w0 n3", "crash k0 w1 n1"], result)
    assert (result.lost, result.duplicated, result.torn) == (2, 1, 3), result.problems


def test_crash_check_finds_lost_duplicated_and_torn_audit_lines(tmp_path: Path) -> None:
    """The audit checker, on audit files damaged on purpose: a setup's line twice, two lines
    run together, garbage, a port never sent, a torn tail; other audit events are fine."""
    folder = tmp_path / "audit" / "log"
    folder.mkdir(parents=True)
    line = "2026-11-25T19:32:11.043+00:00 axis-x [ INFO    ] audit[1]: {}\n"

    def setup(port: int) -> str:
        return line.format(
            "API Activity: root@127.0.0.1 configured API.RemoteSyslog1.Servers "
            f"(UDP 127.0.0.1:{port} RFC5424 Debug All)."
        )

    login = line.format("Authentication: root@127.0.0.1 Authentication successful (HTTP/S).")
    started = line.format("Entity Management: Audit Log started.")
    first = started + login + setup(1024) + setup(1025) + setup(1026) + setup(1025)
    run_together = setup(1027).rstrip("\n") + setup(1028)
    torn_tail = setup(1031)[:-20]
    (folder / "messages-000001.log").write_text(first)
    (folder / "messages-000002.log").write_text(
        started + run_together + "garbage\n" + setup(9999) + torn_tail + "\n" + torn_tail
    )
    (folder / "notes.txt").write_text("not a log file\n")
    sent = set(range(1024, 1032))
    result = CrashResult(acked=1, audit_acked=5)
    check_audit_files(tmp_path, sent, [1024, 1026, 1028, 1029, 1030], result)
    audit = (result.audit_lost, result.audit_duplicated, result.audit_torn)
    assert audit == (3, 1, 5), result.problems
    assert (result.lost, result.duplicated, result.torn) == (0, 0, 0)
    assert "audit lost: setup of port 1028" in result.problems  # run into 1027's line
    assert not result.ok


def _systemlog(server: Server) -> str:
    return httpx.get(server.url + "/axis-cgi/systemlog.cgi", auth=ADMIN, timeout=10).text


def _write(server: Server, msg: str) -> None:
    reply = httpx.post(
        server.url + BASE + "/writeMessage", json={"data": {"msg": msg}}, auth=ADMIN, timeout=10
    )
    assert reply.json() == {"status": "success"}


def _stopped_server_with_log(tmp_path: Path) -> Server:
    """A server that wrote a few persistent entries and was then stopped cleanly."""
    server = start_server(tmp_path / "state")
    reply = httpx.patch(
        server.url + BASE + "/persistent/enabled", json={"data": True}, auth=ADMIN, timeout=10
    )
    assert reply.json() == {"status": "success"}
    for i in range(5):
        _write(server, f"before damage {i}")
    server.stop()
    return server


def _log_files(state_dir: Path) -> list[Path]:
    return sorted((state_dir / "log" / "persistent").glob("messages-*.log"))


@pytest.mark.parametrize(
    "damage",
    [PARTIAL, b"\0" * 4096, PARTIAL + b"\0" * 4096, b"\xff\xfe partial \xc3"],
    ids=["partial-line", "nul-bytes", "partial-then-nul", "invalid-utf8"],
)
def test_torn_tail_is_cut_and_set_aside_at_start(tmp_path: Path, damage: bytes) -> None:
    server = _stopped_server_with_log(tmp_path)
    newest = _log_files(server.state_dir)[-1]
    intact = newest.read_bytes()
    assert intact.endswith(b"\n")
    with newest.open("ab") as file:
        file.write(damage)

    try:
        server.start()
        log = _systemlog(server)
        _write(server, "after repair")
    finally:
        server.stop()

    data = newest.read_bytes()
    assert data.startswith(intact)  # the earlier lines are untouched
    assert data.endswith(b"\n")
    assert damage not in data and b"\0" not in data
    messages = [line.message for line in persistent_lines(server.state_dir)]
    for i in range(5):
        assert messages.count(f"before damage {i}") == 1
    assert messages.count("after repair") == 1

    set_aside = list((server.state_dir / "log" / "recovered").iterdir())
    assert len(set_aside) == 1
    assert set_aside[0].read_bytes() == damage
    expected = (
        f"repaired persistent log {newest.name}: cut {len(damage)} damaged bytes, "
        f"set aside in recovered/{set_aside[0].name}"
    )
    assert expected in log
    assert "shut down cleanly" in log  # a repair does not mean the last boot crashed
    assert expected in messages  # persistent logging is on: the repair is in the file too


def test_torn_tail_in_an_older_file_and_a_file_of_nul_bytes(tmp_path: Path) -> None:
    """Every file is checked, not only the newest; a file of nothing but NULs becomes empty."""
    server = _stopped_server_with_log(tmp_path)
    folder = server.state_dir / "log" / "persistent"
    oldest = _log_files(server.state_dir)[0]
    intact = oldest.read_bytes()
    with oldest.open("ab") as file:
        file.write(PARTIAL)
    (folder / "messages-000005.log").write_bytes(b"\0" * 8192)

    server.start()
    try:
        log = _systemlog(server)
        _write(server, "after repair")
    finally:
        server.stop()

    assert oldest.read_bytes() == intact
    assert log.count("repaired persistent log") == 2
    messages = [line.message for line in persistent_lines(server.state_dir)]
    assert "after repair" in messages
    assert b"after repair" in (folder / "messages-000005.log").read_bytes()


def test_start_with_unrelated_files_and_an_empty_log_file(tmp_path: Path) -> None:
    server = _stopped_server_with_log(tmp_path)
    folder = server.state_dir / "log" / "persistent"
    before = {path.name: path.read_bytes() for path in _log_files(server.state_dir)}
    unrelated = {
        "notes.txt": b"an operator's note\n\0\0 binary",
        "messages-1.log": b"not our naming scheme, no newline",
        "messages-000003.log.bak": b"\0" * 100,
        ".hidden": b"",
    }
    for name, content in unrelated.items():
        (folder / name).write_bytes(content)
    (folder / "subdir").mkdir()
    empty = folder / "messages-000004.log"  # newest, and empty (a crash right after rotating)
    empty.touch()

    server.start()
    try:
        log = _systemlog(server)
        _write(server, "after start")
    finally:
        server.stop()

    assert "repaired persistent log" not in log
    assert not (server.state_dir / "log" / "recovered").exists()
    for name, content in unrelated.items():
        assert (folder / name).read_bytes() == content  # not ours: left alone
    for name, content in before.items():
        assert (folder / name).read_bytes() == content
    assert re.search(rb"log-api\[\d+\]: after start\n", empty.read_bytes())
    for _, path in list_logs(folder):  # the service's own files parse cleanly
        _parse(path)


@pytest.mark.parametrize("kind", ["directory", "dangling-symlink"])
def test_start_with_a_non_file_named_like_a_log_file(tmp_path: Path, kind: str) -> None:
    """Not a log file, whatever its name: ignored, and the start does not fail."""
    server = _stopped_server_with_log(tmp_path)
    folder = server.state_dir / "log" / "persistent"
    stray = folder / "messages-000009.log"
    if kind == "directory":
        stray.mkdir()
    else:
        stray.symlink_to(tmp_path / "missing")

    server.start()
    try:
        _write(server, "after start")
    finally:
        server.stop()

    assert stray.is_dir() if kind == "directory" else stray.is_symlink()
    messages = [line.message for _, path in list_logs(folder) for line in _parse(path)]
    assert messages.count("after start") == 1
    assert messages.count("before damage 0") == 1


def test_start_when_a_torn_tail_cannot_be_set_aside(tmp_path: Path) -> None:
    """The repair fails (`recovered` is a file, not a dir): reported, and the start goes on."""
    server = _stopped_server_with_log(tmp_path)
    with _log_files(server.state_dir)[-1].open("ab") as file:
        file.write(PARTIAL)
    (server.state_dir / "log" / "recovered").write_text("in the way\n")

    server.start()
    try:
        log = _systemlog(server)
    finally:
        server.stop()
    assert "cannot check persistent log messages-000001.log" in log


def _parse(path: Path) -> list[ParsedLine]:
    data = path.read_bytes()
    assert data.endswith(b"\n"), path
    lines = [parse_line(raw) for raw in data.decode().splitlines()]
    assert None not in lines, path
    return [line for line in lines if line is not None]
