"""The capture procedure of the Log API (log-api.md, "Capture logs between boot sessions"):
turn on saving logs to the persistent storage, reboot and wait for the new boot, turn saving
off, download every log file (`serverreport.cgi?mode=tar_all`), clear the persistent log.

It survives faults: every step that is safe to repeat (reads, systemready polls, setting
persistent logging on or off, the download, the clear) is retried with backoff
(`vapixlog.client._retry`); the reboot is not (`vapixlog.client._reboot`). The tar is
checked end to end before it becomes a file (`vapixlog.client._archive`). Given a journal
(`vapixlog.client._journal`), every step is written down before the next begins, and a
device's capture resumes where an earlier, killed run left it.
"""

from __future__ import annotations

import enum
import os
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from vapixlog.client._archive import download_tar, write_sidecar
from vapixlog.client._boot import BootState
from vapixlog.client._errors import ArchiveError, VapixError
from vapixlog.client._journal import DeviceState, Point
from vapixlog.client._reboot import (
    firmware_version,
    request_reboot_safely,
    resume_reboot,
    turn_off_quietly,
    wait_ready,
)
from vapixlog.client._retry import DEFAULT_POLICY, RetryPolicy, retrying

if TYPE_CHECKING:
    from vapixlog.client._client import AsyncClient

# Writes one journal line for the device (event, fields) and returns once it is on disk.
Recorder = Callable[..., Awaitable[None]]


class Stage(enum.Enum):
    """The steps of `capture_boot_logs`, in order (log-api.md, "Capture logs between boot
    sessions")."""

    ENABLE = "enable"
    REBOOT = "reboot"
    WAIT = "wait"
    DISABLE = "disable"
    DOWNLOAD = "download"
    CLEAR = "clear"


# The journal point each stage reaches when it completes.
_REACHES = {
    Stage.ENABLE: Point.ENABLED,
    Stage.REBOOT: Point.REBOOT_SENT,
    Stage.WAIT: Point.REBOOTED,
    Stage.DISABLE: Point.DISABLED,
    Stage.DOWNLOAD: Point.DOWNLOADED,
    Stage.CLEAR: Point.CLEARED,
}


@dataclass(frozen=True)
class CaptureResult:
    """What `capture_boot_logs` produced.

    `path` is the tar file (None when written to a file object), `bytes` its size,
    `seconds` how long the whole procedure took, the serial (from the login realm), and the
    boot ids before and after the reboot (None when systemready.cgi tells none). `stages`
    holds the seconds of each stage (across runs when resumed), `firmware` the version
    `firmwaremanagement.cgi` told, `resumed` whether an earlier run had begun it.
    """

    url: str
    path: Path | None
    bytes: int
    seconds: float
    serial: str | None
    old_boot_id: str | None
    new_boot_id: str | None
    stages: dict[str, float] = field(default_factory=dict)
    firmware: str | None = None
    persistent_before: bool | None = None
    resumed: bool = False


def capture_file_name(url: str, serial: str | None) -> str:
    """`<host>_<port>[_<serial>].tar`: distinct for every device of a fleet."""
    parts = urllib.parse.urlsplit(url)
    host = re.sub(r"[^A-Za-z0-9.-]", "_", parts.hostname or "device")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    suffix = "_" + re.sub(r"[^A-Za-z0-9]", "", serial) if serial else ""
    return f"{host}_{port}{suffix}.tar"


def _boot_record(state: BootState | None) -> dict[str, Any] | None:
    """A boot state as the journal keeps it: with the wall time it was read."""
    if state is None:
        return None
    wall = time.time() - (time.monotonic() - state.read_at)
    return {"boot_id": state.boot_id, "uptime": state.uptime, "wall": round(wall, 3)}


def _boot_from(record: dict[str, Any] | None) -> BootState | None:
    """A journal's boot state, its reading time moved onto this process's clock."""
    if not record:
        return None
    wall = float(record.get("wall") or time.time())
    return BootState(
        ready=True,
        boot_id=record.get("boot_id"),
        uptime=record.get("uptime"),
        read_at=time.monotonic() - (time.time() - wall),
    )


async def capture_boot_logs(
    client: AsyncClient,
    dest: str | os.PathLike[str] | IO[bytes],
    *,
    timeout: float = 300.0,
    on_stage: Callable[[Stage], None] | None = None,
    retry: RetryPolicy = DEFAULT_POLICY,
    reboot_grace: float = 15.0,
    state: DeviceState | None = None,
    record: Recorder | None = None,
    keep_existing: bool = False,
    claim: Callable[[str], None] | None = None,
) -> CaptureResult:
    """Capture the logs of a reboot, the procedure of log-api.md: turn on saving logs to
    the persistent storage, reboot and wait for the new boot, turn saving off, download
    every log file (`serverreport.cgi?mode=tar_all`), clear the persistent log.

    `dest` is a directory (an existing one, or a path ending in `/`, then created; the
    tar is named `<host>_<port>_<serial>.tar` in it), a file path, or a binary file
    object. A path gets a sidecar `<tar>.json` (URL, serial, firmware, boot ids, stage
    timings, outcome). `on_stage` is called as each step begins. Steps that are safe to
    repeat are retried by `retry`; after a reboot request without an answer, the device's
    boot id tells whether it rebooted, watched for `reboot_grace` seconds (never a second
    request blindly). The tar is checked end to end: a truncated one raises `ArchiveError`.
    Whatever fails, saving logs is turned off again when it was turned on and the device
    answers; the exception then carries a note saying whether that worked.

    `state` (what a journal tells of an earlier run) resumes a capture; `record(event,
    **fields)` writes each step to the journal; `keep_existing` refuses to replace a tar
    that the journal does not know; `claim(serial)` is called once the serial is known,
    before anything on the device is changed (a fleet capture raises
    `DuplicateDeviceError` there for a device it has under another address).
    """
    started = time.monotonic()
    state = state if state is not None else DeviceState()
    resumed = state.point > Point.NEW
    stage: Stage | None = None
    stage_started = started
    maybe_on = state.point >= Point.ENABLED and state.point < Point.DISABLED

    def begin(next_stage: Stage) -> None:
        nonlocal stage, stage_started
        stage, stage_started = next_stage, time.monotonic()
        if on_stage is not None:
            on_stage(next_stage)

    async def reached(point: Point, **fields: Any) -> None:
        seconds = round(time.monotonic() - stage_started, 3) if stage else None
        line = {"stage": stage.value, "seconds": seconds} if stage else {}
        if record is not None:
            await record(point.event, **line, **fields)
        else:
            state.apply(point.event, {**line, **fields})

    before: BootState | None = _boot_from(state.boot)
    try:
        if state.point < Point.REBOOT_INTENT:  # nothing asked of the device yet: look first
            before = await retrying(client._boot_state, retry)
            current = await retrying(client.persistent_enabled, retry)  # a login: the serial
            if claim is not None and client.serial:  # before anything is journaled
                claim(client.serial)
            if state.point < Point.BEGUN:
                firmware = await firmware_version(client)
                await reached(
                    Point.BEGUN,
                    serial=client.serial,
                    firmware=firmware,
                    persistent_before=current,
                )
        serial = client.serial or state.serial
        if claim is not None and serial:  # again when resumed: the serial of the journal
            claim(serial)
        target = _target(dest, client.url, serial, state, keep_existing)
        for done in [s for s in Stage if _REACHES[s] <= state.point]:
            begin(done)  # steps of an earlier run: through at once
        sent_here = False  # whether this run asked for the reboot
        if state.point < Point.REBOOT_INTENT:
            begin(Stage.ENABLE)
            maybe_on = True
            await retrying(lambda: client.set_persistent(True), retry)
            await reached(Point.ENABLED)
            begin(Stage.REBOOT)
            if before is None or before.boot_id is None:  # uptime: read it again, right now
                before = await retrying(client._boot_state, retry)
            await reached(Point.REBOOT_INTENT, boot=_boot_record(before))
            await request_reboot_safely(client, before, retry=retry, grace=reboot_grace)
            sent_here = True
            await reached(Point.REBOOT_SENT)
        elif state.point < Point.REBOOT_SENT:
            begin(Stage.REBOOT)
            sent_here = await resume_reboot(client, before, retry=retry, grace=reboot_grace)
            await reached(Point.REBOOT_SENT)
        after = state.new_boot_id
        if state.point < Point.REBOOTED:
            begin(Stage.WAIT)
            tells = before is not None and (before.boot_id or before.uptime is not None)
            if tells or sent_here:
                after = await client.wait_for_new_boot(before, timeout)
            else:  # accepted in an earlier run, and no boot id tells boots apart
                after = await wait_ready(client, timeout)
            await reached(Point.REBOOTED, new_boot_id=after)
        if state.point < Point.DISABLED:
            begin(Stage.DISABLE)
            await retrying(lambda: client.set_persistent(False), retry)
            maybe_on = False
            await reached(Point.DISABLED)
        maybe_on = False
        size = state.bytes
        have = isinstance(target, Path) and target.exists() and state.file == target.name
        if state.point >= Point.CLEARED and not have:
            raise VapixError(
                f"{client.url}: its tar was removed after the device's persistent log was "
                "cleared; only a new capture (another --output folder) can get those logs",
                url=client.url,
            )
        if state.point < Point.DOWNLOADED or not have:
            begin(Stage.DOWNLOAD)

            def download(file: IO[bytes]) -> Awaitable[int]:
                return client.server_report("tar_all", file)

            size = await retrying(
                lambda: download_tar(download, target, client.url), retry, also=(ArchiveError,)
            )
            name = target.name if isinstance(target, Path) else None
            await reached(Point.DOWNLOADED, file=name, bytes=size)
        if state.point < Point.CLEARED:
            begin(Stage.CLEAR)
            await retrying(client.clear_persistent_log, retry)
            await reached(Point.CLEARED)
    except BaseException as exc:
        note = f"failed at stage {stage.value}" if stage else ""
        if maybe_on:
            off = await turn_off_quietly(client)
            note += (
                "; persistent logging turned off again"
                if off
                else "; persistent logging could NOT be turned off (device unreachable)"
            )
        if note:
            exc.add_note(note.removeprefix("; "))
        raise
    result = CaptureResult(
        url=client.url,
        path=target if isinstance(target, Path) else None,
        bytes=size,
        seconds=time.monotonic() - started,
        serial=serial,
        old_boot_id=before.boot_id if before else None,
        new_boot_id=after,
        stages=dict(state.stages),
        firmware=state.firmware,
        persistent_before=state.persistent_before,
        resumed=resumed,
    )
    if isinstance(target, Path):
        write_sidecar(target, sidecar(result, state))
    return result


def _target(
    dest: str | os.PathLike[str] | IO[bytes],
    url: str,
    serial: str | None,
    state: DeviceState,
    keep_existing: bool,
) -> Path | IO[bytes]:
    if not isinstance(dest, str | os.PathLike):
        return dest
    target = Path(dest)
    if target.is_dir() or os.fspath(dest).endswith(("/", os.sep)):
        target.mkdir(parents=True, exist_ok=True)
        target = target / capture_file_name(url, serial)
    # Ours: a file the journal names, or one a killed run renamed into place before it
    # could write `downloaded` (only a run that got past the reboot downloads).
    ours = state.file == target.name or state.point >= Point.DISABLED
    if keep_existing and target.exists() and not ours:
        raise VapixError(
            f"{target} exists and is not from this folder's capture journal: not "
            "overwritten (capture into another --output folder, or move the file away)",
            url=url,
        )
    return target


def sidecar(result: CaptureResult, state: DeviceState) -> dict[str, Any]:
    """The sidecar `<archive>.json` (DECISIONS 8)."""
    return {
        "url": result.url,
        "serial": result.serial,
        "firmware": result.firmware,
        "archive": result.path.name if result.path else None,
        "bytes": result.bytes,
        "old_boot_id": result.old_boot_id,
        "new_boot_id": result.new_boot_id,
        "stages": result.stages,
        "outcome": "captured",
        "persistent_before": result.persistent_before,
        "persistent_after": False,
        "runs": sorted(state.runs) or [1],
        "captured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
