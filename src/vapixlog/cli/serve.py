"""`vapixlog serve`: run one device or a fleet of emulated devices."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from vapixlog.auth.policy import AuthPolicy
from vapixlog.cli.users import default_state_dir, open_users, register_realms
from vapixlog.profiles import (
    FirmwareProfile,
    assign,
    default_profile,
    known_versions,
    load_profile,
    parse_mix,
)
from vapixlog.ratelimit import DEFAULT_WRITE_RATE, Rate, parse_rate
from vapixlog.syslog.system_log import LogLimits

if TYPE_CHECKING:
    from vapixlog.server import DeviceServer
    from vapixlog.tls import TlsFiles

_SIZE = re.compile(r"(\d+)\s*([KMGT]?)i?B?", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """`65536`, `64K`, `8M`, `1G` (binary units) as bytes."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}; use e.g. 512K, 64M or 1G")
    return int(match[1]) * _UNITS[match[2].upper()]


def _rate_limit(text: str) -> Rate | None:
    try:
        return parse_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text!r}")
        return value

    return parse


def _report_delay(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be 0..3600 seconds, not {text!r}")
    return value


def _firmware(text: str) -> FirmwareProfile:
    try:
        return load_profile(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _firmware_mix(text: str) -> list[tuple[FirmwareProfile, int]]:
    try:
        return parse_mix(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _profiles(args: argparse.Namespace) -> list[FirmwareProfile] | str:
    """Each device's firmware profile, or what is wrong with the options."""
    if args.firmware_mix is not None:
        if args.firmware is not None:
            return "use either --firmware or --firmware-mix"
        return assign(args.firmware_mix, args.devices)
    return [args.firmware or default_profile()] * args.devices


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="run the device service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--devices",
        type=int,
        default=1,
        metavar="N",
        help="emulate N independent devices on ports PORT..PORT+N-1 (default 1)",
    )
    serve.add_argument("--state-dir", type=Path, default=None)
    serve.add_argument("--hostname", help="device hostname (default axis-<serial>)")
    serve.add_argument("--serial", help="12 hex digits (default: random, kept in the state dir)")
    limits = LogLimits()
    serve.add_argument("--volatile-size", type=parse_size, default=limits.volatile_bytes)
    serve.add_argument(
        "--persistent-max-size", type=parse_size, default=limits.persistent_max_bytes
    )
    serve.add_argument(
        "--persistent-file-size", type=parse_size, default=limits.persistent_file_bytes
    )
    serve.add_argument("--keep-free", type=parse_size, default=limits.keep_free_bytes)
    serve.add_argument(
        "--rate-limit",
        type=_rate_limit,
        default=DEFAULT_WRITE_RATE,
        metavar="N/SECONDS",
        help=f"writeMessage calls per user and client address: bursts of N, N more every "
        f"SECONDS; 'off' for none (default {DEFAULT_WRITE_RATE})",
    )
    serve.add_argument("--max-body", type=parse_size, default=64 << 10)
    serve.add_argument(
        "--reboot-downtime",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how long a rebooting device refuses connections",
    )
    serve.add_argument(
        "--reboot-command",
        metavar="CMD",
        help="on real hardware: run CMD to reboot instead of emulating the reboot",
    )
    serve.add_argument("--tls-cert", type=Path, metavar="FILE", help="serve HTTPS: PEM certificate")
    serve.add_argument("--tls-key", type=Path, metavar="FILE", help="PEM private key of --tls-cert")
    serve.add_argument(
        "--tls-self-signed",
        action="store_true",
        help="serve HTTPS with a self-signed certificate kept in <state-dir>/tls",
    )
    serve.add_argument(
        "--request-timeout",
        type=_positive(float),
        default=10.0,
        metavar="SECONDS",
        help="close a connection whose request (headers and body) takes longer to arrive",
    )
    serve.add_argument(
        "--max-connections",
        type=_positive(int),
        default=1000,
        metavar="N",
        help="connections served at once; a request on one more gets 503",
    )
    serve.add_argument(
        "--max-connections-per-address",
        type=_positive(int),
        default=None,
        metavar="N",
        help="connections one client address may hold at once; one more gets 503 and is "
        "closed (default: 512, at most 3/4 of --max-connections)",
    )
    serve.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDR",
        help="take client addresses from X-Forwarded-For on requests from this proxy address "
        "or network (repeatable; default: never, the socket's peer address is the client's)",
    )
    serve.add_argument(
        "--brute-force-protection",
        choices=["on", "off"],
        default=None,
        help="on (as devices since AXIS OS 11.5): more than 20 failed logins from one address "
        "in 1 s block it for 10 s (403 on every path); off: failed logins are slowed down "
        "per address and user instead, and correct credentials are never refused "
        "(default: the firmware's: on from 11.5, off on 10.12)",
    )
    serve.add_argument(
        "--firmware",
        type=_firmware,
        default=None,
        metavar="VERSION",
        help=f"the AXIS OS version to emulate, with every difference the specs document: "
        f"{', '.join(known_versions())} (a release such as 12.11 is enough; default "
        f"{default_profile().version})",
    )
    serve.add_argument(
        "--firmware-mix",
        type=_firmware_mix,
        default=None,
        metavar="VERSION:WEIGHT,...",
        help="with --devices N: spread firmware versions over the devices by weight, e.g. "
        "10.12:1,11.10:1,12.11:2 (interleaved, the same every start)",
    )
    serve.add_argument(
        "--auth-policy",
        choices=[policy.value for policy in AuthPolicy],
        default=AuthPolicy.RECOMMENDED.value,
        help="authentication schemes offered, as the device's Network.HTTP."
        "AuthenticationPolicy: recommended (Digest MD5 over HTTP, Basic over HTTPS), basic, "
        "digest, basic_digest; or any (Basic and Digest MD5 and SHA-256 everywhere)",
    )
    serve.add_argument(
        "--access-log",
        choices=["on", "off"],
        default="off",
        help="on: the access log (accesslog.cgi) also records successful requests, as "
        "System.AccessLog=On on a device; off (as devices): failed logins only",
    )
    serve.add_argument(
        "--systemready-version",
        choices=["1.2", "1.4", "1.5"],
        default=None,
        help="override the firmware's systemready.cgi API version: 1.2 has no bootid and no "
        "uptime (10.12), 1.4 adds them, 1.5 adds passphrasepolicy (12.11)",
    )
    serve.add_argument(
        "--report-delay",
        type=_report_delay,
        default=0.0,
        metavar="SECONDS",
        help="serverreport.cgi sends its headers at once and its body after this long, as "
        "real devices take about 30 s (default 0, at most 3600)",
    )
    serve.add_argument(
        "--remote-syslog-ca",
        type=Path,
        metavar="FILE",
        help="PEM CA certificates that remote syslog servers over TLS must chain to (kept in "
        "the state dir for later starts; default: the system's trusted CAs)",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from vapixlog.auth import ensure_admin
    from vapixlog.edge import TrustedProxies
    from vapixlog.server import (
        DeviceServer,
        ServeOptions,
        device_configs,
        device_realms,
        raise_open_files_limit,
        serve,
    )
    from vapixlog.tls import TlsError

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(message)s")
    limits = LogLimits(
        volatile_bytes=args.volatile_size,
        persistent_max_bytes=args.persistent_max_size,
        persistent_file_bytes=args.persistent_file_size,
        keep_free_bytes=args.keep_free,
    )
    if args.serial and not re.fullmatch(r"[0-9A-Fa-f]{12}", args.serial):
        print("vapixlog: --serial takes 12 hex digits", file=sys.stderr)
        return 2
    if (args.tls_cert is None) != (args.tls_key is None):
        print("vapixlog: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    if args.tls_self_signed and args.tls_cert is not None:
        print("vapixlog: use either --tls-cert/--tls-key or --tls-self-signed", file=sys.stderr)
        return 2
    if not 1 <= args.devices <= 10_000 or args.port + args.devices > 65536:
        print(
            "vapixlog: --devices takes 1..10000 and the ports must fit below 65536", file=sys.stderr
        )
        return 2
    try:
        TrustedProxies(args.trusted_proxy)
    except ValueError as exc:
        print(f"vapixlog: --trusted-proxy: {exc}", file=sys.stderr)
        return 2
    if args.remote_syslog_ca is not None:
        from vapixlog.forward.transport import check_ca_file

        try:
            check_ca_file(args.remote_syslog_ca)
        except ValueError as exc:
            print(f"vapixlog: --remote-syslog-ca: {exc}", file=sys.stderr)
            return 2
    profiles = _profiles(args)
    if isinstance(profiles, str):
        print(f"vapixlog: {profiles}", file=sys.stderr)
        return 2
    state_dir = args.state_dir or default_state_dir()
    configs = device_configs(
        state_dir,
        args.devices,
        serial=args.serial,
        hostname=args.hostname,
        limits=limits,
        rate_limit=args.rate_limit,
        systemready_version=args.systemready_version,
        profiles=profiles,
        access_log=args.access_log == "on",
        report_delay=args.report_delay,
        remote_syslog_ca=args.remote_syslog_ca,
    )
    users = open_users(state_dir, serial=args.serial, hostname=args.hostname)
    try:
        tls = _tls_files(args, state_dir)
    except TlsError as exc:
        print(f"vapixlog: TLS: {exc}", file=sys.stderr)
        return 1
    # Every device's realm first, so that root, when created now, can log in to all.
    warning = register_realms(
        users,
        device_realms(configs),
        state_dir=state_dir,
        admin_password=os.environ.get("VAPIXLOG_ADMIN_PASSWORD"),
    )
    if warning:
        print(warning, file=sys.stderr, flush=True)
    password = ensure_admin(users, os.environ.get("VAPIXLOG_ADMIN_PASSWORD"))
    if password:
        print(
            f"Created user 'root' (admin) with password: {password}\n"
            "It is shown only this once; change it with 'vapixlog users add root --role admin'.",
            flush=True,
        )
    options = ServeOptions(
        host=args.host,
        max_body=args.max_body,
        reboot_downtime=args.reboot_downtime,
        reboot_command=args.reboot_command,
        tls_certfile=str(tls.certfile) if tls else None,
        tls_keyfile=str(tls.keyfile) if tls else None,
        request_timeout=args.request_timeout,
        max_connections=args.max_connections,
        max_connections_per_address=args.max_connections_per_address,
        trusted_proxies=tuple(args.trusted_proxy),
        auth_policy=AuthPolicy(args.auth_policy),
        brute_force_protection=(
            None if args.brute_force_protection is None else args.brute_force_protection == "on"
        ),
    )
    if tls:
        print(f"TLS certificate {tls.certfile}, SHA-256 fingerprint {tls.fingerprint}", flush=True)
    servers = [
        DeviceServer(config, users, port=args.port + index, options=options)
        for index, config in enumerate(configs)
    ]
    # A descriptor per connection, plus listening sockets and log files per device.
    raise_open_files_limit(64 * len(servers) + args.max_connections + 64)
    if len(servers) > 1:
        _write_fleet_file(state_dir / "devices.txt", servers, tls is not None)
    _print_firmware(servers, mixed=args.firmware_mix is not None)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(servers))
    return 0


def _write_fleet_file(path: Path, servers: list[DeviceServer], https: bool) -> None:
    """The devices' URLs, one a line: what `vapixlog capture --devices-file` reads."""
    scheme = "https" if https else "http"
    host = servers[0].options.host
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    lines = [f"{scheme}://{host}:{server.port}" for server in servers]
    path.write_text("\n".join(lines) + "\n")
    print(
        f"{len(servers)} devices on ports {servers[0].port}..{servers[-1].port}; "
        f"their URLs are in {path}",
        flush=True,
    )


def _print_firmware(servers: list[DeviceServer], *, mixed: bool) -> None:
    """Which AXIS OS each device emulates: one line, or one a device for a mix."""
    if not mixed:
        print(f"Firmware: {servers[0].config.profile.title}", flush=True)
        return
    for server in servers:
        print(f"port {server.port}: firmware {server.config.profile.version}", flush=True)


def _tls_files(args: argparse.Namespace, state_dir: Path) -> TlsFiles | None:
    """The certificate and key to serve HTTPS with, None for plain HTTP; raises TlsError."""
    from vapixlog import tls
    from vapixlog.device import Identity

    if args.tls_cert is not None:
        return tls.load_pair(args.tls_cert, args.tls_key)
    if not args.tls_self_signed:
        return None
    identity = Identity.load_or_create(
        state_dir / "identity.json", serial=args.serial, hostname=args.hostname
    )
    return tls.self_signed(state_dir / "tls", identity.hostname)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # uvloop is optional (not on every platform)
        return None
    return uvloop.new_event_loop
