"""The `vapixlog` command line: `serve` runs a device, `users` manages its accounts, and the
client commands (`write`, `persistent`, `clear`, `report`, `syslog`, `reboot`, `capture`)
talk to a device or a fleet."""

from __future__ import annotations

import argparse
import signal
import sys

from vapixlog.cli import capture, device, insight, remote_syslog, serve, users
from vapixlog.cli._common import device_options
from vapixlog.cli.serve_options import parse_size
from vapixlog.cli.users import default_state_dir, open_users

__all__ = ["build_parser", "default_state_dir", "main", "open_users", "parse_size"]


def build_parser() -> argparse.ArgumentParser:
    from importlib.metadata import version

    parser = argparse.ArgumentParser(prog="vapixlog", description=__doc__)
    parser.add_argument("--version", action="version", version=f"vapixlog {version('vapixlog')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.add_parser(commands)
    users.add_parser(commands)
    parents = device_options()
    device.add_parsers(commands, parents)
    capture.add_parser(commands, parents)
    remote_syslog.add_parser(commands, parents)
    insight.add_parsers(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        result: int = args.handler(args)
        return result
    except KeyboardInterrupt:
        return 130


def _interrupt(signum: int, frame: object) -> None:
    """Ctrl-C stops a command at once. asyncio's own handler (installed only while Python's
    default one is in place) merely cancels the running task, and a task that swallows the
    cancellation would keep `syslog --follow` going; `serve` installs its own handler."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
