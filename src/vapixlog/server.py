"""Serving a device over HTTP: one uvicorn server per device, reboots, and process signals.

A reboot is the path of a real device, in-process: the reply goes out, the server stops
accepting connections and shuts the device down (shutdown entries, journal written out),
the address refuses connections for `reboot_downtime` seconds, then a new `Device` starts
through the cold-start path (journal recovery, new boot id) on the same address. The device's
reboot faults (`vapixlog.faults`) change that: a downtime of their own, a device that never
comes back, or a new boot with the old boot id.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import resource
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from vapixlog.app import create_app
from vapixlog.auth import UserStore
from vapixlog.auth.policy import AuthPolicy
from vapixlog.auth.users import device_realm
from vapixlog.device import Device, DeviceConfig, Identity
from vapixlog.faults import FaultPlan, RebootFaults
from vapixlog.profiles import FirmwareProfile, default_profile
from vapixlog.protocol import DEFAULT_REQUEST_TIMEOUT, http_protocol
from vapixlog.ratelimit import Rate
from vapixlog.severity import Severity
from vapixlog.syslog.system_log import LogLimits
from vapixlog.uvicorn_server import DeviceUvicornServer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    max_body: int = 64 << 10
    reboot_downtime: float = 2.0
    reboot_command: str | None = None  # on real hardware: run this instead of emulating
    tls_certfile: str | None = None  # PEM files; both set: serve HTTPS
    tls_keyfile: str | None = None
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT  # a whole request must arrive within
    max_connections: int = 1000  # served at once; a request on one more gets 503
    max_connections_per_address: int | None = None  # None: 512, at most 3/4 of max_connections
    trusted_proxies: tuple[str, ...] = ()  # addresses whose X-Forwarded-For is believed
    auth_policy: AuthPolicy = AuthPolicy.RECOMMENDED  # which schemes are offered
    # Block guessing addresses (else: throttle); None: as the device's firmware profile
    # (on by default from AXIS OS 11.5).
    brute_force_protection: bool | None = None
    control: bool = False  # the admin-only fault control endpoint (`serve --control`)


class DeviceServer:
    """One device on one port, across its reboots."""

    def __init__(
        self,
        config: DeviceConfig,
        users: UserStore,
        *,
        port: int,
        options: ServeOptions,
        faults: FaultPlan | None = None,
        host: str | None = None,
        tls: tuple[str, str] | None = None,
    ) -> None:
        """`host` and `tls` (certificate, key) override the options' for this device (a
        fleet with an address per device)."""
        self.config = config
        self.host = host or options.host
        self._tls = tls or (
            (options.tls_certfile, options.tls_keyfile)
            if options.tls_certfile and options.tls_keyfile
            else None
        )
        # Kept across reboots; None (no faults, no --control): no fault layer at all.
        self.faults = faults if faults is not None or not options.control else FaultPlan()
        self.users = users
        self.port = port
        self.options = options
        self.device: Device | None = None
        self._server: DeviceUvicornServer | None = None
        self._stopping = asyncio.Event()
        self._reboot_pending = False
        self._reboot_faults = RebootFaults()

    async def run(self) -> None:
        """Serve until `stop`, cold-starting the device again after every reboot."""
        while not self._stopping.is_set():
            previous = self.device
            self.device = Device(self.config)
            if previous is not None and self._reboot_faults.keep_boot_id:
                self.device.inherited_boot_id = previous.boot_id
            # Each device challenges with its own realm, as real ones (`serve` registered
            # them all before the first start; this only writes for a changed serial).
            realm = device_realm(self.device.identity.serial)
            self.users.add_realms([realm])
            app = create_app(
                self.device,
                self.users,
                realm=realm,
                max_body=self.options.max_body,
                power=self,
                trusted_proxies=self.options.trusted_proxies,
                auth_policy=self.options.auth_policy,
                https=self._tls is not None,
                brute_force_protection=self._brute_force_protection(),
                faults=self.faults,
                control=self.options.control,
            )
            config = uvicorn.Config(
                app,
                host=self.host,
                port=self.port,
                log_config=None,
                access_log=False,
                # Client addresses come from the socket (see vapixlog.edge.clientaddr).
                proxy_headers=False,
                server_header=False,  # no `server: uvicorn` (docs/fidelity.md)
                timeout_graceful_shutdown=5,
                http=http_protocol(
                    self.options.request_timeout,
                    max_connections=self.options.max_connections,
                    max_per_address=self.options.max_connections_per_address,
                ),
                # uvicorn counts the connection being checked too: N + 1 serves N at once.
                limit_concurrency=self.options.max_connections + 1,
                ssl_certfile=self._tls[0] if self._tls else None,
                ssl_keyfile=self._tls[1] if self._tls else None,
            )
            self._server = DeviceUvicornServer(config)
            await self._server.serve()
            if not self._reboot_pending:
                return
            # Down: the listening socket is closed, so connections are refused meanwhile.
            self._reboot_faults = self.faults.reboot() if self.faults else RebootFaults()
            downtime = self._reboot_faults.downtime
            if downtime is None:
                downtime = self.options.reboot_downtime
            with contextlib.suppress(TimeoutError):  # a reboot that hangs: until `stop`
                await asyncio.wait_for(
                    self._stopping.wait(), None if downtime == float("inf") else downtime
                )
            self._reboot_pending = False

    def _brute_force_protection(self) -> bool:
        chosen = self.options.brute_force_protection
        return self.config.profile.brute_force_default if chosen is None else chosen

    def stop(self, *, force: bool = False) -> None:
        self._stopping.set()
        if self._server is not None:
            self._end_live_streams("shutdown")
            self._server.should_exit = True
            self._server.force_exit = force

    # The power interface used by firmwaremanagement.cgi.
    def request_reboot(self) -> bool:
        """Claim the reboot; False when one is already under way."""
        if self._reboot_pending or self._stopping.is_set():
            return False
        self._reboot_pending = True
        return True

    async def reboot(self) -> None:
        """Carry out a claimed reboot; called once the reply has been sent."""
        if self.options.reboot_command:
            await self._run_reboot_command(self.options.reboot_command)
        elif self._server is not None:
            self._end_live_streams("reboot")
            self._server.should_exit = True

    def _end_live_streams(self, reason: str) -> None:
        """End the log page's live streams now: uvicorn waits for open responses to finish
        before the device stops, and an event stream would otherwise never finish."""
        syslog = getattr(self.device, "syslog", None)  # None before the device started
        if syslog is not None:
            syslog.end_subscriptions(reason)

    async def _run_reboot_command(self, command: str) -> None:
        assert self.device is not None
        self.device.syslog.log(Severity.NOTICE, f"rebooting with: {command}")
        await self.device.syslog.flush()
        process = await asyncio.create_subprocess_shell(command)
        code = await process.wait()
        # Still running: the command did not take the machine down.
        self._reboot_pending = False
        self.device.cancel_reboot()
        if code != 0:
            self.device.syslog.log(Severity.ERROR, f"reboot command failed with exit code {code}")


def device_configs(
    state_dir: Path,
    count: int,
    *,
    serial: str | None,
    hostname: str | None,
    limits: LogLimits,
    rate_limit: Rate | None,
    systemready_version: str | None = None,
    profiles: Sequence[FirmwareProfile] = (),
    report_delay: float = 0.0,
    remote_syslog_ca: Path | None = None,
    access_log: bool = False,
) -> list[DeviceConfig]:
    """One device uses the state dir itself; several use `devices/NNNN/` below it, each with
    its own identity, settings, boot sessions and logs (the users at the top apply to all).
    A given serial or hostname is the first device's; the others count up from it.
    `profiles`: each device's firmware profile, in order (empty: the default profile);
    `systemready_version` overrides the profiles' systemready.cgi version."""
    make = functools.partial(
        DeviceConfig,
        limits=limits,
        rate_limit=rate_limit,
        systemready_override=systemready_version,
        report_delay=report_delay,
        remote_syslog_ca=remote_syslog_ca,
        access_log=access_log,
    )
    if count == 1:
        return [make(state_dir, serial, hostname, profile=_profile_of(profiles, 0))]
    return [
        make(
            state_dir / "devices" / f"{index:04d}",
            f"{int(serial, 16) + index:012X}" if serial else None,
            f"{hostname}-{index}" if hostname else None,
            profile=_profile_of(profiles, index),
        )
        for index in range(count)
    ]


def device_realms(configs: Sequence[DeviceConfig]) -> list[str]:
    """Every device's realm, `AXIS_<serial>`, creating identities not made yet (a small
    file each, a serial no other device of the fleet has): the user store must know them
    all before users are added or log in."""
    paths = [config.state_dir / "identity.json" for config in configs]
    made = {  # the devices that have an identity already, first: their serials are taken
        index: Identity.load_or_create(path, serial=config.serial, hostname=config.hostname)
        for index, (config, path) in enumerate(zip(configs, paths, strict=True))
        if path.exists()
    }
    taken = {identity.serial for identity in made.values()}
    realms = []
    for index, (config, path) in enumerate(zip(configs, paths, strict=True)):
        identity = made.get(index)
        if identity is None:
            config.state_dir.mkdir(parents=True, exist_ok=True)
            identity = Identity.load_or_create(
                path, serial=config.serial, hostname=config.hostname, taken=taken
            )
            taken.add(identity.serial)
        realms.append(device_realm(identity.serial))
    return realms


def _profile_of(profiles: Sequence[FirmwareProfile], index: int) -> FirmwareProfile:
    """Device `index`'s firmware profile; none given: the default one."""
    return profiles[index] if profiles else default_profile()


def fleet_addresses(count: int, first: str = "127.1.0.1") -> list[str]:
    """One loopback address per device (DECISIONS 14), counting up from `first` and
    skipping addresses that end in .0 or .255 (a network's or a broadcast's elsewhere)."""
    addresses: list[str] = []
    current = ipaddress.IPv4Address(first)
    while len(addresses) < count:
        if current not in _LOOPBACK:
            raise ValueError(f"{count} devices do not fit in 127.0.0.0/8 from {first}")
        if current.packed[3] not in (0, 255):
            addresses.append(str(current))
        current += 1
    return addresses


_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


def raise_open_files_limit(needed: int) -> None:
    """Many devices need many descriptors (a listening socket, log files, connections)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))


async def serve(servers: Sequence[DeviceServer]) -> None:
    """Run every device server until SIGTERM or SIGINT (a second one forces the exit)."""
    loop = asyncio.get_running_loop()
    signals_seen = 0

    def on_signal() -> None:
        nonlocal signals_seen
        signals_seen += 1
        for server in servers:
            server.stop(force=signals_seen > 1)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        await asyncio.gather(*(server.run() for server in servers))
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
