"""The options of `vapixlog serve`: each one's parser, default and help."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path

from vapixlog.auth.policy import AuthPolicy
from vapixlog.cli import faults as cli_faults
from vapixlog.cli.users import state_dir_help
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

_SIZE = re.compile(r"(\d+)\s*([KMGT]?)i?B?", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """`65536`, `64K`, `8M`, `1G` (binary units) as bytes."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}; use e.g. 512K, 64M or 1G")
    return int(match[1]) * _UNITS[match[2].upper()]


def size_text(size: int) -> str:
    """Bytes in the largest binary unit that divides them: `64K`, `8M`, `1000`."""
    for unit in "TGMK":
        if size and size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}"
    return str(size)


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


def profiles(args: argparse.Namespace) -> list[FirmwareProfile] | str:
    """Each device's firmware profile, or what is wrong with the options."""
    if args.firmware_mix is not None:
        if args.firmware is not None:
            return "use either --firmware or --firmware-mix"
        return assign(args.firmware_mix, args.devices)
    return [args.firmware or default_profile()] * args.devices


def add_arguments(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument(
        "--port",
        type=int,
        default=8080,
        help="port to listen on, the first device's (default 8080)",
    )
    serve.add_argument(
        "--devices",
        type=int,
        default=1,
        metavar="N",
        help="emulate N independent devices on ports PORT..PORT+N-1 (default 1)",
    )
    serve.add_argument(
        "--address-per-device",
        action="store_true",
        help="with --devices: each device on its own loopback address (127.1.0.1, "
        "127.1.0.2, ...) and the same --port, as a real fleet has one address per device",
    )
    serve.add_argument("--state-dir", type=Path, default=None, metavar="DIR", help=state_dir_help())
    serve.add_argument("--hostname", help="device hostname (default axis-<serial>)")
    serve.add_argument("--serial", help="12 hex digits (default: random, kept in the state dir)")
    limits = LogLimits()
    serve.add_argument(
        "--volatile-size",
        type=parse_size,
        default=limits.volatile_bytes,
        metavar="SIZE",
        help=f"the volatile system log (RAM on a device; lost at reboot), e.g. 512K, 4M "
        f"(default {size_text(limits.volatile_bytes)})",
    )
    serve.add_argument(
        "--persistent-max-size",
        type=parse_size,
        default=limits.persistent_max_bytes,
        metavar="SIZE",
        help=f"the persistent log in all, its oldest file dropped beyond it; at least "
        f"--persistent-file-size (default {size_text(limits.persistent_max_bytes)})",
    )
    serve.add_argument(
        "--persistent-file-size",
        type=parse_size,
        default=limits.persistent_file_bytes,
        metavar="SIZE",
        help=f"one persistent log file, rotated beyond it "
        f"(default {size_text(limits.persistent_file_bytes)})",
    )
    serve.add_argument(
        "--keep-free",
        type=parse_size,
        default=limits.keep_free_bytes,
        metavar="SIZE",
        help=f"stop writing the persistent log when the disk has less free "
        f"(default {size_text(limits.keep_free_bytes)})",
    )
    serve.add_argument(
        "--rate-limit",
        type=_rate_limit,
        default=DEFAULT_WRITE_RATE,
        metavar="N/SECONDS",
        help=f"writeMessage calls per user and client address: bursts of N, N more every "
        f"SECONDS; 'off' for none (default {DEFAULT_WRITE_RATE})",
    )
    serve.add_argument(
        "--max-body",
        type=parse_size,
        default=64 << 10,
        metavar="SIZE",
        help="largest request body taken; a larger one gets 413 (default 64K)",
    )
    serve.add_argument(
        "--reboot-downtime",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how long a rebooting device refuses connections (default 2)",
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
        help="close a connection whose request (headers and body) takes longer to arrive "
        "(default 10)",
    )
    serve.add_argument(
        "--max-connections",
        type=_positive(int),
        default=1000,
        metavar="N",
        help="connections served at once; a request on one more gets 503 (default 1000)",
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
        "digest, basic_digest; or any (Basic and Digest MD5 and SHA-256 everywhere) "
        "(default recommended)",
    )
    serve.add_argument(
        "--access-log",
        choices=["on", "off"],
        default="off",
        help="on: the access log (accesslog.cgi) also records successful requests, as "
        "System.AccessLog=On on a device; off (as devices): failed logins only "
        "(default off)",
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
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="what the service logs to stderr (default info)",
    )
    cli_faults.add_arguments(serve)
