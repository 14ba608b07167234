"""Reading a capture folder: the tar archives of `serverreport.cgi?mode=tar_all`, their
sidecars (`<archive>.json`, DECISIONS 8) and the capture journal, robustly.

Every file in the folder becomes either a device (an archive, read or not) or a named
problem: a truncated or corrupt archive, a tar that is not a server report (a foreign
tar), a file that is no tar at all, an unfinished download (`.part`). An empty folder is
a problem too. Nothing here raises for what a file contains.

Archives made elsewhere (no sidecar) are read all the same; the fields only a sidecar
knows (URL, serial, firmware, boot ids, stage timings) stay empty.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vapixlog.syslog.line import parse_line

SYSTEM_MEMBERS = ("var/log/persist-all.log", "var/log/messages")
AUDIT_MEMBER = "var/lib/syslog-ng/audit.log"
KNOWN_MEMBERS = frozenset(
    {
        *SYSTEM_MEMBERS,
        AUDIT_MEMBER,
        *(f"var/log/{n}.log" for n in ("info", "warning", "error", "critical")),
    }
)
JOURNAL_NAME = "capture-journal.jsonl"  # vapixlog.client._journal.JOURNAL_NAME
# What this package and the capture write into the folder: not archives, not problems.
OWN_FILES = ("summary.json", "report.html", "logs-index.sqlite", JOURNAL_NAME)
OWN_PREFIXES = ("report-", "logs-index.sqlite-")
MAX_ARCHIVE = 512 << 20  # larger than any device's report: refused rather than read
_SHUTDOWN = "reboot: ending boot "
_STARTING = " starting on "


@dataclass(frozen=True, slots=True)
class Entry:
    """One parsed line of a device's log. `line` is the line as the device wrote it
    (escaped); `source` is `system` or `audit`; `boot` the boot id when the log tells it."""

    timestamp: str
    epoch: float
    severity: int
    tag: str
    pid: int
    message: str
    line: str
    source: str
    boot: str | None


@dataclass
class DeviceLog:
    """One archive of the folder, read: its entries, or the problem that kept them out."""

    name: str  # the archive's file name
    path: Path
    size: int
    mtime_ns: int
    problem: str | None = None  # None: read in full
    kind: str = "ok"  # ok, truncated, corrupt, foreign
    sidecar: dict[str, Any] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)  # system log, oldest first
    audit: list[Entry] = field(default_factory=list)
    unparsed: int = 0  # lines that are not in the device's line format
    hostname: str | None = None
    shutdown_at: int | None = None  # index in `entries` of the shutdown line

    @property
    def device(self) -> str:
        """The device's name in reports and search results: the archive's stem."""
        return self.name.removesuffix(".tar")


@dataclass
class Problem:
    """A file of the folder that gave no device: what it is and why."""

    name: str
    kind: str  # not-tar, partial, empty-folder, missing
    problem: str


@dataclass
class JournalDevice:
    """What the capture journal tells of a device (the last word of every run)."""

    url: str
    serial: str | None = None
    firmware: str | None = None
    outcome: str | None = None  # captured, failed, no-log-api; None: unfinished
    stage: str | None = None
    error: str | None = None
    file: str | None = None
    stages: dict[str, float] = field(default_factory=dict)


def epoch_of(timestamp: str) -> float:
    """Unix seconds of an ISO-8601 timestamp; naive ones are taken as UTC; 0 if unreadable."""
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def list_folder(folder: Path) -> tuple[list[Path], list[Problem]]:
    """The candidate archives of `folder` (sorted by name) and the files that are not."""
    archives: list[Path] = []
    problems: list[Problem] = []
    for path in sorted(folder.iterdir()):
        name = path.name
        if name.startswith(".") or name in OWN_FILES or name.startswith(OWN_PREFIXES):
            continue
        if not path.is_file():
            continue
        if name.endswith(".part"):
            problems.append(Problem(name, "partial", "an unfinished download (.part): skipped"))
        elif name.endswith(".tar.json"):
            continue  # a sidecar, read with its archive
        elif name.endswith((".tar", ".tar.gz", ".tgz")) or _looks_like_tar(path):
            archives.append(path)
        else:
            problems.append(Problem(name, "not-tar", "not a tar archive: skipped"))
    return archives, problems


def _looks_like_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def read_sidecar(archive: Path) -> dict[str, Any]:
    """The sidecar `<archive>.json` as a dict; empty when missing or unreadable."""
    try:
        document = json.loads(archive.with_name(archive.name + ".json").read_bytes())
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def read_archive(path: Path, *, with_sidecar: bool = True) -> DeviceLog:
    """Read one archive; never raises for its content (the problem is set instead)."""
    try:
        stat = path.stat()
    except OSError as exc:
        return DeviceLog(path.name, path, 0, 0, f"unreadable: {exc.strerror}", "corrupt")
    log = DeviceLog(path.name, path, stat.st_size, stat.st_mtime_ns)
    if with_sidecar:
        log.sidecar = read_sidecar(path)
    if stat.st_size > MAX_ARCHIVE:
        log.problem, log.kind = f"larger than {MAX_ARCHIVE >> 20} MiB: skipped", "corrupt"
        return log
    try:
        members = _members(path)
    except _Bad as bad:
        log.problem, log.kind = bad.why, bad.kind
        return log
    if not KNOWN_MEMBERS & members.keys():
        shown = ", ".join(sorted(members)[:3]) or "no files"
        log.problem, log.kind = f"a foreign tar, not a server report (holds {shown})", "foreign"
        return log
    _fill(log, members)
    return log


class _Bad(Exception):
    def __init__(self, kind: str, why: str) -> None:
        super().__init__(why)
        self.kind, self.why = kind, why


def _members(path: Path) -> dict[str, bytes]:
    """The regular files of the tar (name -> bytes), checked end to end."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _Bad("corrupt", f"unreadable: {exc.strerror}") from None
    if not data:
        raise _Bad("truncated", "an empty file (0 bytes)")
    members: dict[str, bytes] = {}
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115 (closed below)
    except (tarfile.TarError, EOFError, OSError, ValueError):
        raise _Bad("corrupt", "not a tar archive (no valid tar header): skipped") from None
    try:
        with tar:
            for member in tar:
                if not member.isfile():
                    continue
                file = tar.extractfile(member)
                if file is not None:
                    members[member.name.removeprefix("./")] = file.read()
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        truncated = isinstance(exc, EOFError) or "end of" in str(exc)
        raise _Bad(
            "truncated" if truncated else "corrupt",
            f"truncated after {len(data)} bytes ({exc})" if truncated else f"corrupt tar: {exc}",
        ) from None
    if not data.startswith(b"\x1f\x8b") and (
        len(data) % tarfile.BLOCKSIZE or data[-1024:] != bytes(1024)
    ):
        raise _Bad("truncated", f"truncated: no end-of-archive marker after {len(data)} bytes")
    return members


def _lines(data: bytes) -> Iterator[str]:
    yield from data.decode("utf-8", "replace").splitlines()


def _fill(log: DeviceLog, members: dict[str, bytes]) -> None:
    """The system log (persistent log, then the current boot's lines not in it) and the
    audit log, with each line's boot where the boot lines tell it."""
    seen: set[str] = set()
    raw: list[tuple[str, Any]] = []
    for member in SYSTEM_MEMBERS:
        for text in _lines(members.get(member, b"")):
            if text in seen:
                continue
            seen.add(text)
            parsed = parse_line(text)
            if parsed is None:
                log.unparsed += bool(text.strip())
                continue
            raw.append((text, parsed))
    raw.sort(key=lambda item: item[1].timestamp)  # same offset on one device: text order
    boots = _boots(raw, log.sidecar)
    for (text, p), boot in zip(raw, boots, strict=True):
        log.hostname = log.hostname or p.hostname
        if p.message.startswith(_SHUTDOWN):
            log.shutdown_at = len(log.entries)
        log.entries.append(
            Entry(
                p.timestamp,
                epoch_of(p.timestamp),
                int(p.severity),
                p.tag,
                p.pid,
                p.message,
                text,
                "system",
                boot,
            )
        )
    for text in _lines(members.get(AUDIT_MEMBER, b"")):
        parsed = parse_line(text)
        if parsed is None:
            log.unparsed += bool(text.strip())
            continue
        log.audit.append(
            Entry(
                parsed.timestamp,
                epoch_of(parsed.timestamp),
                int(parsed.severity),
                parsed.tag,
                parsed.pid,
                parsed.message,
                text,
                "audit",
                None,
            )
        )


def _boots(raw: list[tuple[str, Any]], sidecar: dict[str, Any]) -> list[str | None]:
    """Each line's boot id: the lines up to `reboot: ending boot X` are X's, those from
    `... starting on ..., boot Y` on are Y's."""
    boots: list[str | None] = []
    current: str | None = sidecar.get("old_boot_id") if isinstance(sidecar, dict) else None
    pending: list[int] = []  # lines of an unnamed boot, until its end names it
    for _, parsed in raw:
        message: str = parsed.message
        if _STARTING in message and ", boot " in message:
            current = message.rsplit(", boot ", 1)[1].strip() or None
            pending = []
        elif message.startswith(_SHUTDOWN):
            ended = message[len(_SHUTDOWN) :].split(",", 1)[0].strip() or None
            for index in pending:
                boots[index] = ended
            pending = []
            boots.append(ended)
            current = None
            continue
        if current is None:
            pending.append(len(boots))
        boots.append(current)
    return boots


def read_journal(folder: Path) -> dict[str, JournalDevice]:
    """The capture journal's last word on every device (by device key); {} without one."""
    devices: dict[str, JournalDevice] = {}
    try:
        data = (folder / JOURNAL_NAME).read_bytes()
    except OSError:
        return devices
    for raw in data.splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(line, dict) or not isinstance(key := line.get("device"), str):
            continue
        device = devices.setdefault(key, JournalDevice(str(line.get("url") or key)))
        event = line.get("event")
        seconds, stage = line.get("seconds"), line.get("stage")
        if isinstance(seconds, int | float) and isinstance(stage, str):
            device.stages[stage] = round(device.stages.get(stage, 0.0) + float(seconds), 3)
        if event == "begun":
            device.serial = line.get("serial") or device.serial
            device.firmware = line.get("firmware") or device.firmware
        elif event == "downloaded":
            device.file = line.get("file")
        elif event == "failed":
            device.outcome, device.stage = "failed", str(line.get("stage") or "connect")
            device.error = str(line.get("error") or "")
        elif event == "done":
            device.outcome, device.stage = str(line.get("outcome") or "captured"), None
            device.error = line.get("error")
    return devices
