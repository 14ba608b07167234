"""`vapixlog remote-syslog setup|enable|disable|status|test`: where devices forward their
log (remotesyslog.cgi), on one device or a fleet."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vapixlog.cli._common import (
    add_fleet_options,
    client_command,
    connection,
    fail,
    fleet_urls,
)
from vapixlog.severity import API_NAMES

if TYPE_CHECKING:
    from vapixlog.client import AsyncClient, RemoteSyslogStatus, SyslogServer

# The spec's values (remotesyslog.cgi), by their lower-case spelling on the command line.
PROTOCOLS = {"udp": "UDP", "tcp": "TCP", "tls": "TLS"}
FORMATS = {"axis": "AXIS", "rfc3164": "RFC3164", "rfc5424": "RFC5424"}
SEVERITIES = {name.lower(): name for name in API_NAMES}
TYPES = {"all": "All", "audit": "Audit"}
ACTIONS = {
    "setup": "forward the log to these servers (at most two) and enable forwarding",
    "enable": "turn forwarding on",
    "disable": "turn forwarding off (the servers stay configured)",
    "status": "show whether forwarding is on and the servers",
    "test": "send a test message at every severity the servers take",
}


def server_spec(text: str) -> tuple[str, int | None]:
    """`HOST`, `HOST:PORT`, `[IPv6]:PORT` or a bare IPv6 address."""
    host, port = text.strip(), ""
    if host.startswith("["):
        inner, bracket, rest = host[1:].partition("]")
        if not inner or not bracket or (rest and not rest.startswith(":")):
            raise argparse.ArgumentTypeError(f"invalid server {text!r}; use HOST[:PORT]")
        host, port = inner, rest[1:]
    elif host.count(":") == 1:
        host, _, port = host.partition(":")
    if not host or any(c.isspace() for c in host):
        raise argparse.ArgumentTypeError(f"invalid server {text!r}; use HOST[:PORT]")
    if not port:
        return host, None
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port in {text!r}; use 1..65535")
    return host, int(port)


def _choice(values: dict[str, str], what: str) -> Any:
    def parse(text: str) -> str:
        value = values.get(text.lower())
        if value is None:
            raise argparse.ArgumentTypeError(
                f"invalid {what} {text!r}; use one of {', '.join(values)}"
            )
        return value

    return parse


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], device: argparse.ArgumentParser
) -> None:
    group = commands.add_parser(
        "remote-syslog",
        help="forward a device's log to syslog servers (remotesyslog.cgi), on one device or "
        "a fleet",
    )
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in ACTIONS.items():
        parser = actions.add_parser(action, parents=[device], help=text, description=text)
        add_fleet_options(parser)
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        if action == "setup":
            _setup_options(parser)
        client_command(parser, _run)


def _setup_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        action="append",
        type=server_spec,
        default=[],
        metavar="HOST[:PORT]",
        help="a syslog server (repeatable, at most two; default port: the device's for the "
        "protocol and format)",
    )
    parser.add_argument(
        "--protocol",
        type=_choice(PROTOCOLS, "protocol"),
        metavar="udp|tcp|tls",
        help="for every --server (device default: tls)",
    )
    parser.add_argument(
        "--format",
        dest="syslog_format",
        type=_choice(FORMATS, "format"),
        metavar="axis|rfc3164|rfc5424",
        help="message format (device default: rfc5424)",
    )
    parser.add_argument(
        "--severity",
        type=_choice(SEVERITIES, "severity"),
        metavar="LEVEL",
        help="send this level and worse: emergency, alert, critical, error, warning, notice, "
        "informational, debug (device default: warning)",
    )
    parser.add_argument(
        "--type",
        type=_choice(TYPES, "type"),
        metavar="all|audit",
        help="all log messages or audit events only (device default: all)",
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="FILE",
        help='the servers as JSON: a list of the API\'s server objects, or {"servers": [...]}'
        " ([] removes all); instead of --server and its options",
    )


def _servers(args: argparse.Namespace) -> list[SyslogServer | dict[str, Any]]:
    from vapixlog.client import SyslogServer

    options = (args.protocol, args.syslog_format, args.severity, args.type)
    if args.from_json is not None:
        if args.server or any(option is not None for option in options):
            raise ValueError("--from-json replaces --server and its options")
        try:
            document = json.loads(args.from_json.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{args.from_json}: not JSON: {exc}") from None
        if isinstance(document, dict):
            document = document.get("servers")
        if not isinstance(document, list) or not all(isinstance(s, dict) for s in document):
            raise ValueError(f"{args.from_json}: expected a list of server objects")
        return list(document)
    if not args.server:
        raise ValueError("setup needs --server HOST[:PORT] (or --from-json FILE)")
    protocol, syslog_format, severity, kind = options
    return [
        SyslogServer(host, port, protocol, syslog_format, severity, kind)
        for host, port in args.server
    ]


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from vapixlog.client import AsyncClient
    from vapixlog.client.fleet import describe

    servers = _servers(args) if args.action == "setup" else []
    urls = fleet_urls(args)
    options = connection(args)
    slots = asyncio.Semaphore(args.concurrency)

    async def one(url: str) -> tuple[str, RemoteSyslogStatus | str]:
        async with slots:
            try:
                async with AsyncClient(url, **options) as client:
                    return url, await _call(client, args.action, servers)
            except Exception as exc:  # every failure is this device's alone
                return url, describe(exc)

    async def every() -> list[tuple[str, RemoteSyslogStatus | str]]:
        return list(await asyncio.gather(*(one(url) for url in urls)))

    results = asyncio.run(every())
    for url, result in results:
        if isinstance(result, str):
            fail(result if result.startswith(url) else f"{url}: {result}")
    if args.json:
        _print_json(results)
    else:
        _print_text(results, many=len(urls) > 1)
    return 1 if any(isinstance(result, str) for _, result in results) else 0


async def _call(
    client: AsyncClient, action: str, servers: list[SyslogServer | dict[str, Any]]
) -> RemoteSyslogStatus:
    if action == "setup":
        return await client.remote_syslog_setup(servers)
    if action == "enable":
        return await client.remote_syslog_enable()
    if action == "disable":
        return await client.remote_syslog_disable()
    if action == "test":
        return await client.remote_syslog_test()
    return await client.remote_syslog_status()


def _print_json(results: list[tuple[str, RemoteSyslogStatus | str]]) -> None:
    devices: list[dict[str, Any]] = []
    for url, result in results:
        if isinstance(result, str):
            devices.append({"device": url, "ok": False, "error": result})
        else:
            devices.append({"device": url, "ok": True, **result.to_json()})
    ok = sum(device["ok"] for device in devices)
    document = {"devices": devices, "succeeded": ok, "failed": len(devices) - ok}
    print(json.dumps(document, indent=1))


def _print_text(results: list[tuple[str, RemoteSyslogStatus | str]], *, many: bool) -> None:
    lines: list[str] = []
    for url, result in results:
        if isinstance(result, str):
            continue
        prefix = f"{url}: " if many else ""
        lines.append(f"{prefix}forwarding {'on' if result.enabled else 'off'}")
        if not result.servers:
            lines.append(f"{prefix}  no servers")
        for server in result.servers:
            port = f":{server.port}" if server.port is not None else ""
            host = f"[{server.address}]" if ":" in server.address and port else server.address
            fields = (server.protocol, server.syslog_format, server.severity, server.type)
            lines.append(f"{prefix}  {host}{port} " + " ".join(f or "-" for f in fields))
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
