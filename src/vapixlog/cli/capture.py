"""`vapixlog capture`: the logs of a reboot, on one device or a fleet, with a live display."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vapixlog.cli._common import (
    add_fleet_options,
    client_command,
    connection,
    device_options,
    fail,
    fleet_urls,
    wait_options,
)
from vapixlog.cli._common import (
    seconds as positive_seconds,
)

if TYPE_CHECKING:
    from vapixlog.client import AsyncClient, DeviceOutcome, FleetProgress


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], device: argparse.ArgumentParser
) -> None:
    wait = wait_options()
    # Its own --device help: here the option repeats (`device` is the other commands').
    capture = commands.add_parser(
        "capture",
        parents=[device_options(fleet=True), wait],
        help="capture the logs of a reboot on one device or a fleet",
        description="On every device: turn persistent logging on, reboot, wait for the new "
        "boot, turn persistent logging off, download tar_all, clear the persistent log. A "
        "device without a Log API (AXIS OS 10.x) is left alone and reported as no-log-api, "
        "which is not a failure. A device listed twice (a host name and its address: the "
        "same serial) is captured once.",
    )
    capture.add_argument(
        "--output",
        "-o",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder for the captures, one tar per device (created if missing)",
    )
    add_fleet_options(capture)
    capture.add_argument(
        "--json", action="store_true", help="print the result as JSON, without progress display"
    )
    _add_resilience_options(capture)
    client_command(capture, _capture)


def _add_resilience_options(capture: argparse.ArgumentParser) -> None:
    """--retries and --reboot-grace (the journal needs no option: see the README)."""
    capture.add_argument(
        "--retries",
        type=int,
        default=4,
        metavar="N",
        help="retries of a step that is safe to repeat (reads, persistent on/off, the "
        "download, the clear), with backoff (default 4; never the reboot)",
    )
    capture.add_argument(
        "--reboot-grace",
        type=positive_seconds,
        default=15.0,
        metavar="SECONDS",
        help="after a reboot request without an answer, how long the device must stay in "
        "the same boot before the request counts as not carried out (default 15)",
    )


def _capture(args: argparse.Namespace) -> int:
    import asyncio

    from vapixlog.client import (
        AsyncClient,
        FleetProgress,
        Outcome,
        RetryPolicy,
        capture_fleet,
        unique_devices,
    )

    urls, duplicates = unique_devices(fleet_urls(args))
    for again, first in duplicates.items():
        fail(f"note: {again} is the same device as {first}: captured once")
    if args.retries < 0:
        raise ValueError(f"--retries must be 0 or more, not {args.retries}")
    if args.output.exists() and not args.output.is_dir():
        raise ValueError(
            f"--output {args.output} is a file; give a folder (one tar per device goes in it)"
        )
    options = connection(args)

    def factory(url: str) -> AsyncClient:
        return AsyncClient(url, **options)

    progress = FleetProgress(len(urls))
    started = time.monotonic()
    run = capture_fleet(
        urls,
        args.output,
        client_factory=factory,
        concurrency=args.concurrency,
        timeout=args.wait_timeout,
        progress=progress,
        retry=RetryPolicy(attempts=args.retries + 1),
        reboot_grace=args.reboot_grace,
    )
    if sys.stdout.isatty() and not args.json:
        with _LiveDisplay(progress):
            outcomes = asyncio.run(run)
    else:
        outcomes = asyncio.run(run)
    seconds = time.monotonic() - started
    outcomes = [_with_login_hint(outcome, options) for outcome in outcomes]
    _note_earlier(args.output, outcomes)
    for outcome in outcomes:
        if outcome.outcome is Outcome.FAILED:
            fail(f"{outcome.url}: failed at {_stage(outcome)}: {_error(outcome)}")
    from vapixlog.insight import after_capture

    report = after_capture(args.output)  # summary.json and report.html beside the archives
    if args.json:
        _print_json(outcomes, seconds, report)
    else:
        _print_table(outcomes, seconds)
        print(report)
    # A device without a Log API (AXIS OS 10.x) has nothing to capture: not a failure.
    return 0 if all(outcome.outcome is not Outcome.FAILED for outcome in outcomes) else 1


class _LiveDisplay:
    """A rich progress display: one line per stage across the fleet, with counts."""

    def __init__(self, progress: FleetProgress) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
        from rich.progress import TimeElapsedColumn as Elapsed

        from vapixlog.client import Stage

        self._bar = Progress(
            TextColumn("{task.description:>9}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            Elapsed(),
        )
        total = progress.total
        self._devices = self._bar.add_task("devices", total=total, detail="")
        self._stages = {
            stage: self._bar.add_task(stage.value, total=total, detail="") for stage in Stage
        }
        progress.listener = self._update

    def _update(self, progress: FleetProgress) -> None:
        detail = f"failed {progress.failed_devices}"
        if progress.no_log_api_devices:
            detail += f", no Log API {progress.no_log_api_devices}"
        if progress.duplicate_devices:
            detail += f", listed twice {progress.duplicate_devices}"
        self._bar.update(self._devices, completed=progress.finished_devices, detail=detail)
        for stage, task in self._stages.items():
            detail = f"now {progress.active[stage]}"
            if progress.failed[stage]:
                detail += f", failed {progress.failed[stage]}"
            self._bar.update(task, completed=progress.done[stage], detail=detail)

    def __enter__(self) -> _LiveDisplay:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()


def _note_earlier(output: Path, outcomes: list[DeviceOutcome]) -> None:
    """Say that devices an earlier run into the same folder finished were left alone."""
    from vapixlog.client import JOURNAL_NAME

    earlier = sum(outcome.earlier for outcome in outcomes)
    if earlier:
        fail(
            f"note: {earlier} device{'s' if earlier != 1 else ''} finished by an earlier run "
            f"into {output} ({JOURNAL_NAME}) left alone, their files kept; to capture "
            "them again, use another --output folder"
        )


def _outcome_json(outcome: DeviceOutcome) -> dict[str, Any]:
    return {
        "device": outcome.url,
        "ok": outcome.ok,
        "outcome": str(outcome.outcome),
        "file": str(outcome.path) if outcome.path else None,
        "bytes": outcome.bytes,
        "seconds": round(outcome.seconds, 3),
        "serial": outcome.serial,
        "boot_id": outcome.new_boot_id,
        "earlier": outcome.earlier,
        "resumed": outcome.resumed,
        "failed_stage": _stage(outcome) if outcome.outcome == "failed" else None,
        "error": _error(outcome) if outcome.error else None,
    }


def _with_login_hint(outcome: DeviceOutcome, options: dict[str, Any]) -> DeviceOutcome:
    """A 401 names the user and says whether a password was given at all."""
    import dataclasses

    failed = "Authentication failed (HTTP 401"
    if not outcome.error or failed not in outcome.error:
        return outcome
    if options["password"]:
        why = "wrong user name or password"
    else:
        why = "no password given (use --password or set VAPIXLOG_PASSWORD)"
    said = f"authentication failed for user {options['user']!r}: {why} (HTTP 401"
    return dataclasses.replace(outcome, error=outcome.error.replace(failed, said, 1))


def _stage(outcome: DeviceOutcome) -> str:
    """The stage a device failed at; `connect`: before the first (the device was left as
    it was)."""
    return outcome.failed_at or "connect"


def _error(outcome: DeviceOutcome) -> str:
    """A failure's description without what the line already says: the device's URL, the
    stage (`failed at stage reboot`, `reboot: ...`)."""
    stage = _stage(outcome)
    text = (outcome.error or "").removeprefix(f"{outcome.url}: ")
    parts = [part for part in text.split("; ") if part != f"failed at stage {stage}"]
    text = "; ".join(parts).removeprefix(f"{stage}: ").removeprefix(f"{outcome.url}: ")
    if text.startswith(f"{outcome.url}/"):  # a path of the device: the line names it
        text = text.removeprefix(outcome.url)
    return text or "failed"


def _print_json(outcomes: list[DeviceOutcome], seconds: float, report: str) -> None:
    counts = _counts(outcomes)
    document = {
        "devices": [_outcome_json(outcome) for outcome in outcomes],
        "succeeded": counts["captured"],
        "failed": counts["failed"],
        "no_log_api": counts["no-log-api"],
        "duplicates": counts["duplicate"],
        "seconds": round(seconds, 3),
        "report": report,  # where summary.json and report.html are, or why there are none
    }
    print(json.dumps(document, indent=1))


def _print_table(outcomes: list[DeviceOutcome], seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="vapixlog capture")
    table.add_column("device", overflow="fold")
    table.add_column("result", overflow="fold")
    table.add_column("seconds", justify="right")
    table.add_column("bytes", justify="right")
    table.add_column("file", overflow="fold")
    for outcome in outcomes:
        if outcome.ok:
            result = "[green]ok[/green]"
        elif outcome.outcome == "no-log-api":
            result = "[yellow]no Log API[/yellow] (nothing changed, not rebooted)"
        elif outcome.outcome == "duplicate":
            result = f"[yellow]listed twice[/yellow]: {_escape(outcome.error or '')}"
        else:
            result = f"[red]failed at {_stage(outcome)}[/red]: {_escape(_error(outcome))}"
        table.add_row(
            _escape(outcome.url),
            result,
            f"{outcome.seconds:.1f}",
            f"{outcome.bytes:,}" if outcome.ok else "",
            _escape(outcome.path.name) if outcome.path else "",
        )
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    counts = _counts(outcomes)
    devices = f"{len(outcomes)} device{'s' if len(outcomes) != 1 else ''}"
    without = f", {counts['no-log-api']} without a Log API" if counts["no-log-api"] else ""
    if counts["duplicate"]:
        without += f", {counts['duplicate']} listed twice"
    console.print(
        f"{devices}: {counts['captured']} succeeded, {counts['failed']} failed{without}, "
        f"in {seconds:.1f} s",
        highlight=False,
    )


def _counts(outcomes: list[DeviceOutcome]) -> dict[str, int]:
    """Devices per outcome (`captured`, `failed`, `no-log-api`, `duplicate`)."""
    counts = {"captured": 0, "failed": 0, "no-log-api": 0, "duplicate": 0}
    for outcome in outcomes:
        counts[str(outcome.outcome)] += 1
    return counts


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
