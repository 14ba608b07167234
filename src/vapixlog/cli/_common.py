"""What the client commands share: the device and credential options, the fleet options,
reading a devices file, and running a command so that every failure is one line.

Nothing here (nor in the command modules) imports the client at module level: httpx and
rich are imported only when a client command runs, and `vapixlog serve` does not pay for
them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vapixlog.severity import Severity

if TYPE_CHECKING:
    from vapixlog.client import Client, VapixError

DEFAULT_CONCURRENCY = 32
Handler = Callable[[argparse.Namespace], int]


def severity(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid severity {text!r}; use 0..7 or a name such as info, warning, err"
        ) from None


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return int(text)


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def device_options(*, fleet: bool = False) -> argparse.ArgumentParser:
    """The parent parser of every client command: --device and the credentials; `fleet`:
    --device repeats."""
    device = argparse.ArgumentParser(add_help=False)
    group = device.add_argument_group("device and credentials")
    group.add_argument(
        "--device",
        action="append",
        metavar="URL",
        help="a device, e.g. https://192.168.0.90; repeat it for more devices (default: "
        "$VAPIXLOG_DEVICE)"
        if fleet
        else "the device, e.g. https://192.168.0.90 (default: $VAPIXLOG_DEVICE)",
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
        "--timeout", type=seconds, default=30.0, metavar="SECONDS", help="per request"
    )
    group.add_argument(
        "--quiet", "-q", action="store_true", help="print nothing on success but the results"
    )
    group.add_argument(
        "--report-timeout",
        type=seconds,
        default=300.0,
        metavar="SECONDS",
        help="how long a server report may take to arrive (default 300: real devices take "
        "about 30 s)",
    )
    return device


def wait_options() -> argparse.ArgumentParser:
    """The parent parser of the commands that wait for a reboot."""
    wait = argparse.ArgumentParser(add_help=False)
    wait.add_argument(
        "--wait-timeout",
        type=seconds,
        default=300.0,
        metavar="SECONDS",
        help="how long a device may take to come back from its reboot (default 300)",
    )
    return wait


def add_fleet_options(parser: argparse.ArgumentParser) -> None:
    """--devices-file and --concurrency, for a command that runs on a fleet."""
    parser.add_argument(
        "--devices-file", type=Path, metavar="FILE", help="device URLs, one a line ('#' comments)"
    )
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"devices at once (default {DEFAULT_CONCURRENCY})",
    )


def client_command(parser: argparse.ArgumentParser, handler: Handler) -> None:
    """Make `parser` run `handler` through `run` (one-line failures)."""
    parser.set_defaults(handler=lambda args: run(args, handler))


def run(args: argparse.Namespace, handler: Handler) -> int:
    """Run a client command; every failure is one `vapixlog: ...` line on stderr, exit 1
    (2 for bad arguments)."""
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout closed early (`vapixlog syslog | head`): not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        return report_failure(args, exc)


def report_failure(args: argparse.Namespace, exc: BaseException) -> int:
    """Print what went wrong as one line and return the exit code: 2 for bad arguments
    (`ValueError`), else 1."""
    from vapixlog.client import AuthenticationError, TlsError, VapixError

    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]  # the one failure inside a task group
    if isinstance(exc, AuthenticationError):
        fail(_authentication_failed(args, exc))
        return 1
    if isinstance(exc, TlsError):
        fail(f"{exc}; {tls_hint(exc)}")
        return 1
    if isinstance(exc, VapixError):
        fail(str(exc))
        return 1
    if isinstance(exc, ValueError):
        fail(str(exc))
        return 2
    if isinstance(exc, OSError):
        fail(f"{exc.filename}: {exc.strerror or exc}" if exc.filename else str(exc))
        return 1
    fail(f"{type(exc).__name__}: {exc}")
    return 1


def _authentication_failed(args: argparse.Namespace, exc: VapixError) -> str:
    """A 401, with the URL, the user, and whether a password was given at all."""
    user = connection(args)["user"]
    where = exc.url or ", ".join(args.device or []) or os.environ.get("VAPIXLOG_DEVICE", "")
    where = where.split("/axis-cgi/")[0].split("/config/")[0]
    if not connection(args)["password"]:
        why = "no password given (use --password or set VAPIXLOG_PASSWORD)"
    else:
        why = "wrong user name or password"
    details = ", ".join(
        f"{name} {value}" for name, value in (("HTTP", exc.status), ("code", exc.code)) if value
    )
    return f"{where}: authentication failed for user {user!r}: {why}" + (
        f" ({details})" if details else ""
    )


def tls_hint(exc: BaseException) -> str:
    """How to get past a TLS failure, with the options of the client commands."""
    from vapixlog.client import CertificatePinError

    if isinstance(exc, CertificatePinError):
        return "check the fingerprint given to --pin-sha256 (serve prints its own at start)"
    if "plain HTTP" in str(exc):
        return "use an http:// URL for this port"
    return (
        "trust the device's certificate with --ca-file PEM, or pin it with --pin-sha256 "
        "FINGERPRINT, or skip the check with --insecure (only on a network you trust)"
    )


def fail(message: str) -> None:
    print(f"vapixlog: {message}", file=sys.stderr, flush=True)


def connection(args: argparse.Namespace) -> dict[str, Any]:
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


def one_device(args: argparse.Namespace) -> str:
    devices = args.device or []
    if len(devices) > 1:
        raise ValueError(f"{args.command} takes one --device")
    url = devices[0] if devices else os.environ.get("VAPIXLOG_DEVICE")
    if not url:
        raise ValueError("no device: give --device URL or set VAPIXLOG_DEVICE")
    return url


def open_client(args: argparse.Namespace) -> Client:
    from vapixlog.client import Client

    return Client(one_device(args), **connection(args))


def fleet_urls(args: argparse.Namespace) -> list[str]:
    urls = list(args.device or [])
    if args.devices_file is not None:
        try:
            text = args.devices_file.read_text()
        except OSError as exc:
            raise ValueError(f"--devices-file {args.devices_file}: {exc.strerror or exc}") from None
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                urls.append(line)
    if not urls and args.devices_file is None and os.environ.get("VAPIXLOG_DEVICE"):
        urls.append(os.environ["VAPIXLOG_DEVICE"])
    if not urls:
        raise ValueError("no devices: give --device URL ... or --devices-file FILE")
    from vapixlog.client import normalize_url

    # A device listed twice (`http://10.0.0.5/`, `10.0.0.5`) is captured once.
    return list(dict.fromkeys(normalize_url(url) for url in urls))
