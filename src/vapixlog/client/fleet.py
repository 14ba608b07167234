"""The capture procedure on many devices at once, with progress counted per stage."""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vapixlog.client._capture import Stage
from vapixlog.client._client import AsyncClient
from vapixlog.client._errors import NoLogApiError


class Outcome(enum.StrEnum):
    """How a device's capture ended."""

    CAPTURED = "captured"
    FAILED = "failed"
    # The device has no Log API (AXIS OS 10.x): nothing was changed or rebooted. Not a
    # failure: there is nothing to capture on it (DECISIONS 12).
    NO_LOG_API = "no-log-api"


@dataclass
class DeviceOutcome:
    """One device's result in a fleet capture.

    `ok` tells whether the whole procedure succeeded; then `path` and `bytes` describe the
    tar. Otherwise `error` is a one-line description and `stage` the step that failed
    (None: before the first step, when the device was first contacted). `outcome` tells a
    failure from a device without a Log API (`Outcome.NO_LOG_API`, also not `ok`).
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
        else:
            self.failed_devices += 1
        self._changed()

    @property
    def finished_devices(self) -> int:
        return self.succeeded_devices + self.failed_devices + self.no_log_api_devices


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
) -> list[DeviceOutcome]:
    """Run `capture_boot_logs` on every device, at most `concurrency` at once, each tar
    into `output_dir` (named `<host>_<port>_<serial>.tar`). One device's failure never
    stops the others; every device gets a `DeviceOutcome`, in the order of `urls`.

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
    counts = progress or FleetProgress(len(urls))
    slots = asyncio.Semaphore(concurrency)

    async def one(url: str) -> DeviceOutcome:
        async with slots:
            started = time.monotonic()
            current: Stage | None = None

            def on_stage(stage: Stage) -> None:
                nonlocal current
                counts.enter(current, stage)
                current = stage

            try:
                async with client_factory(url) as client:
                    result = await client.capture_boot_logs(
                        output, timeout=timeout, on_stage=on_stage
                    )
            except Exception as exc:  # every failure is this device's alone
                # Raised before the first stage: the device was left as it was.
                missing = isinstance(exc, NoLogApiError) and current is None
                outcome = Outcome.NO_LOG_API if missing else Outcome.FAILED
                counts.finish(current, outcome)
                return DeviceOutcome(
                    url=url,
                    ok=False,
                    seconds=time.monotonic() - started,
                    outcome=outcome,
                    stage=current,
                    error=describe(exc),
                )
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
            )

    return list(await asyncio.gather(*(one(url) for url in urls)))
