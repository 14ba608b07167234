"""The client commands of `vapixlog`: write, persistent, clear, report, syslog, reboot,
capture. `cli.py` adds them with `add_parsers` and runs them with `run`.

It lives outside the `vapixlog.client` package so that defining the commands imports nothing
heavy: httpx and rich are imported only when a client command runs, and `vapixlog serve`
does not pay for them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vapixlog.severity import Severity

if TYPE_CHECKING:
    from vapixlog.client import AsyncClient, Client, DeviceOutcome, FleetProgress

COMMANDS = ("write", "persistent", "clear", "report", "syslog", "reboot", "capture")
DEFAULT_CONCURRENCY = 32
_ANCHOR_LINES = 3


def _severity(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid severity {text!r}; use 0..7 or a name such as info, warning, err"
        ) from None


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the client commands to `vapixlog`'s subcommands."""
    device = argparse.ArgumentParser(add_help=False)
    group = device.add_argument_group("device and credentials")
    group.add_argument(
        "--device",
        action="append",
        metavar="URL",
        help="the device, e.g. https://192.168.0.90 (default: $VAPIXLOG_DEVICE)",
    )
    group.add_argument("--user", help="user name (default: $VAPIXLOG_USER, else root)")
    group.add_argument("--password", help="password (default: $VAPIXLOG_PASSWORD)")
    group.add_argument("--ca-file", type=Path, metavar="PEM", help="trust this CA or certificate")
    group.add_argument(
        "--pin-sha256",
        metavar="FINGERPRINT",
        help="trust only the certificate with this SHA-256 fingerprint (AA:BB:... or hex)",
    )
    group.add_argument(
        "--insecure", action="store_true", help="HTTPS without any certificate check"
    )
    group.add_argument(
        "--timeout", type=_seconds, default=30.0, metavar="SECONDS", help="per request"
    )
    group.add_argument(
        "--report-timeout",
        type=_seconds,
        default=300.0,
        metavar="SECONDS",
        help="how long a server report may take to arrive (default 300: real devices take "
        "about 30 s)",
    )

    write = commands.add_parser(
        "write", parents=[device], help="write a message into the device's system log"
    )
    write.add_argument("message")
    write.add_argument(
        "--severity",
        type=_severity,
        default=Severity.INFO,
        metavar="NAME|N",
        help="0..7 or emerg, alert, crit, err, warning, notice, info, debug (default info)",
    )
    persistent = commands.add_parser(
        "persistent", parents=[device], help="turn saving logs to persistent storage on or off"
    )
    persistent.add_argument("state", choices=["on", "off", "status"])
    commands.add_parser("clear", parents=[device], help="clear the persistent log")
    report = commands.add_parser(
        "report", parents=[device], help="download a server report (serverreport.cgi)"
    )
    report.add_argument(
        "--mode",
        default="tar_all",
        choices=["tar_all", "text", "zip", "zip_with_image", "tar_kernel_log"],
    )
    report.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="where to write it ('-': stdout)"
    )
    syslog = commands.add_parser("syslog", parents=[device], help="print the system log")
    syslog.add_argument(
        "--follow", "-f", action="store_true", help="keep printing new lines (Ctrl-C stops)"
    )
    syslog.add_argument("--interval", type=_seconds, default=1.0, metavar="SECONDS")
    wait = argparse.ArgumentParser(add_help=False)
    wait.add_argument(
        "--wait-timeout",
        type=_seconds,
        default=300.0,
        metavar="SECONDS",
        help="how long a device may take to come back from its reboot (default 300)",
    )
    reboot = commands.add_parser("reboot", parents=[device, wait], help="reboot the device")
    reboot.add_argument("--wait", action="store_true", help="wait until it is back with a new boot")
    capture = commands.add_parser(
        "capture",
        parents=[device, wait],
        help="capture the logs of a reboot on one device or a fleet",
        description="On every device: turn persistent logging on, reboot, wait for the new "
        "boot, turn persistent logging off, download tar_all, clear the persistent log.",
    )
    capture.add_argument("--output", "-o", type=Path, required=True, metavar="DIR")
    capture.add_argument(
        "--devices-file", type=Path, metavar="FILE", help="device URLs, one a line ('#' comments)"
    )
    capture.add_argument(
        "--concurrency",
        type=_positive_int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"devices at once (default {DEFAULT_CONCURRENCY})",
    )
    capture.add_argument(
        "--json", action="store_true", help="print the result as JSON, without progress display"
    )


def run(args: argparse.Namespace) -> int:
    """Run a client command; every failure is one `vapixlog: ...` line on stderr, exit 1
    (2 for bad arguments)."""
    from vapixlog.client import VapixError

    handlers = {
        "write": _write,
        "persistent": _persistent,
        "clear": _clear,
        "report": _report,
        "syslog": _syslog,
        "reboot": _reboot,
        "capture": _capture,
    }
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout closed early (`vapixlog syslog | head`): not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except VapixError as exc:
        _fail(str(exc))
        return 1
    except ValueError as exc:
        _fail(str(exc))
        return 2
    except OSError as exc:
        _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
        return 1
    except Exception as exc:
        _fail(f"{type(exc).__name__}: {exc}")
        return 1


def _fail(message: str) -> None:
    print(f"vapixlog: {message}", file=sys.stderr, flush=True)


def _connection(args: argparse.Namespace) -> dict[str, Any]:
    password = args.password if args.password is not None else os.environ.get("VAPIXLOG_PASSWORD")
    return {
        "user": args.user or os.environ.get("VAPIXLOG_USER") or "root",
        "password": password,
        "ca_file": args.ca_file,
        "pin_sha256": args.pin_sha256,
        "insecure": args.insecure,
        "timeout": args.timeout,
        "report_timeout": args.report_timeout,
    }


def _one_device(args: argparse.Namespace) -> str:
    devices = args.device or []
    if len(devices) > 1:
        raise ValueError(f"{args.command} takes one --device")
    url = devices[0] if devices else os.environ.get("VAPIXLOG_DEVICE")
    if not url:
        raise ValueError("no device: give --device URL or set VAPIXLOG_DEVICE")
    return url


def _client(args: argparse.Namespace) -> Client:
    from vapixlog.client import Client

    return Client(_one_device(args), **_connection(args))


def _write(args: argparse.Namespace) -> int:
    with _client(args) as client:
        for warning in client.write_message(args.message, args.severity):
            print(f"vapixlog: warning: {warning}", file=sys.stderr)
    return 0


def _persistent(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if args.state == "status":
            print("on" if client.persistent_enabled() else "off")
        else:
            client.set_persistent(args.state == "on")
    return 0


def _clear(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.clear_persistent_log()
    return 0


def _report(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if args.output == "-":
            client.server_report(args.mode, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return 0
        size = client.server_report(args.mode, args.output)
    print(f"{args.output}: {size} bytes", file=sys.stderr)
    return 0


def new_lines(old: list[str], new: list[str]) -> list[str]:
    """The lines of `new` after the last lines of `old` (all of `new` when they are not in it:
    the device rebooted, or more was written than its log keeps)."""
    anchor = old[-_ANCHOR_LINES:]
    if not anchor:
        return new
    for end in range(len(new), len(anchor) - 1, -1):
        if new[end - len(anchor) : end] == anchor:
            return new[end:]
    return new


def _syslog(args: argparse.Namespace) -> int:
    from vapixlog.client import DeviceUnavailableError

    with _client(args) as client:
        lines = client.system_log().splitlines()
        _print_lines(lines)
        down = False
        while args.follow:
            time.sleep(args.interval)
            try:
                current = client.system_log().splitlines()
            except DeviceUnavailableError as exc:
                if not down:
                    _fail(f"{exc}; retrying")
                down = True
                continue
            down = False
            _print_lines(new_lines(lines, current))
            lines = current
    return 0


def _print_lines(lines: list[str]) -> None:
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()


def _reboot(args: argparse.Namespace) -> int:
    with _client(args) as client:
        boot = client.reboot(wait=args.wait, timeout=args.wait_timeout)
    if args.wait:
        print(f"back with boot id {boot}" if boot else "back")
    return 0


def _fleet_urls(args: argparse.Namespace) -> list[str]:
    urls = list(args.device or [])
    if args.devices_file is not None:
        for line in args.devices_file.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                urls.append(line)
    if not urls and args.devices_file is None and os.environ.get("VAPIXLOG_DEVICE"):
        urls.append(os.environ["VAPIXLOG_DEVICE"])
    if not urls:
        raise ValueError("no devices: give --device URL ... or --devices-file FILE")
    return list(dict.fromkeys(urls))  # a device listed twice is captured once


def _capture(args: argparse.Namespace) -> int:
    import asyncio

    from vapixlog.client import AsyncClient, FleetProgress, capture_fleet

    urls = _fleet_urls(args)
    connection = _connection(args)

    def factory(url: str) -> AsyncClient:
        return AsyncClient(url, **connection)

    progress = FleetProgress(len(urls))
    started = time.monotonic()
    run = capture_fleet(
        urls,
        args.output,
        client_factory=factory,
        concurrency=args.concurrency,
        timeout=args.wait_timeout,
        progress=progress,
    )
    if sys.stdout.isatty() and not args.json:
        with _LiveDisplay(progress):
            outcomes = asyncio.run(run)
    else:
        outcomes = asyncio.run(run)
    seconds = time.monotonic() - started
    for outcome in outcomes:
        if not outcome.ok:
            _fail(f"{outcome.url}: {outcome.error}")
    if args.json:
        _print_json(outcomes, seconds)
    else:
        _print_table(outcomes, seconds)
    return 0 if all(outcome.ok for outcome in outcomes) else 1


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
        finished = progress.succeeded_devices + progress.failed_devices
        self._bar.update(
            self._devices, completed=finished, detail=f"failed {progress.failed_devices}"
        )
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


def _outcome_json(outcome: DeviceOutcome) -> dict[str, Any]:
    return {
        "device": outcome.url,
        "ok": outcome.ok,
        "file": str(outcome.path) if outcome.path else None,
        "bytes": outcome.bytes,
        "seconds": round(outcome.seconds, 3),
        "serial": outcome.serial,
        "boot_id": outcome.new_boot_id,
        "failed_stage": (outcome.stage.value if outcome.stage else "connect")
        if not outcome.ok
        else None,
        "error": outcome.error,
    }


def _print_json(outcomes: list[DeviceOutcome], seconds: float) -> None:
    ok = sum(outcome.ok for outcome in outcomes)
    document = {
        "devices": [_outcome_json(outcome) for outcome in outcomes],
        "succeeded": ok,
        "failed": len(outcomes) - ok,
        "seconds": round(seconds, 3),
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
        else:
            stage = outcome.stage.value if outcome.stage else "connect"
            result = f"[red]failed at {stage}[/red]: {_escape(outcome.error or '')}"
        table.add_row(
            _escape(outcome.url),
            result,
            f"{outcome.seconds:.1f}",
            f"{outcome.bytes:,}" if outcome.ok else "",
            _escape(outcome.path.name) if outcome.path else "",
        )
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    ok = sum(outcome.ok for outcome in outcomes)
    devices = f"{len(outcomes)} device{'s' if len(outcomes) != 1 else ''}"
    console.print(
        f"{devices}: {ok} succeeded, {len(outcomes) - ok} failed, in {seconds:.1f} s",
        highlight=False,
    )


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
