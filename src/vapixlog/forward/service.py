"""The remote syslog of one device: its stored settings, one `Sender` per server, `test`.

Started with the device (after its log opens, so the boot's own entries are forwarded too)
and stopped with it (after the shutdown entry, which gets up to `FLUSH` seconds to leave).
Every device of `serve --devices N` has its own, so each forwards on its own.

Changes are saved first (atomically: the state dir keeps the old or the new settings, also
across a crash) and audited. The audit entry of `setup` and `enable` is written after the new
servers are in place, so they receive it; that of `disable` before the servers are retired,
so they receive it too, as the persistent log records its own end.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from vapixlog.files import write_atomic
from vapixlog.forward import config
from vapixlog.forward.config import LogType, Server, Settings
from vapixlog.forward.sender import Sender
from vapixlog.severity import Severity
from vapixlog.syslog import audit as events
from vapixlog.syslog.audit import AuditLog
from vapixlog.syslog.entry import Entry
from vapixlog.syslog.line import format_line
from vapixlog.syslog.system_log import AUDIT_TAG, SystemLog

FLUSH = 1.0
TAG = "remote-syslogd"  # the forwarder's own entries and its test messages
AUDIT_TEST_MESSAGE = "Base Event: This is an audit test message."

Audit = Callable[[str], Awaitable[None]]
# What the audit entries of changes name (the device's parameter group, remote-syslog.md).
ENABLED_SETTING = "API.RemoteSyslog1.Enabled"
SERVERS_SETTING = "API.RemoteSyslog1.Servers"


def install_ca(source: Path, state_dir: Path) -> None:
    """Keep a copy of the CA file in the state dir (as a device keeps installed CA
    certificates), so later starts validate servers without the option."""
    data = source.read_bytes()
    target = state_dir / config.CA_FILE
    if not target.exists() or target.read_bytes() != data:
        write_atomic(target, data, mode=0o644)


class RemoteSyslog:
    def __init__(
        self, syslog: SystemLog, state_dir: Path, *, audit: Audit, audit_log: AuditLog | None
    ) -> None:
        """`audit_log`: the audit store of AXIS OS 12.5+, forwarded too (None: audit events
        are entries of the system log)."""
        self._syslog = syslog
        self._sources: tuple[SystemLog | AuditLog, ...] = (
            (syslog,) if audit_log is None else (syslog, audit_log)
        )
        self._state_dir = state_dir
        self._audit = audit
        self.settings = config.load(state_dir)
        self._senders: tuple[Sender, ...] = ()
        self._retiring: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._tap = self._offer  # one bound method: `remove_tap` compares by identity

    def start(self) -> None:
        self._apply(self.settings)

    async def stop(self) -> None:
        """Flush for up to `FLUSH` seconds, then close every connection."""
        self._replace_senders(())
        if self._retiring:
            await asyncio.gather(*self._retiring)

    async def setup(self, servers: tuple[Server, ...], *, actor: str) -> Settings:
        """Replace the servers; on (enabled) when there is at least one. Raises OSError when
        the settings cannot be saved (nothing changes then)."""
        async with self._lock:
            settings = Settings(enabled=bool(servers), servers=servers)
            await self._save(settings)
            self._apply(settings)
            described = "; ".join(_describe(server) for server in servers) or "no servers"
            await self._audit(events.configured(actor, SERVERS_SETTING, described))
            return settings

    async def enable(self, *, actor: str) -> Settings:
        async with self._lock:
            settings = Settings(enabled=True, servers=self.settings.servers)
            await self._save(settings)
            self._apply(settings)
            await self._audit(events.configured(actor, ENABLED_SETTING, "true"))
            return settings

    async def disable(self, *, actor: str) -> Settings:
        async with self._lock:
            settings = Settings(enabled=False, servers=self.settings.servers)
            await self._save(settings)
            await self._audit(events.configured(actor, ENABLED_SETTING, "false"))
            self._apply(settings)
            return settings

    def test(self) -> None:
        """One message per severity through the log: each server's threshold decides which
        leave (5 at Warning, 8 at Debug). Servers of type Audit get the audit test event."""
        for severity in Severity:
            name = config.SEVERITY_NAMES[severity]
            self._syslog.log(severity, f"{TAG}-test: This is {name} message", tag=TAG)
        audit_senders = [s for s in self._senders if s.server.log_type is LogType.AUDIT]
        if audit_senders:
            now = datetime.datetime.now().astimezone()
            host, pid = self._syslog.hostname, self._syslog.pid
            severity = Severity.INFO  # as every audit line the spec shows
            line = format_line(now, host, severity, AUDIT_TAG, pid, AUDIT_TEST_MESSAGE)
            entry = Entry(now, host, severity, AUDIT_TAG, pid, AUDIT_TEST_MESSAGE, True, line)
            for sender in audit_senders:
                sender.put(entry)  # past the threshold: a test must reach the server

    def health(self) -> list[dict[str, Any]]:
        """Per server: messages sent and dropped since the device started or the servers
        last changed, and the current problem (for the log page's panel; `status` keeps
        the API's shape)."""
        return [
            {
                "server": sender.server.to_json(),
                "sent": sender.sent,
                "dropped": sender.report.total_dropped,
                "problem": sender.report.problem,
            }
            for sender in self._senders
        ]

    async def _save(self, settings: Settings) -> None:
        await asyncio.to_thread(config.save, self._state_dir, settings)
        self.settings = settings

    def _apply(self, settings: Settings) -> None:
        self.settings = settings
        self._replace_senders(settings.servers if settings.enabled else ())

    def _replace_senders(self, servers: tuple[Server, ...]) -> None:
        old, self._senders = self._senders, ()
        if old:
            for source in self._sources:
                source.remove_tap(self._tap)
        for sender in old:  # in the background: a reply never waits for a flush
            task = asyncio.create_task(sender.close(FLUSH))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        if not servers:
            return
        ca_file = self._state_dir / config.CA_FILE
        self._senders = tuple(
            Sender(index, server, log=self._log_line, ca_file=ca_file if ca_file.exists() else None)
            for index, server in enumerate(servers, start=1)
        )
        for sender in self._senders:
            sender.start()
        for source in self._sources:
            source.add_tap(self._tap)

    def _offer(self, entry: Entry) -> None:
        for sender in self._senders:
            sender.offer(entry)

    def _log_line(self, severity: Severity, message: str) -> None:
        self._syslog.log(severity, message, tag=TAG)  # the forwarder's own lines


def _describe(server: Server) -> str:
    return (
        f"{server.describe()} {server.syslog_format} "
        f"{config.SEVERITY_NAMES[server.severity]} {server.log_type}"
    )
