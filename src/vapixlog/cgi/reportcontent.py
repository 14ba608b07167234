"""What `serverreport.cgi` puts in each mode, planned from one snapshot of the device.

The layout and the member names are documented in `vapixlog.cgi.serverreport`; this module
builds them. A plan is made when the body starts (after `--report-delay`): the persistent
journal is flushed first, so every entry logged before that moment is in the persistent
part, then the volatile log is copied (references to its lines) and the persistent files
are opened and sized (`vapixlog.cgi.archive`).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from vapixlog.cgi import testcard
from vapixlog.cgi.archive import ArchivePlan, FileSlice, Member
from vapixlog.device import Device
from vapixlog.severity import Severity

REPORT_MEMBER = "serverreport_cgi.txt"
IMAGE_MEMBER = "serverreport_image.jpg"
MESSAGES_MEMBER = "var/log/messages"
PERSIST_ALL_MEMBER = "var/log/persist-all.log"
AUDIT_MEMBER = "var/lib/syslog-ng/audit.log"  # AXIS OS 12.5+ (server-report.md, ours)
KERNEL_MEMBER = "kernel.log"
# The severity files of /var/log: each holds its level and every more severe one.
THRESHOLD_MEMBERS = (
    ("var/log/info.log", Severity.INFO),
    ("var/log/warning.log", Severity.WARNING),
    ("var/log/error.log", Severity.ERROR),
    ("var/log/critical.log", Severity.CRITICAL),
)
START_MARKER = "----- Server Report Start -----"
END_MARKER = "----- Server Report End -----"
FLUSH_TIMEOUT = 5.0

# "[ INFO    ]" -> Severity.INFO: the level field as `vapixlog.syslog.line` writes it.
_LEVEL_FIELDS = {f"[ {severity.label:<7} ]": severity for severity in Severity}
_FIELD_LEN = 11


def severity_of(line: str) -> Severity | None:
    """The severity of a log line: its first ` [ LEVEL   ]` field; None if it has none."""
    start = line.find(" [ ")
    while start >= 0:
        severity = _LEVEL_FIELDS.get(line[start + 1 : start + 1 + _FIELD_LEN])
        if severity is not None:
            return severity
        start = line.find(" [ ", start + 1)
    return None


def at_least(lines: list[str], threshold: Severity) -> list[str]:
    """The lines of `threshold` and every more severe level (a lower number)."""
    out = []
    for line in lines:
        severity = severity_of(line)
        if severity is not None and severity <= threshold:
            out.append(line)
    return out


def section(title: str, body: list[str]) -> str:
    """`----- <title> -----`, an empty line, the body lines, an empty line."""
    return f"----- {title} -----\n\n" + "".join(f"{line}\n" for line in body) + "\n"


def uptime_line(now: datetime.datetime, seconds: float, load: tuple[float, ...] | None) -> str:
    """The line of the `uptime` command: ` 08:14:26 up  2:49,  0 users,  load average: ...`."""
    days, rest = divmod(int(seconds), 86400)
    hours, minutes = divmod(rest // 60, 60)
    up = f"{days} day{'' if days == 1 else 's'}, " if days else ""
    up += f"{hours:2d}:{minutes:02d}" if hours else f"{minutes} min"
    line = f" {now:%H:%M:%S} up {up},  0 users"
    if load is not None:
        line += ",  load average: " + ", ".join(f"{value:.2f}" for value in load)
    return line


def _load_average() -> tuple[float, ...] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def text_head(device: Device, now: datetime.datetime) -> str:
    """The text report up to the first line of its `System log` section."""
    identity = device.identity
    return "".join(
        [
            f"\n{START_MARKER}\n\n",
            f"Product: {device.firmware} emulated device\n",
            f"Serial No: {identity.serial}\n\n",
            section(
                "/usr/share/axis-release/variables",
                [f'RELEASE="{device.firmware_version}"', f'PART="{device.firmware_part}"'],
            ),
            section("uptime", [uptime_line(now, device.uptime(), _load_average())]),
            section(
                "Lifetime Statistics",
                [
                    f"Boot-up Counter: {device.lifetime.boots}",
                    f"Restart Counter: {device.lifetime.restarts}",
                ],
            ),
            "----- System log -----\n\n",
        ]
    )


def text_member(
    head: str,
    lines: list[str],
    files: LogFiles,
    access: list[str],
    mtime: int,
) -> Member:
    """The whole text report as one member (blocking: sizes every line)."""
    audit: list[bytes | FileSlice] = []
    if files.audit is not None:
        audit = [b"\n----- Audit log -----\n\n", *files.audit]
    return Member(
        REPORT_MEMBER,
        mtime,
        [
            head.encode("utf-8", "surrogatepass"),
            lines,
            b"\n----- Persistent system log -----\n\n",
            *files.persistent,
            b"\n----- Access log -----\n\n",
            access,
            *audit,
            f"\n{END_MARKER}\n".encode(),
        ],
    )


def tar_all_members(lines: list[str], files: LogFiles, mtime: int) -> list[Member]:
    """`var/log/messages`, the severity files, `persist-all.log` when there is a persistent
    log, the audit log where the firmware has one (blocking: reads the level of every line)."""
    members = [Member(MESSAGES_MEMBER, mtime, [lines])]
    members += [Member(name, mtime, [at_least(lines, level)]) for name, level in THRESHOLD_MEMBERS]
    if any(part.size for part in files.persistent):
        members.append(Member(PERSIST_ALL_MEMBER, mtime, list(files.persistent)))
    if files.audit is not None:
        members.append(Member(AUDIT_MEMBER, mtime, list(files.audit)))
    return members


@dataclass(frozen=True)
class LogFiles:
    """The log files a report copies, opened and sized when it is planned."""

    persistent: list[FileSlice]
    audit: list[FileSlice] | None  # None: the firmware has no audit log


def _open_files(plan: ArchivePlan, persistent: list[Path], audit: list[Path] | None) -> LogFiles:
    def open_all(paths: list[Path]) -> list[FileSlice]:
        return [part for path in paths if (part := plan.open_file(path, whole_lines=True))]

    return LogFiles(open_all(persistent), None if audit is None else open_all(audit))


async def plan_report(device: Device, mode: str) -> ArchivePlan:
    """The members of a report in `mode` (one of `serverreport.MODES`), as of now."""
    now = datetime.datetime.now().astimezone()
    mtime = int(now.timestamp())
    plan = ArchivePlan()
    if mode == "tar_kernel_log":  # no kernel of its own: an empty kernel log
        plan.members.append(Member(KERNEL_MEMBER, mtime, []))
        return plan
    syslog = device.syslog
    if syslog.persistent_enabled and not syslog.journal.closed:
        with anyio.move_on_after(FLUSH_TIMEOUT):
            await syslog.flush()
    head = text_head(device, now) if mode != "tar_all" else ""
    lines = syslog.volatile.lines()  # the ring is touched on this thread only
    access = device.access_log.records()  # formatted off the event loop, below
    paths = syslog.journal.files()
    audit = device.audit_log.files() if device.audit_log is not None else None
    try:
        files = await anyio.to_thread.run_sync(_open_files, plan, paths, audit)
        if mode == "tar_all":
            members = await anyio.to_thread.run_sync(tar_all_members, lines, files, mtime)
            plan.members.extend(members)
            return plan
        access_lines = await anyio.to_thread.run_sync(device.access_log.format_records, access)
        text = await anyio.to_thread.run_sync(text_member, head, lines, files, access_lines, mtime)
        plan.members.append(text)
        if mode == "zip_with_image":
            identity = device.identity
            jpeg = await anyio.to_thread.run_sync(
                testcard.make_jpeg, identity.hostname, identity.serial, now
            )
            plan.members.append(Member(IMAGE_MEMBER, mtime, [jpeg]))
        return plan
    except BaseException:
        plan.close()
        raise
