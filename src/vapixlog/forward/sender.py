"""One remote syslog server: its filter, its bounded queue, and the task that sends.

Writers only ever call `offer` (inside a log write, on the event loop): a comparison, and
an append to a queue bounded in entries and bytes, or a drop that is counted. Nothing in a
writer's path waits for the network. The task takes entries in batches, formats and frames
them (`formats`), and sends them over its `Link`.

The device buffers nothing for a server it cannot reach (remote-syslog.md section 1): while
a connection attempt has failed, every entry for that server is dropped at once, and what
was queued is dropped with it. Entries queue (bounded) only while connecting or connected.
Reconnection backs off from `BACKOFF_MIN` to `BACKOFF_MAX` seconds, with jitter so that a
fleet does not reconnect in step; a connection that lasted `STABLE` seconds resets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections import deque
from pathlib import Path

from vapixlog.forward import transport
from vapixlog.forward.config import LogType, Protocol, Server
from vapixlog.forward.formats import encoder
from vapixlog.forward.report import LogLine, Reporter
from vapixlog.syslog.entry import Entry

QUEUE_ENTRIES = 4096
QUEUE_BYTES = 2 << 20
BATCH_BYTES = 64 << 10
BACKOFF_MIN = 0.25
BACKOFF_MAX = 4.0
STABLE = 10.0
_ENTRY_COST = 160  # the entry object and its fields besides the message, in bytes (roughly)
_FAILURES = (OSError, ssl.SSLError, TimeoutError)
_log = logging.getLogger(__name__)


class Sender:
    def __init__(self, index: int, server: Server, *, log: LogLine, ca_file: Path | None) -> None:
        self.server = server
        self.report = Reporter(f"server {index} ({server.describe()})", log)
        self.sent = 0
        self._threshold = server.severity
        self._audit_only = server.log_type is LogType.AUDIT
        self._encode = encoder(server.syslog_format, server.protocol)
        self._ca_file = ca_file
        self._tls: ssl.SSLContext | None = None
        self._queue: deque[Entry] = deque()
        self._queued_bytes = 0
        self._accepting = True  # False after a failed attempt, until the next one starts
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # the queue is empty and nothing is being sent
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"remote syslog {self.report.name}")

    def offer(self, entry: Entry) -> None:
        """An entry of the log: queued when this server takes it (see `Entry`)."""
        if self._audit_only:
            # Every audit event, whatever the threshold: they are all INFO on a device, and
            # the spec's own Audit example sets Notice (ours: not documented).
            if entry.audit:
                self.put(entry)
        elif entry.severity <= self._threshold:
            self.put(entry)

    def put(self, entry: Entry) -> None:
        """Queue `entry` for sending, or drop (and count) it."""
        cost = len(entry.message) + _ENTRY_COST
        if (
            not self._accepting
            or len(self._queue) >= QUEUE_ENTRIES
            or self._queued_bytes + cost > QUEUE_BYTES
        ):
            self.report.dropped()
            return
        self._queue.append(entry)
        self._queued_bytes += cost
        self._idle.clear()
        self._wake.set()

    async def close(self, flush: float) -> None:
        """Send what is queued for up to `flush` seconds, then stop; the rest is dropped."""
        self._accepting = False
        if self._task is not None and self.report.problem is None:  # connected or connecting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), flush)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.report.close()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = BACKOFF_MIN
        while True:
            try:
                if self._tls is None and self.server.protocol is Protocol.TLS:
                    # Reading the system's CA store takes long enough to stall the loop.
                    self._tls = await asyncio.to_thread(transport.tls_context, self._ca_file)
                link = await transport.connect(self.server, self._wake, self._tls)
            except _FAILURES as error:
                self._fail(f"cannot connect: {transport.describe(error)}")
            else:
                self.report.working()
                started = loop.time()
                try:
                    await self._pump(link)
                except _FAILURES as error:
                    self._fail(f"connection lost: {transport.describe(error)}")
                except Exception as error:  # a bug must not end forwarding for the boot
                    _log.exception("remote syslog %s", self.report.name)
                    self._fail(f"internal error ({type(error).__name__}); reconnecting")
                finally:
                    link.close()
                if loop.time() - started >= STABLE:
                    backoff = BACKOFF_MIN
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, BACKOFF_MAX)
            self._accepting = True

    def _fail(self, reason: str) -> None:
        """Unreachable: drop what is queued and whatever comes until the next attempt."""
        self._accepting = False
        self._drop_queue()
        self.report.failed(reason)

    def _drop_queue(self) -> None:
        if self._queue:
            self.report.dropped(len(self._queue))
            self._queue.clear()
            self._queued_bytes = 0
        self._idle.set()

    def _take(self) -> list[bytes]:
        """Framed messages from the head of the queue, up to about `BATCH_BYTES`."""
        batch: list[bytes] = []
        size = 0
        while self._queue and size < BATCH_BYTES:
            entry = self._queue.popleft()
            self._queued_bytes -= len(entry.message) + _ENTRY_COST
            data = self._encode(entry)
            batch.append(data)
            size += len(data)
        return batch

    async def _next_batch(self, link: transport.Link) -> list[bytes]:
        while not self._queue and not link.lost:
            self._idle.set()
            self._wake.clear()
            await self._wake.wait()
        return self._take()

    async def _pump(self, link: transport.Link) -> None:
        while True:
            batch = await self._next_batch(link)
            if isinstance(link, transport.DatagramLink):
                self._send_datagrams(link, batch)
                await asyncio.sleep(0)  # a long queue must not hold the event loop
                continue
            try:
                await link.send(b"".join(batch))
            except BaseException:
                if batch:  # taken from the queue, never delivered
                    self.report.dropped(len(batch))
                raise
            self.sent += len(batch)

    def _send_datagrams(self, link: transport.DatagramLink, batch: list[bytes]) -> None:
        refused: OSError | None = None
        for datagram in batch:
            try:
                link.send(datagram)
            except BlockingIOError:
                self.report.dropped()
            except OSError as error:  # an ICMP error for an earlier datagram (RFC 5426)
                refused = error
                self.report.dropped()
            else:
                self.sent += 1
        if refused is not None:
            self.report.failed(f"not delivered: {transport.describe(refused)}")
        else:
            self.report.working()
