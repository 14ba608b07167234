"""The audit store of AXIS OS 12.5+ on its own (`vapixlog.syslog.audit`): durable writes in the
device's line format, rotation with its `Audit Log rotated.` line, the cap, torn-tail repair."""

from __future__ import annotations

import asyncio
from pathlib import Path

from vapixlog.severity import Severity
from vapixlog.syslog import parse_line
from vapixlog.syslog.audit import ROTATED, AuditLimits, AuditLog
from vapixlog.syslog.entry import Entry

LIMITS = AuditLimits(file_bytes=1 << 20, files=4, keep_free_bytes=0)


def _store(state: Path, limits: AuditLimits = LIMITS) -> tuple[AuditLog, list[str]]:
    notices: list[str] = []
    store = AuditLog(
        state, hostname="axis-test", notify=lambda _s, m: notices.append(m), limits=limits
    )
    return store, notices


def test_entries_are_durable_lines_in_the_device_format(tmp_path: Path) -> None:
    async def run() -> list[Entry]:
        store, _ = _store(tmp_path)
        tapped: list[Entry] = []
        store.open()
        store.add_tap(tapped.append)
        assert await store.write("API Activity: root@192.0.2.1 configured x (true).") is True
        assert await store.write(
            "Authentication: a@b Authentication failed (HTTP/S).", process="httpd"
        )
        # Durable once acknowledged: on disk before close, as the files show.
        on_disk = "".join(p.read_text() for p in sorted((tmp_path / "audit" / "log").iterdir()))
        assert "configured x (true)." in on_disk
        await store.close()
        return tapped

    tapped = asyncio.run(run())
    store, _ = _store(tmp_path)
    lines = store.lines()
    parsed = [parse_line(line) for line in lines]
    assert [(p.severity, p.tag, p.hostname) for p in parsed if p] == [
        (Severity.INFO, "audit", "axis-test"),
        (Severity.INFO, "httpd", "axis-test"),
    ]
    assert lines[1].endswith("]: Authentication: a@b Authentication failed (HTTP/S).")
    assert store.lines(tail=1) == lines[1:]
    assert store.lines(tail=5) == lines
    assert [(e.audit, e.severity, e.tag) for e in tapped] == [
        (True, Severity.INFO, "audit"),
        (True, Severity.INFO, "httpd"),
    ]


def test_rotation_opens_each_file_with_its_line_and_the_cap_drops_the_oldest(
    tmp_path: Path,
) -> None:
    limits = AuditLimits(file_bytes=4096, files=3, keep_free_bytes=0)

    async def run() -> None:
        store, notices = _store(tmp_path, limits)
        store.open()
        for index in range(200):  # about 20 KB: several rotations, over the cap
            await store.write(f"API Activity: root@192.0.2.1 configured n ({index}).")
        await store.close()
        assert any("audit log over its cap" in notice for notice in notices)

    asyncio.run(run())
    store, _ = _store(tmp_path, limits)
    files = store.files()
    assert 3 <= len(files) <= 4
    assert sum(path.stat().st_size for path in files) <= 4 * 4096
    for path in files[1:]:  # every file a rotation started opens with the rotation line
        first = parse_line(path.read_text().splitlines()[0])
        assert first is not None and (first.tag, first.message) == ("audit", ROTATED)
    lines = store.lines()
    numbers = [int(line.rsplit("(", 1)[1].rstrip(").")) for line in lines if "configured n" in line]
    assert numbers == list(range(numbers[0], 200))  # oldest dropped, nothing else missing


def test_a_torn_tail_is_cut_and_set_aside(tmp_path: Path) -> None:
    async def write_one() -> None:
        store, _ = _store(tmp_path)
        store.open()
        await store.write("Entity Management: root@192.0.2.1 Restart.")
        await store.close()

    asyncio.run(write_one())
    (current,) = (tmp_path / "audit" / "log").iterdir()
    with current.open("ab") as file:
        file.write(b"2026-11-29T10:00:00.000+00:00 axis-test [ INFO    ] audit[1]: half")

    async def reopen() -> list[str]:
        store, notices = _store(tmp_path)
        store.open()
        await asyncio.sleep(0)  # the notice hops to the loop
        await store.close()
        return notices

    notices = asyncio.run(reopen())
    assert any(notice.startswith("repaired audit log messages-") for notice in notices)
    store, _ = _store(tmp_path)
    assert [line.endswith("Restart.") for line in store.lines()] == [True]
    assert list((tmp_path / "audit" / "recovered").iterdir())
