"""One emulated Axis device: identity, state dir, boot sessions and the system log.

`start` is the cold-start path (journal recovery, boot entries) and `stop` the orderly
shutdown; a reboot is `stop` followed by `start`. State-changing operations write audit
entries that name who did it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import time
import uuid
from collections.abc import Container
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson

from vapixlog.auth.users import Role
from vapixlog.files import write_atomic
from vapixlog.forward.service import RemoteSyslog, install_ca
from vapixlog.profiles import FirmwareProfile, default_profile
from vapixlog.ratelimit import DEFAULT_WRITE_RATE, Rate, WriteLimiter
from vapixlog.severity import Severity
from vapixlog.syslog import audit as events
from vapixlog.syslog.access import DEFAULT_MAX_ENTRIES, UNKNOWN_USER, AccessLog
from vapixlog.syslog.audit import AuditLimits, AuditLog
from vapixlog.syslog.system_log import AUDIT_TAG, LogLimits, SystemLog

_log = logging.getLogger(__name__)
AXIS_OUI = "ACCC8E"  # the MAC prefix of Axis devices; serials are the MAC in hex
# The Log API's settings as audit entries name them (`<api>.v<N>.<path>`, audit-log.md §4).
PERSISTENT_SETTING = "log.v1.persistent.enabled"
CLEAR_ACTION = "log.v1.persistent.clearLog"
LOGIN_AUDIT_SECONDS = 300.0
ACCOUNTS_FILE = "accounts.json"  # the user accounts as the audit last saw them
_MAX_LOGINS_KEPT = 10_000


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, orjson.dumps(data, option=orjson.OPT_INDENT_2))


def _load_accounts(path: Path) -> dict[str, tuple[Role, str]]:
    """What `Device.audit_accounts` saved; entries it cannot read count as absent."""
    accounts = {}
    for name, value in _read_json(path).items():
        if isinstance(value, list) and len(value) == 2 and isinstance(value[1], str):
            with contextlib.suppress(ValueError):
                accounts[name] = (Role(value[0]), value[1])
    return accounts


@dataclass(frozen=True)
class Identity:
    serial: str  # 12 upper-case hex digits, as the MAC address
    hostname: str

    @classmethod
    def load_or_create(
        cls,
        path: Path,
        *,
        serial: str | None,
        hostname: str | None,
        taken: Container[str] = (),
    ) -> Identity:
        """The identity kept in the state dir; flags given on the command line override it.
        A new serial is random, and none of `taken` (the fleet's other devices')."""
        stored = _read_json(path)
        serial = (serial or stored.get("serial") or _new_serial(taken)).upper()
        identity = cls(serial, hostname or stored.get("hostname") or f"axis-{serial.lower()}")
        if stored != {"serial": identity.serial, "hostname": identity.hostname}:
            _write_json(path, {"serial": identity.serial, "hostname": identity.hostname})
        return identity


def _new_serial(taken: Container[str]) -> str:
    # 24 random bits: 10,000 devices would share a few serials without the check.
    while (serial := AXIS_OUI + secrets.token_hex(3).upper()) in taken:
        pass
    return serial


@dataclass
class Lifetime:
    """The device's lifetime statistics, kept across boots in `lifetime.json` (the server
    report shows them): every start, and every requested reboot (any CGI)."""

    boots: int = 0
    restarts: int = 0

    @classmethod
    def load(cls, path: Path) -> Lifetime:
        stored = _read_json(path)
        counts = [stored.get(name) for name in ("boots", "restarts")]
        return cls(*(n if isinstance(n, int) and n >= 0 else 0 for n in counts))

    def save(self, path: Path) -> None:
        _write_json(path, {"boots": self.boots, "restarts": self.restarts})


@dataclass(frozen=True)
class DeviceConfig:
    state_dir: Path
    serial: str | None = None
    hostname: str | None = None
    limits: LogLimits = field(default_factory=LogLimits)
    rate_limit: Rate | None = DEFAULT_WRITE_RATE  # writeMessage per (user, address)
    # What differs between AXIS OS versions (paths, methods, CGIs); 12.11.77 by default.
    profile: FirmwareProfile = field(default_factory=default_profile)
    systemready_override: str | None = None  # `serve --systemready-version`, else the profile's
    report_delay: float = 0.0  # seconds serverreport.cgi waits before its body (after headers)
    remote_syslog_ca: Path | None = None  # `serve --remote-syslog-ca`: copied into the state dir
    access_log: bool = False  # `serve --access-log on`: successful requests too (failures always)
    access_log_entries: int = DEFAULT_MAX_ENTRIES  # the access log's bound, in entries
    audit_limits: AuditLimits = field(default_factory=AuditLimits)  # AXIS OS 12.5+ only

    @property
    def systemready_version(self) -> str:
        """What systemready.cgi answers (1.2, 1.4 or 1.5)."""
        return self.systemready_override or self.profile.systemready_version


@functools.cache
def _firmware() -> str:
    """What the device says it runs (read once: package metadata takes a millisecond)."""
    return f"vapixlog {version('vapixlog')}"


class Device:
    def __init__(self, config: DeviceConfig) -> None:
        self.config = config
        self.state_dir = config.state_dir
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.identity = Identity.load_or_create(
            self.state_dir / "identity.json", serial=config.serial, hostname=config.hostname
        )
        self.firmware = _firmware()
        self.firmware_version = config.profile.version  # the AXIS OS version it claims
        self.firmware_part = "vapixlog"  # a device's product part number; ours names us
        self.reset_source = "poweron"  # why the previous boot ended: poweron, reboot, crash
        self.boot_id = ""
        self.inherited_boot_id: str | None = None  # a reboot fault: the new boot keeps it
        self.started_at = 0.0
        self._settings_path = self.state_dir / "settings.json"
        self._boot_path = self.state_dir / "boot.json"
        self._lifetime_path = self.state_dir / "lifetime.json"
        self.lifetime = Lifetime()
        self._state_lock = asyncio.Lock()
        self._stop_reason = "shutdown"
        self.syslog: SystemLog
        self.write_limiter: WriteLimiter
        self.remote_syslog: RemoteSyslog
        self.audit_log: AuditLog | None = None  # AXIS OS 12.5+: audit events go there
        self._logins: dict[tuple[str, str], float] = {}  # (user, address) -> last audited
        # In memory, per boot: a reboot starts a new Device, so the log starts empty.
        self.access_log = AccessLog(
            hostname=self.identity.hostname,
            successes=config.access_log,
            max_entries=config.access_log_entries,
        )

    async def start(self) -> None:
        """Cold start: recover the persistent log, begin a boot session, log the boot."""
        previous = _read_json(self._boot_path)
        # A UUID, as systemready.cgi's `bootid` on devices.
        self.boot_id = self.inherited_boot_id or str(uuid.uuid4())
        self.started_at = asyncio.get_running_loop().time()
        self.lifetime = Lifetime.load(self._lifetime_path)
        self.lifetime.boots += 1  # every start counts, crashes and power losses too
        try:  # a full disk must not keep the device from booting
            _write_json(self._boot_path, {"boot_id": self.boot_id, "clean_shutdown": False})
            self.lifetime.save(self._lifetime_path)
            boot_error: OSError | None = None
        except OSError as error:
            boot_error = error
        settings = _read_json(self._settings_path)
        self.syslog = SystemLog(
            hostname=self.identity.hostname,
            boot_id=self.boot_id,
            log_dir=self.state_dir / "log",
            limits=self.config.limits,
        )
        self.syslog.open(persistent_enabled=settings.get("persistent_enabled") is True)
        if self.config.profile.audit_log:
            self.audit_log = AuditLog(
                self.state_dir,
                hostname=self.identity.hostname,
                notify=self.syslog.log,
                limits=self.config.audit_limits,
            )
            self.audit_log.open()
            self.audit_log.log(events.STARTED)
        self._start_remote_syslog()
        self.write_limiter = WriteLimiter(self.config.rate_limit, report=self._warn)
        self.syslog.log(
            Severity.NOTICE,
            f"{self.firmware} starting on {self.identity.hostname} "
            f"(serial {self.identity.serial}), boot {self.boot_id}",
        )
        if not previous.get("boot_id"):
            self.reset_source = "poweron"
        elif not previous.get("clean_shutdown"):
            self.reset_source = "crash"
        else:
            self.reset_source = "reboot" if previous.get("reason") == "reboot" else "poweron"
        if previous_id := previous.get("boot_id"):
            if previous.get("clean_shutdown"):
                self.syslog.log(Severity.INFO, f"previous boot {previous_id} shut down cleanly")
            else:
                self.syslog.log(
                    Severity.WARNING,
                    f"previous boot {previous_id} ended without a clean shutdown "
                    "(crash or power loss)",
                )
        state = "on" if self.syslog.persistent_enabled else "off"
        self.syslog.log(Severity.INFO, f"persistent logging is {state}")
        if boot_error is not None:
            self.syslog.log(
                Severity.WARNING,
                f"cannot record this boot in {self._boot_path.name}: {boot_error}; "
                "the next boot cannot tell how this one ended",
            )

    def _start_remote_syslog(self) -> None:
        """Forwarding starts as soon as the log is open: the boot's entries go out too."""
        ca_error: OSError | None = None
        if self.config.remote_syslog_ca is not None:
            try:
                install_ca(self.config.remote_syslog_ca, self.state_dir)
            except OSError as error:
                ca_error = error
        self.remote_syslog = RemoteSyslog(
            self.syslog, self.state_dir, audit=self.audit, audit_log=self.audit_log
        )
        self.remote_syslog.start()
        if ca_error is not None:  # the copy from an earlier start, if any, still applies
            self._warn(f"remote syslog: cannot install the CA certificates: {ca_error}")

    def unavailable_reason(self) -> str | None:
        """Why the device cannot serve API calls now: it is going down for a reboot."""
        return "the device is rebooting" if self._stop_reason == "reboot" else None

    async def prepare_reboot(self, *, actor: str) -> None:
        """Audit a reboot request; the shutdown that follows is logged as a reboot, and API
        calls meanwhile answer 503 (code 10)."""
        self._stop_reason = "reboot"
        self.lifetime.restarts += 1
        try:
            await asyncio.to_thread(self.lifetime.save, self._lifetime_path)
        except OSError as error:
            self._warn(f"cannot count this restart in {self._lifetime_path.name}: {error}")
        await self.audit(events.restart(actor))

    def cancel_reboot(self) -> None:
        """The reboot did not happen (a failed `--reboot-command`): serve again."""
        self._stop_reason = "shutdown"

    async def stop(self) -> None:
        """Orderly shutdown: log it, write out the journal, mark the boot as ended cleanly."""
        self.write_limiter.close()  # pending "suppressed N messages" entries
        self.syslog.log(
            Severity.NOTICE, f"{self._stop_reason}: ending boot {self.boot_id}, shutting down"
        )
        await self.remote_syslog.stop()  # after the shutdown entry, which it may forward
        if self.audit_log is not None:
            await self.audit_log.close()
        await self.syslog.close()
        try:
            ended = {"boot_id": self.boot_id, "clean_shutdown": True, "reason": self._stop_reason}
            _write_json(self._boot_path, ended)
        except OSError as error:  # e.g. a full disk: the shutdown itself still succeeds
            _log.warning("cannot record the clean shutdown in %s: %s", self._boot_path, error)

    def uptime(self) -> float:
        return asyncio.get_running_loop().time() - self.started_at

    async def set_persistent(self, enabled: bool, *, actor: str) -> str | None:
        """Turn persistent logging on or off; a warning when the setting was not saved."""
        async with self._state_lock:
            if enabled == self.syslog.persistent_enabled:
                return None
            if enabled:
                warning = await self._try_save_settings(enabled)
                await self.syslog.set_persistent(True)
                await self.audit(events.configured(actor, PERSISTENT_SETTING, "true"))
            else:
                # Audited first, so the persistent log itself records where it stops.
                await self.audit(events.configured(actor, PERSISTENT_SETTING, "false"))
                await self.syslog.set_persistent(False)
                warning = await self._try_save_settings(enabled)
            return warning

    async def _try_save_settings(self, enabled: bool) -> str | None:
        """Save the setting; on a full disk (or any I/O error) it applies until the restart."""
        try:
            await asyncio.to_thread(self._save_settings, enabled)
        except OSError as error:
            warning = (
                f"the setting could not be saved ({error.strerror or error}); "
                "it applies until the next restart"
            )
            self.syslog.log(Severity.WARNING, f"persistent logging setting not saved: {warning}")
            return warning
        return None

    async def clear_persistent_log(self, *, actor: str) -> None:
        async with self._state_lock:
            await self.syslog.clear_persistent()
            await self.audit(events.configured(actor, CLEAR_ACTION, "{}"))

    async def audit(self, message: str, *, process: str = events.PROCESS) -> None:
        """An audit event (wording: `vapixlog.syslog.audit`), durable when this returns: in
        the audit log on AXIS OS 12.5+, else a NOTICE entry tagged `audit` in the system log
        (on disk only while persistent logging is on)."""
        if self.audit_log is None:
            await self.syslog.write(Severity.NOTICE, message, tag=AUDIT_TAG)
        elif not await self.audit_log.write(message, process=process):
            self._warn(f"audit entry not stored: {message}")

    def audit_now(self, message: str, *, process: str = events.PROCESS) -> None:
        """`audit` for callers that cannot wait (the authentication layer)."""
        if self.audit_log is None:
            self.syslog.log(Severity.NOTICE, message, tag=AUDIT_TAG)
        else:
            self.audit_log.log(message, process=process)

    def audit_warning(self, message: str) -> None:
        self.syslog.log(Severity.WARNING, message, tag=AUDIT_TAG)

    def _warn(self, message: str) -> None:
        self.syslog.log(Severity.WARNING, message)

    def audit_block(self, client: str, port: int) -> None:
        """Brute-force protection blocked `client`: the lines a device writes (Apache's
        mod_evasive in the system log, the remediation in the audit log)."""
        self.syslog.log(
            Severity.WARNING,
            f"[evasive20:warn] [client {client}:{port}] {self.config.profile.block_word} "
            f"address {client}: "
            "possible DoS attack.",
            tag="httpd",
        )
        self.audit_now(events.firewall_blocked(client))

    def audit_login(self, user: str | None, client: str, *, ok: bool) -> None:
        """A login with a password; `user` None: a name the device does not know, never
        written as sent (DECISIONS 20). A success is audited once per user and address in
        `LOGIN_AUDIT_SECONDS` (DECISIONS 6): every request carries the credentials again."""
        if ok and user is not None:
            now = time.monotonic()
            key = (user, client)
            if now - self._logins.get(key, -LOGIN_AUDIT_SECONDS) < LOGIN_AUDIT_SECONDS:
                return
            if len(self._logins) >= _MAX_LOGINS_KEPT:
                self._logins.clear()  # a bound, not a cache policy: at worst one more entry
            self._logins[key] = now
        who = events.actor(user or UNKNOWN_USER, client)
        self.audit_now(events.authentication(who, ok=ok), process=events.HTTP_PROCESS)

    def audit_accounts(self, accounts: dict[str, tuple[Role, str]]) -> None:
        """Audit what changed in the user accounts since the device last looked (name ->
        role and password fingerprint, kept in `accounts.json`): users are managed with
        `vapixlog users`, locally, so the entries name no actor."""
        path = self.state_dir / ACCOUNTS_FILE
        known = _load_accounts(path)
        for name in sorted(known.keys() | accounts.keys()):
            before, after = known.get(name), accounts.get(name)
            if before is None and after is not None:
                self.audit_now(events.account_change("created", name, after[0]))
            elif after is None and before is not None:
                self.audit_now(events.account_change("deleted", name, before[0]))
            elif before is not None and after is not None:
                if before[0] != after[0]:
                    self.audit_now(events.account_change("changed", name, after[0]))
                if before[1] != after[1]:
                    self.audit_now(events.account_change("changed", name, "Password Update"))
        if accounts != known:
            try:
                _write_json(path, {name: [role.value, fp] for name, (role, fp) in accounts.items()})
            except OSError as error:  # the next look audits the same changes again
                self._warn(f"cannot record the user accounts in {path.name}: {error}")

    def _save_settings(self, persistent_enabled: bool) -> None:
        _write_json(self._settings_path, {"persistent_enabled": persistent_enabled})
