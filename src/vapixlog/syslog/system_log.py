"""The system log of one boot: the asyncio side of the log engine.

Entries are formatted once, appended to the volatile ring, and, while persistent logging is
on, handed to the `Journal` writer thread. `write` returns once the entry is durable (the
journal's group commit resolves the waiting futures in batches), which is the durability
promise of `writeMessage`. Enabling, disabling and clearing are ordered with the writes
because they all happen on the event loop thread and go through the journal's one queue.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from vapixlog.severity import Severity
from vapixlog.syslog.entry import Entry, EntryTap
from vapixlog.syslog.journal import Journal
from vapixlog.syslog.line import format_timestamp, line_at
from vapixlog.syslog.volatile import VolatileLog

SYSTEM_TAG = "vapixlog"
AUDIT_TAG = "audit"


class LogSubscriber(Protocol):
    """Receives every new entry of the volatile log, on the event loop thread.

    `line` must be quick and must never block or raise: it runs inside every write.
    `end` is called once when the log stops serving subscribers (shutdown, reboot).
    """

    def line(self, line: str) -> None: ...

    def end(self, reason: str) -> None: ...


@dataclass(frozen=True)
class LogLimits:
    """Bounds of the log storage, in bytes (README, "The system log")."""

    volatile_bytes: int = 4 << 20
    persistent_max_bytes: int = 64 << 20
    persistent_file_bytes: int = 8 << 20
    keep_free_bytes: int = 32 << 20


class LocalClock:
    """The local time with its UTC offset, for log lines.

    `datetime.now().astimezone()` looks the zone up on every call (about 1 us, on every
    entry); the zone is looked up once a minute instead. The instant is always exact; only
    the offset shown may lag a daylight-saving change by up to a minute.

    A line's time (`text`) is made once a second, and each line adds its milliseconds to it:
    a datetime and its ISO text for every entry cost about 8 us of the 55 us of server CPU a
    `writeMessage` took under load (docs/benchmarks.md).
    """

    _REFRESH = 60.0

    def __init__(self) -> None:
        self._zone: datetime.tzinfo | None = None
        self._zone_until = 0.0
        self._second = -1  # the whole second `_head` and `_offset` were made for
        self._head = ""  # its "YYYY-MM-DDTHH:MM:SS"
        self._offset = ""  # and its UTC offset, "+HH:MM"

    def now(self) -> datetime.datetime:
        return self.at(time.time())

    def at(self, stamp: float) -> datetime.datetime:
        """`stamp` (seconds since the epoch) as a local time with its offset."""
        if stamp >= self._zone_until:
            self._zone = datetime.datetime.fromtimestamp(stamp).astimezone().tzinfo
            self._zone_until = stamp + self._REFRESH
            self._second = -1
        return datetime.datetime.fromtimestamp(stamp, self._zone)

    def text(self, stamp: float) -> str:
        """`stamp` as `format_timestamp` writes `at(stamp)`: ISO 8601 with milliseconds."""
        second = int(stamp)
        # As datetime rounds (half to even, on the same product), then cuts to milliseconds.
        micro = round((stamp - second) * 1e6)
        if second == self._second and stamp < self._zone_until and micro < 1_000_000:
            return f"{self._head}.{micro // 1000:03d}{self._offset}"
        text = format_timestamp(self.at(stamp))
        if micro < 1_000_000:  # else the rounding carried into the next second: not cached
            self._head, _, rest = text.partition(".")
            self._offset = rest[3:]
            self._second = second
        return text


class SystemLog:
    def __init__(self, *, hostname: str, boot_id: str, log_dir: Path, limits: LogLimits) -> None:
        self.hostname = hostname
        self.boot_id = boot_id
        self.limits = limits
        self.pid = os.getpid()
        self.volatile = VolatileLog(limits.volatile_bytes)
        self._clock = LocalClock()
        self.persistent_dir = log_dir / "persistent"
        self.persistent_enabled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # A tuple, replaced on change: `_append` iterates it while a subscriber may leave.
        self._subscribers: tuple[LogSubscriber, ...] = ()
        # Readers of structured entries (remote syslog); a tuple for the same reason.
        self._taps: tuple[EntryTap, ...] = ()
        self._ended: str | None = None
        self.journal = Journal(
            self.persistent_dir,
            max_bytes=limits.persistent_max_bytes,
            file_bytes=limits.persistent_file_bytes,
            keep_free_bytes=limits.keep_free_bytes,
            notify=self._notify_from_journal,
            on_batch_done=self._batch_done_from_journal,
        )

    def open(self, *, persistent_enabled: bool) -> None:
        """Repair the persistent files left by the previous boot and start the writer."""
        self._loop = asyncio.get_running_loop()
        self.persistent_enabled = persistent_enabled
        self.journal.recover()
        self.journal.start()

    async def close(self) -> None:
        """Write out everything queued; the writer thread is joined off the event loop."""
        self.end_subscriptions("shutdown")
        await asyncio.to_thread(self.journal.close)

    def subscribe(self, subscriber: LogSubscriber) -> None:
        """Hand every later entry to `subscriber` (live follow); see `LogSubscriber`."""
        if self._ended is not None:
            subscriber.end(self._ended)
            return
        self._subscribers = (*self._subscribers, subscriber)

    def unsubscribe(self, subscriber: LogSubscriber) -> None:
        self._subscribers = tuple(s for s in self._subscribers if s is not subscriber)

    def add_tap(self, tap: EntryTap) -> None:
        """Hand every later entry to `tap` as an `Entry` (see `EntryTap`)."""
        self._taps = (*self._taps, tap)

    def remove_tap(self, tap: EntryTap) -> None:
        self._taps = tuple(t for t in self._taps if t is not tap)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def end_subscriptions(self, reason: str) -> None:
        """End every subscription, and refuse later ones (the device is going down)."""
        if self._ended is None:
            self._ended = reason
        subscribers, self._subscribers = self._subscribers, ()
        for subscriber in subscribers:
            subscriber.end(reason)

    def log(self, severity: Severity, message: str, *, tag: str = SYSTEM_TAG) -> None:
        """Add an entry without waiting for it to be durable (the service's own entries)."""
        self._append(severity, message, tag, None)

    async def write(
        self, severity: Severity, message: str, *, tag: str = SYSTEM_TAG
    ) -> bool | None:
        """Add an entry; while persistent logging is on, return once it is on disk.

        Returns True when persisted, False when the journal could not store it (keep-free
        floor reached or an I/O error), None when persistent logging is off.
        """
        if not self.persistent_enabled:
            self._append(severity, message, tag, None)
            return None
        future = self._running_loop().create_future()
        self._append(severity, message, tag, future)
        stored: bool = await future
        return stored

    async def set_persistent(self, enabled: bool) -> None:
        """Turn persistent logging on or off; after turning off, earlier entries are durable."""
        self.persistent_enabled = enabled
        if not enabled:
            await self._journal_request(self.journal.request_flush)

    async def clear_persistent(self) -> None:
        """Remove every persistent log file (atomically, ordered after earlier writes)."""
        await self._journal_request(self.journal.request_clear)

    async def flush(self) -> None:
        await self._journal_request(self.journal.request_flush)

    def not_persisted_warning(self) -> str:
        if self.journal.paused:
            return (
                "persistent logging is paused: less than "
                f"{self.limits.keep_free_bytes} bytes free; the entry is in the volatile log only"
            )
        return (
            "the entry could not be written to persistent storage; it is in the volatile log only"
        )

    def _append(
        self, severity: Severity, message: str, tag: str, future: asyncio.Future[bool] | None
    ) -> None:
        stamp = time.time()
        line = line_at(self._clock.text(stamp), self.hostname, severity, tag, self.pid, message)
        self.volatile.append(line)
        if self.persistent_enabled and not self.journal.closed:
            self.journal.append(f"{line}\n".encode(), future)
        elif future is not None:
            future.set_result(False)
        if self._subscribers:
            for subscriber in self._subscribers:
                subscriber.line(line)
        if self._taps:  # built only when someone reads entries: writes without pay nothing
            now = self._clock.at(stamp)
            audit = tag == AUDIT_TAG
            entry = Entry(now, self.hostname, severity, tag, self.pid, message, audit, line)
            for tap in self._taps:
                tap(entry)

    async def _journal_request(self, request: Callable[[object], None]) -> None:
        future = self._running_loop().create_future()
        request(future)
        await future

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the system log is not open")
        return self._loop

    # Called on the journal's writer thread: hop to the event loop.
    def _notify_from_journal(self, severity: Severity, message: str) -> None:
        self._running_loop().call_soon_threadsafe(self.log, severity, message)

    def _batch_done_from_journal(self, results: list[tuple[object, bool]]) -> None:
        self._running_loop().call_soon_threadsafe(resolve_futures, results)


def resolve_futures(results: list[tuple[object, bool]]) -> None:
    """Resolve the futures among a journal batch's tokens (on the event loop thread)."""
    for token, stored in results:
        if isinstance(token, asyncio.Future) and not token.done():
            token.set_result(stored)
