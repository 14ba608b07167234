"""The audit log of AXIS OS 12.5 and later: a store of its own, apart from the system log.

As the spec (audit-log.md) describes it: always on, kept across reboots and power cuts, never
cleared (the Log API's `clearLog` does not touch it and nothing deletes it), in the device's
line format at level INFO. Entries are appended by a `Journal` of their own in
`<state>/audit/log/`, group committed like the persistent system log: `write` returns once the
entry is on stable storage. A torn tail left by a crash is cut at the next start and set aside
in `<state>/audit/recovered/`. Files rotate at `AuditLimits.file_bytes`; every new file opens
with `Entity Management: Audit Log rotated.`, and the oldest files go once the total passes
`file_bytes * files` (the spec's storage model: 1 MiB, 4 generations).
"""

from __future__ import annotations

import asyncio
import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vapixlog.severity import Severity
from vapixlog.syslog.entry import Entry, EntryTap
from vapixlog.syslog.journal import Journal
from vapixlog.syslog.line import format_line
from vapixlog.syslog.system_log import LocalClock, resolve_futures

AUDIT_DIR = "audit"
PROCESS = "audit"  # the writer of every event but HTTP logins (ours: not documented)
HTTP_PROCESS = "httpd"  # the writer of HTTP authentication events
STARTED = "Entity Management: Audit Log started."
ROTATED = "Entity Management: Audit Log rotated."

Notify = Callable[[Severity, str], None]


@dataclass(frozen=True)
class AuditLimits:
    file_bytes: int = 1 << 20
    files: int = 4
    keep_free_bytes: int = 1 << 20  # the audit log stops short of a full disk, too


class AuditLog:
    """The audit store of one device (see the module doc); open and close with the device."""

    def __init__(
        self, state_dir: Path, *, hostname: str, notify: Notify, limits: AuditLimits
    ) -> None:
        self.hostname = hostname
        self.pid = os.getpid()
        self.dir = state_dir / AUDIT_DIR / "log"
        self._notify = notify
        self._clock = LocalClock()
        self._taps: tuple[EntryTap, ...] = ()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.journal = Journal(
            self.dir,
            max_bytes=limits.file_bytes * limits.files,
            file_bytes=limits.file_bytes,
            keep_free_bytes=limits.keep_free_bytes,
            notify=self._notify_from_journal,
            on_batch_done=self._batch_done_from_journal,
            label="audit log",
            rotated_line=self._rotated_line,
        )

    def open(self) -> None:
        """Repair what a crash left, start the writer."""
        self._loop = asyncio.get_running_loop()
        self.journal.recover()
        self.journal.start()

    async def close(self) -> None:
        """Write out everything queued; the writer thread is joined off the event loop."""
        await asyncio.to_thread(self.journal.close)

    def add_tap(self, tap: EntryTap) -> None:
        """Hand every later entry to `tap` (remote syslog of type Audit or All)."""
        self._taps = (*self._taps, tap)

    def remove_tap(self, tap: EntryTap) -> None:
        self._taps = tuple(t for t in self._taps if t is not tap)

    async def write(self, message: str, *, process: str = PROCESS) -> bool:
        """Add an entry; True once it is on stable storage, False when it could not be."""
        loop = self._running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._append(message, process, future)
        stored: bool = await future
        return stored

    def log(self, message: str, *, process: str = PROCESS) -> None:
        """Add an entry without waiting for it to be durable."""
        self._append(message, process, None)

    def files(self) -> list[Path]:
        """The audit files, oldest first (for the server report)."""
        return self.journal.files()

    def lines(self, tail: int | None = None) -> list[str]:
        """The entries, oldest first; only the last `tail` with a tail. Blocking: reads files.

        Complete lines only: an entry being appended right now is not shown half-written.
        """
        kept: list[str] = []
        for path in reversed(self.files()):
            try:
                data = path.read_bytes()
            except FileNotFoundError:  # dropped by a rotation meanwhile
                continue
            end = data.rfind(b"\n") + 1
            kept[:0] = data[:end].decode("utf-8", "replace").splitlines()
            if tail is not None and len(kept) >= tail:
                return kept[-tail:]
        return kept

    def _append(self, message: str, process: str, future: asyncio.Future[bool] | None) -> None:
        now = self._clock.now()
        line = format_line(now, self.hostname, Severity.INFO, process, self.pid, message)
        if self.journal.closed:
            if future is not None:
                future.set_result(False)
            return
        self.journal.append(f"{line}\n".encode(), future)
        self._offer(
            Entry(now, self.hostname, Severity.INFO, process, self.pid, message, True, line)
        )

    def _offer(self, entry: Entry) -> None:
        for tap in self._taps:
            tap(entry)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the audit log is not open")
        return self._loop

    # Called on the journal's writer thread.
    def _rotated_line(self) -> bytes:
        now = datetime.datetime.now().astimezone()
        line = format_line(now, self.hostname, Severity.INFO, PROCESS, self.pid, ROTATED)
        entry = Entry(now, self.hostname, Severity.INFO, PROCESS, self.pid, ROTATED, True, line)
        self._running_loop().call_soon_threadsafe(self._offer, entry)
        return f"{line}\n".encode()

    def _notify_from_journal(self, severity: Severity, message: str) -> None:
        self._running_loop().call_soon_threadsafe(self._notify, severity, message)

    def _batch_done_from_journal(self, results: list[tuple[object, bool]]) -> None:
        self._running_loop().call_soon_threadsafe(resolve_futures, results)


# The events' wording (audit-log.md §4, the emulator's mapping). `actor` is `<user>@<ip>`.
_ROLE_NAMES = {"admin": "Administrator", "operator": "Operator", "viewer": "Viewer"}


def actor(user: str, client: str) -> str:
    return f"{user}@{client}"


def authentication(who: str, *, ok: bool) -> str:
    outcome = "successful" if ok else "failed"
    return f"Authentication: {who} Authentication {outcome} (HTTP/S)."


def firewall_blocked(client: str) -> str:
    return f"Network Remediation Activity: Firewall blocked {client} (Authentication DoS)."


def configured(who: str, setting: str, value: str) -> str:
    """A configuration change: `setting` as the API names it, `value` as JSON or text."""
    return f"API Activity: {who} configured {setting} ({value})."


def restart(who: str) -> str:
    return f"Entity Management: {who} Restart."


def account_change(verb: str, name: str, detail: str) -> str:
    """`verb`: created, changed or deleted; `detail`: a role (`admin`) or `Password Update`."""
    return f"Account Change: {verb} account {name} ({_ROLE_NAMES.get(detail, detail)})."
