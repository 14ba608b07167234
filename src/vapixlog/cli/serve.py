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
from vapixlog.cli import faults as cli_faults
from vapixlog.cli import serve_options
from vapixlog.cli.serve_options import add_arguments
from vapixlog.cli.users import announce_state_dir, open_users, register_realms
from vapixlog.syslog.system_log import LogLimits

if TYPE_CHECKING:
    from vapixlog.device import DeviceConfig
    from vapixlog.server import DeviceServer
    from vapixlog.tls import TlsFiles


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the device service",
        description="Run one emulated Axis device (or --devices N of them) until Ctrl-C.",
    )
    add_arguments(serve)
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
    if args.persistent_max_size < args.persistent_file_size:
        cap, unit = map(
            serve_options.size_text, (args.persistent_max_size, args.persistent_file_size)
        )
        print(
            f"vapixlog: --persistent-max-size ({cap}) must be at least "
            f"--persistent-file-size ({unit})",
            file=sys.stderr,
        )
        return 2
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
    profiles = serve_options.profiles(args)
    if isinstance(profiles, str):
        print(f"vapixlog: {profiles}", file=sys.stderr)
        return 2
    addresses = _addresses(args)
    if isinstance(addresses, str):
        print(f"vapixlog: {addresses}", file=sys.stderr)
        return 2
    if addresses:
        problem = next(
            (p for a in addresses if (p := _cannot_listen(a, range(args.port, args.port + 1)))),
            None,
        )
    else:
        problem = _cannot_listen(args.host, range(args.port, args.port + args.devices))
    if problem:
        print(f"vapixlog: {problem}", file=sys.stderr)
        return 1
    if args.tls_cert is not None:  # checked before any state is created, as the ports
        from vapixlog import tls as tls_files

        try:
            tls_files.load_pair(args.tls_cert, args.tls_key)
        except TlsError as exc:
            print(f"vapixlog: TLS: {exc}", file=sys.stderr)
            return 1
    state_dir = announce_state_dir(args.state_dir)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        probe = state_dir / ".vapixlog-write-test"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        print(f"vapixlog: cannot use state dir {state_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if args.devices > 1 and args.log_level == "info":
        # Not uvicorn's four start-up lines per device: `_write_fleet_file` says it in one.
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
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
    admin_password = os.environ.get("VAPIXLOG_ADMIN_PASSWORD")
    existing = not users.is_empty
    if admin_password and existing and users.verify_password("root", admin_password) is None:
        print(
            f"vapixlog: warning: VAPIXLOG_ADMIN_PASSWORD is ignored: {state_dir} has users "
            "already, and it only sets root's password on the first start; root keeps "
            f"its password. Change it with: vapixlog users add root --role admin "
            f"--state-dir {state_dir}",
            file=sys.stderr,
            flush=True,
        )
    password = ensure_admin(users, admin_password)
    if password:
        print(
            f"Created user 'root' (admin) with password: {password}\n"
            "It is shown only this once; change it with: "
            f"vapixlog users add root --role admin --state-dir {state_dir}",
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
        control=args.control,
    )
    per_device_tls = bool(addresses and args.tls_self_signed)  # each names its own address
    if per_device_tls:
        print("TLS: a self-signed certificate per device, naming its address", flush=True)
    elif tls:
        print(f"TLS certificate {tls.certfile}, SHA-256 fingerprint {tls.fingerprint}", flush=True)
    servers = [
        DeviceServer(
            config,
            users,
            port=args.port if addresses else args.port + index,
            options=options,
            faults=cli_faults.plan(args),
            host=addresses[index] if addresses else None,
            tls=_device_tls(config, addresses[index]) if per_device_tls else None,
        )
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


def _cannot_listen(host: str, ports: range) -> str | None:
    """Why the service could not listen on these ports (one in use, a bad address), found
    before any state is created or a password printed; None when all are free."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"cannot listen on {host!r}: {exc.strerror or exc}"
    family, _, _, _, address = infos[0]
    busy: list[int] = []
    for port in ports:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn
            try:
                sock.bind((address[0], port, *address[2:]))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    return f"cannot listen on {host} port {port}: {exc.strerror or exc}"
                busy.append(port)
    if not busy:
        return None
    which = f"port {busy[0]}" if len(busy) == 1 else f"ports {', '.join(map(str, busy[:5]))}"
    more = f" and {len(busy) - 5} more" if len(busy) > 5 else ""
    return (
        f"{which}{more} on {host} already in use (another vapixlog serve?); "
        "stop it or choose another --port"
    )


def _write_fleet_file(path: Path, servers: list[DeviceServer], https: bool) -> None:
    """The devices' URLs, one a line: what `vapixlog capture --devices-file` reads."""
    scheme = "https" if https else "http"

    def url(server: DeviceServer) -> str:
        host = "127.0.0.1" if server.host in ("0.0.0.0", "") else server.host
        return f"{scheme}://{host}:{server.port}"

    lines = [url(server) for server in servers]
    path.write_text("\n".join(lines) + "\n")
    where = (
        f"on {servers[0].host}..{servers[-1].host} port {servers[0].port}"
        if servers[0].host != servers[-1].host
        else f"on ports {servers[0].port}..{servers[-1].port}"
    )
    print(f"{len(servers)} devices {where}; their URLs are in {path}", flush=True)


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


def _addresses(args: argparse.Namespace) -> list[str] | str:
    """`--address-per-device`: each device's loopback address (an empty list without it);
    a message when the option cannot apply."""
    from vapixlog.server import fleet_addresses

    if not args.address_per_device:
        return []
    if args.host not in ("127.0.0.1", "localhost"):
        return "--address-per-device gives loopback addresses (127.1.0.1, ...): leave --host out"
    return fleet_addresses(args.devices)


def _device_tls(config: DeviceConfig, address: str) -> tuple[str, str]:
    """A self-signed certificate per device, naming its own address (DECISIONS 14)."""
    from vapixlog import tls
    from vapixlog.device import Identity

    identity = Identity.load_or_create(
        config.state_dir / "identity.json", serial=config.serial, hostname=config.hostname
    )
    files = tls.self_signed(config.state_dir / "tls", identity.hostname, address)
    return str(files.certfile), str(files.keyfile)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # uvloop is optional (not on every platform)
        return None
    return uvloop.new_event_loop
