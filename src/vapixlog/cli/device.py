"""The commands on one device: write, persistent, clear, report, syslog, reboot."""

from __future__ import annotations

import argparse
import sys
import time

from vapixlog.cli._common import client_command, fail, open_client, seconds, severity, wait_options
from vapixlog.severity import Severity

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
    )
    report.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="where to write it ('-': stdout)"
    )
    syslog = commands.add_parser("syslog", parents=[device], help="print the system log")
    syslog.add_argument(
        "--follow", "-f", action="store_true", help="keep printing new lines (Ctrl-C stops)"
    )
    syslog.add_argument("--interval", type=seconds, default=1.0, metavar="SECONDS")
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


def _write(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        for warning in client.write_message(args.message, args.severity):
            print(f"vapixlog: warning: {warning}", file=sys.stderr)
    return 0


def _persistent(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        if args.state == "status":
            print("on" if client.persistent_enabled() else "off")
        else:
            client.set_persistent(args.state == "on")
    return 0


def _clear(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        client.clear_persistent_log()
    return 0


def _report(args: argparse.Namespace) -> int:
    with open_client(args) as client:
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

    with open_client(args) as client:
        lines = client.system_log().splitlines()
        _print_lines(lines)
        down = False
        while args.follow:
            time.sleep(args.interval)
            try:
                current = client.system_log().splitlines()
            except DeviceUnavailableError as exc:
                if not down:
                    fail(f"{exc}; retrying")
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
    with open_client(args) as client:
        boot = client.reboot(wait=args.wait, timeout=args.wait_timeout)
    if args.wait:
        print(f"back with boot id {boot}" if boot else "back")
    return 0
