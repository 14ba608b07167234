"""The capture procedure of the Log API (log-api.md, "Capture logs between boot sessions"):
turn on saving logs to the persistent storage, reboot and wait for the new boot, turn saving
off, download every log file (`serverreport.cgi?mode=tar_all`), clear the persistent log."""

from __future__ import annotations

import asyncio
import enum
import os
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from vapixlog.client._errors import AddressBlockedError, DeviceUnavailableError, VapixError

if TYPE_CHECKING:
    from vapixlog.client._client import AsyncClient


class Stage(enum.Enum):
    """The steps of `capture_boot_logs`, in order (log-api.md, "Capture logs between boot
    sessions")."""

    ENABLE = "enable"
    REBOOT = "reboot"
    WAIT = "wait"
    DISABLE = "disable"
    DOWNLOAD = "download"
    CLEAR = "clear"


@dataclass(frozen=True)
class CaptureResult:
    """What `capture_boot_logs` produced.

    `path` is the tar file (None when written to a file object), `bytes` its size,
    `seconds` how long the whole procedure took, the serial (from the login realm), and the
    boot ids before and after the reboot (None when systemready.cgi tells none).
    """

    url: str
    path: Path | None
    bytes: int
    seconds: float
    serial: str | None
    old_boot_id: str | None
    new_boot_id: str | None


def capture_file_name(url: str, serial: str | None) -> str:
    """`<host>_<port>[_<serial>].tar`: distinct for every device of a fleet."""
    parts = urllib.parse.urlsplit(url)
    host = re.sub(r"[^A-Za-z0-9.-]", "_", parts.hostname or "device")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    suffix = "_" + re.sub(r"[^A-Za-z0-9]", "", serial) if serial else ""
    return f"{host}_{port}{suffix}.tar"


async def capture_boot_logs(
    client: AsyncClient,
    dest: str | os.PathLike[str] | IO[bytes],
    *,
    timeout: float = 300.0,
    on_stage: Callable[[Stage], None] | None = None,
) -> CaptureResult:
    """Capture the logs of a reboot, the procedure of log-api.md: turn on saving logs to
    the persistent storage, reboot and wait for the new boot, turn saving off, download
    every log file (`serverreport.cgi?mode=tar_all`), clear the persistent log.

    `dest` is a directory (an existing one, or a path ending in `/`, then created; the
    tar is named `<host>_<port>_<serial>.tar` in it), a file path, or a binary file
    object. `on_stage` is called as each step begins. Whatever fails, saving logs is
    turned off again when it was turned on and the device answers; the exception then
    carries a note saying whether that worked.
    """
    started = time.monotonic()
    before = await client.system_ready()
    await client.persistent_enabled()  # a first login: the realm names the serial
    serial = client.serial
    target: Path | IO[bytes]
    if isinstance(dest, str | os.PathLike):
        target = Path(dest)
        if target.is_dir() or os.fspath(dest).endswith(("/", os.sep)):
            target.mkdir(parents=True, exist_ok=True)
            target = target / capture_file_name(client.url, serial)
    else:
        target = dest
    maybe_on = False
    stage = Stage.ENABLE

    def begin(next_stage: Stage) -> None:
        nonlocal stage
        stage = next_stage
        if on_stage is not None:
            on_stage(next_stage)

    try:
        begin(Stage.ENABLE)
        maybe_on = True
        await client.set_persistent(True)
        begin(Stage.REBOOT)
        await client.request_reboot()
        begin(Stage.WAIT)
        after = await client.wait_for_new_boot(before, timeout)
        begin(Stage.DISABLE)
        await client.set_persistent(False)
        maybe_on = False
        begin(Stage.DOWNLOAD)
        size = await client.server_report("tar_all", target)
        begin(Stage.CLEAR)
        await client.clear_persistent_log()
    except BaseException as exc:
        note = f"failed at stage {stage.value}"
        if maybe_on:
            off = await _turn_off_quietly(client)
            note += (
                "; persistent logging turned off again"
                if off
                else "; persistent logging could NOT be turned off (device unreachable)"
            )
        exc.add_note(note)
        raise
    return CaptureResult(
        url=client.url,
        path=target if isinstance(target, Path) else None,
        bytes=size,
        seconds=time.monotonic() - started,
        serial=serial,
        old_boot_id=before.boot_id if before else None,
        new_boot_id=after,
    )


async def _turn_off_quietly(client: AsyncClient, within: float = 5.0) -> bool:
    """Best effort: turn persistent logging off, retrying while the device is down."""
    deadline = time.monotonic() + within
    while True:
        try:
            await asyncio.wait_for(client.set_persistent(False), within)
            return True
        except (DeviceUnavailableError, AddressBlockedError, TimeoutError):
            if time.monotonic() + 0.5 > deadline:
                return False
            await asyncio.sleep(0.5)
        except (VapixError, asyncio.CancelledError):
            return False
