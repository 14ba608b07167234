"""The commands on one device: write, persistent, clear, report, syslog, reboot."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from vapixlog.cli._common import (
    client_command,
    fail,
    open_client,
    report_failure,
    seconds,
    severity,
    wait_options,
)
from vapixlog.severity import Severity

if TYPE_CHECKING:
    from vapixlog.client import Client

_ANCHOR_LINES = 3


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], device: argparse.ArgumentParser
) -> None:
    write = commands.add_parser(
        "write", parents=[device], help="write a message into the device's system log"
    )
    write.add_argument("message")
    write.add_argument(
        "--severity",
        type=severity,
        default=Severity.INFO,
        metavar="NAME|N",
        help="0..7 or emerg, alert, crit, err, warning, notice, info, debug (default info)",
    )
    persistent = commands.add_parser(
        "persistent", parents=[device], help="turn saving logs to persistent storage on or off"
    )
    persistent.add_argument("state", choices=["on", "off", "status"])
    clear = commands.add_parser("clear", parents=[device], help="clear the persistent log")
    report = commands.add_parser(
        "report", parents=[device], help="download a server report (serverreport.cgi)"
    )
    report.add_argument(
        "--mode",
        default="tar_all",
        choices=["tar_all", "text", "zip", "zip_with_image", "tar_kernel_log"],
        help="the report's form (default tar_all: a tar of the logs, persistent log included)",
    )
    report.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="where to write it ('-': stdout)"
    )
    syslog = commands.add_parser("syslog", parents=[device], help="print the system log")
    syslog.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="keep printing new lines (Ctrl-C stops); across a reboot, a new-boot line, and "
        "the lines up to the shutdown when persistent logging is on",
    )
    syslog.add_argument(
        "--interval",
        type=seconds,
        default=1.0,
        metavar="SECONDS",
        help="with --follow: how often to look (default 1)",
    )
    wait = wait_options()
    reboot = commands.add_parser("reboot", parents=[device, wait], help="reboot the device")
    reboot.add_argument("--wait", action="store_true", help="wait until it is back with a new boot")
    for parser, handler in (
        (write, _write),
        (persistent, _persistent),
        (clear, _clear),
        (report, _report),
        (syslog, _syslog),
        (reboot, _reboot),
    ):
        client_command(parser, handler)


def _done(args: argparse.Namespace, message: str) -> None:
    """Say what succeeded (stderr, so stdout stays for data), unless --quiet."""
    if not args.quiet:
        print(f"{message} ({args.device_url})", file=sys.stderr, flush=True)


def _write(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        args.device_url = client.url
        for warning in client.write_message(args.message, args.severity):
            print(f"vapixlog: warning: {warning}", file=sys.stderr)
    _done(args, f"Written to the system log with severity {args.severity.name.lower()}")
    return 0


def _persistent(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        args.device_url = client.url
        if args.state == "status":
            print("on" if client.persistent_enabled() else "off")
            return 0
        client.set_persistent(args.state == "on")
    _done(args, f"Persistent logging turned {args.state}")
    return 0


def _clear(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        args.device_url = client.url
        client.clear_persistent_log()
    _done(args, "Persistent log cleared")
    return 0


def _report(args: argparse.Namespace) -> int:
    if args.output != "-":
        folder = Path(args.output).absolute().parent
        if not folder.is_dir():
            raise ValueError(f"cannot write {args.output}: no folder {folder}")
    with open_client(args) as client:
        if args.output == "-":
            client.server_report(args.mode, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return 0
        size = client.server_report(args.mode, args.output)
    if not args.quiet:
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


def _continues(old: list[str], new: list[str]) -> bool:
    """Whether `new` holds the last lines of `old` (the same boot, nothing lost)."""
    anchor = old[-_ANCHOR_LINES:]
    return not anchor or new_lines(old, new) != new or new[: len(anchor)] == anchor


def _syslog(args: argparse.Namespace) -> int:
    from vapixlog.client import DeviceUnavailableError, VapixError

    with open_client(args) as client:
        lines = client.system_log().splitlines()
        _print_lines(lines)
        boot = _boot_id(client) if args.follow else None
        down = False
        while args.follow:
            time.sleep(args.interval)
            try:
                current = client.system_log().splitlines()
                new_boot = None
                if down or not _continues(lines, current):
                    now = _boot_id(client)
                    if now != boot or (now is None and down):
                        new_boot = now or "?"
            except DeviceUnavailableError as exc:
                if not down:
                    fail(f"{exc}; retrying")
                down = True
                continue
            except VapixError as exc:  # e.g. 401 after a reboot that reset the users
                return report_failure(args, exc)
            down = False
            if new_boot is not None:
                _print_lines(_before_shutdown(client, lines, current))
                _print_lines([f"----- new boot {new_boot}: the device restarted -----"])
                _print_lines(_entries(current))
                boot = None if new_boot == "?" else new_boot
            else:
                _print_lines(new_lines(lines, current))
            lines = current
    return 0


def _boot_id(client: Client) -> str | None:
    from vapixlog.client import VapixError

    try:
        return client.boot_id()
    except VapixError:
        return None


def _before_shutdown(client: Client, seen: list[str], current: list[str]) -> list[str]:
    """The lines of the previous boot after `seen`, up to its shutdown: a device loses its
    volatile log at a reboot, and only its persistent log (when on) keeps them; it is read
    from a text server report. With persistent logging off, a note that they are lost."""
    from vapixlog.client import VapixError

    try:
        if not client.persistent_enabled():
            fail(
                "the device restarted: lines logged after the last look and before the "
                "shutdown are lost (persistent logging is off; 'vapixlog persistent on' "
                "keeps them)"
            )
            return []
        report = client.report_text()
    except VapixError as exc:
        fail(f"the lines before the shutdown could not be read: {exc}")
        return []
    section = report.split("----- Persistent system log -----", 1)
    if len(section) < 2:
        return []
    persistent = section[1].split("\n----- ", 1)[0].strip().splitlines()
    seen = _entries(seen)
    after: list[str] = []
    # The last lines seen, in the persistent log; fewer when the older ones were logged
    # before persistent logging was turned on.
    for count in range(min(_ANCHOR_LINES, len(seen)), 0, -1):
        after = new_lines(seen[-count:], persistent)
        if after != persistent:
            break
    else:
        return []  # none of them is in the persistent log: nothing to place after them
    first_new = set(_entries(current)[:1])
    kept: list[str] = []
    for line in after:
        if line in first_new:  # the new boot's first line: its own lines follow
            break
        kept.append(line)
    return kept


def _entries(lines: list[str]) -> list[str]:
    """The log lines of a system log, without its frame (empty lines, `----- System log
    -----`)."""
    return [line for line in lines if line.strip() and not line.startswith("----- ")]


def _print_lines(lines: list[str]) -> None:
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()


def _reboot(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        args.device_url = client.url
        boot = client.reboot(wait=args.wait, timeout=args.wait_timeout)
    if args.wait:
        print(f"back with boot id {boot}" if boot else "back")
    else:
        _done(args, "Reboot requested; the device is down for a while ('--wait' waits for it)")
    return 0
