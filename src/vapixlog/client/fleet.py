"""The capture procedure on many devices at once, with progress counted per stage."""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vapixlog.client._capture import Stage, capture_boot_logs
from vapixlog.client._client import AsyncClient
from vapixlog.client._errors import DuplicateDeviceError, NoLogApiError
from vapixlog.client._journal import DeviceState, Journal, Point, device_key, unique_devices
from vapixlog.client._retry import DEFAULT_POLICY, RetryPolicy


class Outcome(enum.StrEnum):
    """How a device's capture ended."""

    CAPTURED = "captured"
    FAILED = "failed"
    # The device has no Log API (AXIS OS 10.x): nothing was changed or rebooted. Not a
    # failure: there is nothing to capture on it (DECISIONS 12).
    NO_LOG_API = "no-log-api"
    # The list names the device twice, two ways that only its serial tells apart (a host
    # name and its address): captured once, under the other; nothing sent to it here.
    DUPLICATE = "duplicate"


@dataclass
class DeviceOutcome:
    """One device's result in a fleet capture.

    `ok` tells whether the whole procedure succeeded; then `path` and `bytes` describe the
    tar. Otherwise `error` is a one-line description and `stage` the step that failed
    (None: before the first step, when the device was first contacted). `outcome` tells a
    failure from a device without a Log API (`Outcome.NO_LOG_API`, also not `ok`) and
    from a device listed twice (`Outcome.DUPLICATE`: `error` names the other address).
    `earlier`: the journal of the output folder says an earlier run finished this device,
    which was left alone; `resumed`: an earlier run had begun it and this one finished it.
    """

    url: str
    ok: bool
    seconds: float
    outcome: Outcome = Outcome.FAILED
    path: Path | None = None
    bytes: int = 0
    serial: str | None = None
    new_boot_id: str | None = None
    stage: Stage | None = None
    error: str | None = None
    resumed: bool = False  # an earlier, stopped run had begun it
    earlier: bool = False  # an earlier run finished it: nothing was sent to it this time

    @property
    def failed_at(self) -> str | None:
        """The name of the stage a failed device failed at: `connect` before the first
        (the device was left as it was), else the stage's (`reboot`, `wait`, ...); None
        unless the outcome is `failed`."""
        if self.outcome is not Outcome.FAILED:
            return None
        return self.stage.value if self.stage else "connect"


@dataclass
class FleetProgress:
    """Counts across the fleet, per stage: devices in it now, through it, failed in it.

    `listener` is called after every change (on the event loop thread).
    """

    total: int
    listener: Callable[[FleetProgress], None] | None = None
    active: dict[Stage, int] = field(default_factory=lambda: dict.fromkeys(Stage, 0))
    done: dict[Stage, int] = field(default_factory=lambda: dict.fromkeys(Stage, 0))
    failed: dict[Stage, int] = field(default_factory=lambda: dict.fromkeys(Stage, 0))
    succeeded_devices: int = 0
    failed_devices: int = 0
    no_log_api_devices: int = 0
    duplicate_devices: int = 0

    def _changed(self) -> None:
        if self.listener is not None:
            self.listener(self)

    def enter(self, previous: Stage | None, stage: Stage) -> None:
        if previous is not None:
            self.active[previous] -= 1
            self.done[previous] += 1
        self.active[stage] += 1
        self._changed()

    def finish(self, last: Stage | None, outcome: Outcome) -> None:
        ok = outcome is Outcome.CAPTURED
        if last is not None:
            self.active[last] -= 1
            (self.done if ok else self.failed)[last] += 1
        if ok:
            self.succeeded_devices += 1
        elif outcome is Outcome.NO_LOG_API:
            self.no_log_api_devices += 1
        elif outcome is Outcome.DUPLICATE:
            self.duplicate_devices += 1
        else:
            self.failed_devices += 1
        self._changed()

    @property
    def finished_devices(self) -> int:
        return (
            self.succeeded_devices
            + self.failed_devices
            + self.no_log_api_devices
            + self.duplicate_devices
        )


def describe(exc: BaseException) -> str:
    """One line for an exception: its message and notes, never a traceback."""
    from vapixlog.client._errors import VapixError

    text = str(exc) if isinstance(exc, VapixError) else f"{type(exc).__name__}: {exc}"
    notes = getattr(exc, "__notes__", None) or []
    return "; ".join([text.replace("\n", " "), *notes])


async def capture_fleet(
    urls: Sequence[str],
    output_dir: str | Path,
    *,
    client_factory: Callable[[str], AsyncClient],
    concurrency: int = 32,
    timeout: float = 300.0,
    progress: FleetProgress | None = None,
    retry: RetryPolicy = DEFAULT_POLICY,
    reboot_grace: float = 15.0,
    journal: bool = True,
) -> list[DeviceOutcome]:
    """Run `capture_boot_logs` on every device, at most `concurrency` at once, each tar
    into `output_dir` (named `<host>_<port>_<serial>.tar`, with its sidecar `.tar.json`).
    One device's failure never stops the others; every device gets a `DeviceOutcome`, in
    the order of `urls`. A device written twice (`10.0.0.5`, `http://10.0.0.5:80/`) is
    captured once, in its first spelling (`unique_devices`); so is a device listed under
    two addresses (a name and its IP), told by its serial (`Outcome.DUPLICATE`).

    With `journal` (the default), the steps go to `capture-journal.jsonl` in `output_dir`
    (`vapixlog.client._journal`): running the same capture again after it was stopped at
    any moment finishes it. Devices already captured (or found without a Log API) are not
    touched again (`DeviceOutcome.earlier`); a device stopped half-way resumes where it
    was, and its reboot is never requested twice; a device that failed is tried again from
    the last step it completed. A tar file the journal does not know is never replaced.

    >>> outcomes = await capture_fleet(
    ...     urls, "out/", client_factory=lambda url: AsyncClient(url, user="root", password="pw")
    ... )
    >>> [o.url for o in outcomes if not o.ok]
    ['http://10.0.0.7']
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    devices, _ = unique_devices(list(urls))
    counts = progress or FleetProgress(len(devices))
    counts.total = len(devices)
    slots = asyncio.Semaphore(concurrency)
    book = Journal(output) if journal else None
    # serial -> the address a device is captured under; first those of this list an
    # earlier run began (a device half-way through must finish under its own address).
    owners: dict[str, str] = {}
    if book is not None:
        for key in map(device_key, devices):
            known = book.devices.get(key)
            if known and known.serial and known.point > Point.NEW and known.outcome != "duplicate":
                owners.setdefault(known.serial, key)

    async def one(url: str) -> DeviceOutcome:
        key = device_key(url)
        state = book.state(key) if book else DeviceState()
        if state.outcome is not None:
            return _earlier(url, state, output, counts)

        def claim(serial: str) -> None:
            owner = owners.setdefault(serial, key)
            if owner != key:
                raise DuplicateDeviceError(
                    f"{url} is the same device as {owner} (serial {serial}): captured once",
                    url=url,
                )

        async def record(event: str, **fields: object) -> None:
            if book is not None:
                await book.record(key, url, event, **fields)
            else:
                state.apply(event, fields)

        async with slots:
            started = time.monotonic()
            current: Stage | None = None

            def on_stage(stage: Stage) -> None:
                nonlocal current
                counts.enter(current, stage)
                current = stage

            try:
                async with client_factory(url) as client:
                    result = await capture_boot_logs(
                        client,
                        output,
                        timeout=timeout,
                        on_stage=on_stage,
                        retry=retry,
                        reboot_grace=reboot_grace,
                        state=state,
                        record=record,
                        keep_existing=book is not None,
                        claim=claim,
                    )
            except Exception as exc:  # every failure is this device's alone
                # Raised before the first stage: the device was left as it was.
                missing = isinstance(exc, NoLogApiError) and current is None
                outcome = Outcome.NO_LOG_API if missing else Outcome.FAILED
                if isinstance(exc, DuplicateDeviceError):
                    outcome = Outcome.DUPLICATE
                error = describe(exc)
                if outcome is not Outcome.FAILED:
                    await record("done", outcome=str(outcome), error=error)
                else:
                    stage = current.value if current else "connect"
                    await record("failed", stage=stage, error=error)
                counts.finish(current, outcome)
                return DeviceOutcome(
                    url=url,
                    ok=False,
                    seconds=time.monotonic() - started,
                    outcome=outcome,
                    stage=current,
                    error=error,
                    serial=state.serial,
                )
            await record("done", outcome=str(Outcome.CAPTURED))
            counts.finish(current, Outcome.CAPTURED)
            return DeviceOutcome(
                url=url,
                ok=True,
                seconds=result.seconds,
                outcome=Outcome.CAPTURED,
                path=result.path,
                bytes=result.bytes,
                serial=result.serial,
                new_boot_id=result.new_boot_id,
                resumed=result.resumed,
            )

    try:
        if book is not None:
            await book.start_run(len(devices))
        return list(await asyncio.gather(*(one(url) for url in devices)))
    finally:
        if book is not None:
            book.close()


def _earlier(url: str, state: DeviceState, output: Path, counts: FleetProgress) -> DeviceOutcome:
    """A device an earlier run finished: its outcome as the journal tells, nothing sent."""
    try:
        outcome = Outcome(state.outcome or "")
    except ValueError:
        outcome = Outcome.CAPTURED if state.file else Outcome.NO_LOG_API
    counts.finish(None, outcome)
    path = output / state.file if state.file else None
    return DeviceOutcome(
        url=url,
        ok=outcome is Outcome.CAPTURED,
        seconds=0.0,
        outcome=outcome,
        path=path if outcome is Outcome.CAPTURED else None,
        bytes=state.bytes if outcome is Outcome.CAPTURED else 0,
        serial=state.serial,
        new_boot_id=state.new_boot_id,
        error=state.last_error if outcome in (Outcome.NO_LOG_API, Outcome.DUPLICATE) else None,
        earlier=True,
    )
