"""The capture journal: how far each device of a fleet capture got, so that a capture killed
at any moment (SIGKILL, a laptop that dies) is finished by running the same command again.

The journal is `capture-journal.jsonl` in the output folder: one JSON object a line, only
ever appended, and synced to disk (`fsync`, grouped across devices); the lines a next step
relies on (`DURABLE`: the state before any change, the intent to reboot, the downloaded
tar, a device's end) are on disk before that step goes ahead. Every line has `time` (Unix
seconds), `run` (1 for the first capture into the folder, 2 for the next, ...) and `event`;
device lines also `device` (the device's key, see `device_key`) and `url`. The events of a
device, in order:

    begun          first contact: `serial`, `firmware`, `persistent_before`
    enabled        persistent logging turned on
    reboot-intent  about to ask for the reboot: `boot` (boot id, uptime, `wall` time read)
    reboot-sent    the device accepted the reboot (or it was seen to happen)
    rebooted       back in a new boot: `new_boot_id`
    disabled       persistent logging turned off
    downloaded     the tar is complete, checked and renamed into place: `file`, `bytes`
    cleared        the persistent log is cleared
    done           `outcome` (`captured`, `no-log-api`, `duplicate`); nothing more to do
    failed         `stage` and `error`; where it got to before stays as it was

Each step line carries `seconds`, the step's duration. A resumed device goes on from its
last step; `reboot-intent` without `reboot-sent` is the one ambiguous point (the request may
or may not have reached the device): the client compares the boot id with the one in the
journal and never asks for a second reboot blindly (`vapixlog.client._capture`).

One capture at a time per folder: the journal is locked (`flock`) while a capture runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import fcntl
import os
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

JOURNAL_NAME = "capture-journal.jsonl"
# Lines that must be on disk before the step after them: what the device had before any
# change, the boot before the reboot request, the tar before the persistent log is cleared,
# and a device's end. Losing another line (only a power cut can) repeats a step that is
# safe to repeat, or makes the boot id check run again.
DURABLE = frozenset({"begun", "reboot-intent", "downloaded", "done", "failed"})


class Point(enum.IntEnum):
    """How far a device got: the last step the journal holds."""

    NEW = 0
    BEGUN = 1
    ENABLED = 2
    REBOOT_INTENT = 3
    REBOOT_SENT = 4
    REBOOTED = 5
    DISABLED = 6
    DOWNLOADED = 7
    CLEARED = 8

    @property
    def event(self) -> str:
        return self.name.lower().replace("_", "-")


_POINTS = {point.event: point for point in Point}


def device_key(url: str) -> str:
    """One spelling per device: `http://127.0.0.1:18201`, `127.0.0.1:18201`,
    `HTTP://127.0.0.1:18201/` give the same key; a default port is written out
    (`http://10.0.0.5` is `http://10.0.0.5:80`); host names are compared in lower case."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urllib.parse.urlsplit(text)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port or (443 if scheme == "https" else 80)
    return f"{scheme}://{host}:{port}{parts.path.rstrip('/')}"


def unique_devices(urls: list[str]) -> tuple[list[str], dict[str, str]]:
    """The devices once each, in their first spelling and order; and each later spelling
    of a device already listed -> that first spelling."""
    first: dict[str, str] = {}
    duplicates: dict[str, str] = {}
    for url in urls:
        key = device_key(url)
        if key in first:
            if url != first[key]:
                duplicates[url] = first[key]
        else:
            first[key] = url
    return list(first.values()), duplicates


@dataclass
class DeviceState:
    """What the journal tells of one device."""

    point: Point = Point.NEW
    serial: str | None = None
    firmware: str | None = None
    persistent_before: bool | None = None
    boot: dict[str, Any] | None = None  # before the reboot: boot_id, uptime, wall
    new_boot_id: str | None = None
    file: str | None = None
    bytes: int = 0
    outcome: str | None = None  # final: captured, no-log-api, duplicate
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage, all runs
    runs: set[int] = field(default_factory=set)
    last_error: str | None = None

    def apply(self, event: str, line: dict[str, Any]) -> None:
        if isinstance(run := line.get("run"), int):
            self.runs.add(run)
        if (point := _POINTS.get(event)) is not None:
            self.point = max(self.point, point)
        if isinstance(seconds := line.get("seconds"), int | float) and "stage" in line:
            stage = str(line["stage"])
            self.stages[stage] = round(self.stages.get(stage, 0.0) + float(seconds), 3)
        if event == "begun":
            self.serial = line.get("serial") or self.serial
            self.firmware = line.get("firmware") or self.firmware
            if self.persistent_before is None:  # what the device had before any run
                self.persistent_before = line.get("persistent_before")
        elif event == "reboot-intent":
            self.boot = line.get("boot")
        elif event == "rebooted":
            self.new_boot_id = line.get("new_boot_id")
        elif event == "downloaded":
            self.file, self.bytes = line.get("file"), int(line.get("bytes") or 0)
        elif event == "done":
            self.outcome = line.get("outcome")
            self.last_error = line.get("error") or self.last_error
        elif event == "failed":
            self.last_error = line.get("error")


class JournalBusyError(OSError):
    """Another capture is writing into the same output folder."""


class Journal:
    """The journal of an output folder, opened for appending (and locked)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.path = Path(folder) / JOURNAL_NAME
        self.devices: dict[str, DeviceState] = {}
        self.run = 1
        self.first_started: float | None = None
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise JournalBusyError(
                f"{self.path}: another vapixlog capture is running into this folder"
            ) from None
        self._load()
        self._written = 0
        self._synced = 0
        self._syncing: asyncio.Task[None] | None = None

    def _load(self) -> None:
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            os.write(self._fd, b"\n")  # a line torn by a kill: ends here, ignored
        runs = 0
        for raw in data.splitlines():
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(line, dict):
                continue
            event = str(line.get("event"))
            if event == "run":
                runs = max(runs, int(line.get("run") or 0))
                if self.first_started is None and isinstance(line.get("time"), int | float):
                    self.first_started = float(line["time"])
            elif isinstance(key := line.get("device"), str):
                self.devices.setdefault(key, DeviceState()).apply(event, line)
        self.run = runs + 1

    def state(self, key: str) -> DeviceState:
        return self.devices.setdefault(key, DeviceState())

    async def start_run(self, devices: int) -> None:
        await self._append({"event": "run", "devices": devices, "pid": os.getpid()})

    async def record(self, key: str, url: str, event: str, **fields: Any) -> None:
        """Append one device line and apply it to the device's state. The lines the next
        step relies on (`DURABLE`) are waited for until they are on disk; the others are
        written at once (a killed process loses none of them: they are in the kernel) and
        synced with the next group."""
        line = {"device": key, "url": url, "event": event, **fields}
        await self._append(line, wait=event in DURABLE)
        self.state(key).apply(event, {**line, "run": self.run})

    async def _append(self, line: dict[str, Any], *, wait: bool = True) -> None:
        stamped = {"time": round(time.time(), 3), "run": self.run, **line}
        os.write(self._fd, orjson.dumps(stamped) + b"\n")  # O_APPEND: whole lines
        self._written += 1
        target = self._written
        while wait and self._synced < target:
            task = self._syncing
            if task is None or task.done():
                task = self._syncing = asyncio.create_task(self._sync())
            await asyncio.shield(task)

    async def _sync(self) -> None:
        upto = self._written
        await asyncio.to_thread(os.fsync, self._fd)
        self._synced = max(self._synced, upto)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self._synced < self._written:
                os.fsync(self._fd)
            os.close(self._fd)
