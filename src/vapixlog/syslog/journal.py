"""The persistent log: files written by the shared writer threads with group commit.

Thread contract (the asyncio facade relies on exactly this):

* `append(data, token)`, `request_flush(token)` and `request_clear(token)` may be called from
  any thread (normally the event loop thread). They only put an item on an in-memory queue
  and never block on I/O. Items are processed strictly in the order they were queued.
* A writer thread (`vapixlog.syslog.writers`, shared by every journal of the process, one
  batch of a journal at a time) takes everything queued (up to `batch_bytes`), writes it with
  as few `os.write` calls as possible and makes it durable with ONE `os.fdatasync`; appends
  that arrive meanwhile form the next batch. So many concurrent writers share one fsync.
* Once per batch, the writer thread calls `on_batch_done([(token, ok), ...])` with every
  token of the batch, each exactly once, in queue order. For an append `ok` is True when the
  data is on stable storage, False when it was not stored (keep-free floor reached, or an
  I/O error; then none of its bytes stay in the file, except that a multi-line append split
  by a rotation keeps the lines already synced into the previous file). A flush is True when
  every append queued before it in the same batch was stored. A clear is True when it
  happened. Queueing after `close()` raises RuntimeError (check `closed`).
  The facade typically wraps this with `loop.call_soon_threadsafe` to resolve futures.
* `notify(severity, message)` reports events worth a log entry (oldest file dropped, paused,
  resumed, repaired, I/O errors). It is called from the writer thread, or from `recover()`
  in the caller's thread, and never while a lock that `append` needs is held.
* `close()` drains the queue (everything queued before it is written, synced and reported)
  and waits for the batch being written. `recover()` must run before `start()` on every
  cold start. An idle journal keeps no file open.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

from vapixlog.severity import Severity
from vapixlog.syslog.logfiles import DIR_MODE, RECOVERED_DIR, list_logs, repair
from vapixlog.syslog.store import LogStore, clearing_dir
from vapixlog.syslog.writers import writers

Notify = Callable[[Severity, str], None]
BatchDone = Callable[[list[tuple[object, bool]]], None]

_log = logging.getLogger(__name__)

_APPEND, _FLUSH, _CLEAR = 0, 1, 2
_Item = tuple[int, bytes, object]
_NOTHING = b""


def _split_lines(data: bytes) -> list[bytes]:
    """`data` cut after every newline (bytes.splitlines would also cut at CR)."""
    out = []
    start = 0
    while (end := data.find(b"\n", start)) >= 0:
        out.append(data[start : end + 1])
        start = end + 1
    return out


def _entries(datas: list[bytes]) -> int:
    return sum(data.count(b"\n") for data in datas)


class Journal:
    """The persistent log files in `dir` and their writing (see module doc)."""

    def __init__(
        self,
        dir: Path,
        *,
        max_bytes: int,
        file_bytes: int,
        keep_free_bytes: int,
        notify: Notify,
        on_batch_done: BatchDone,
        batch_bytes: int = 4 << 20,
        label: str = "persistent log",
        rotated_line: Callable[[], bytes] | None = None,
    ) -> None:
        """`label` names the log in the notices; `rotated_line()`, when given, is written
        first into every file a rotation starts (the audit log records its rotations)."""
        if file_bytes <= 0 or max_bytes <= 0 or batch_bytes <= 0:
            raise ValueError("max_bytes, file_bytes and batch_bytes must be positive")
        self.dir = Path(dir)
        # Read by the writer before every batch, so it may be changed while running.
        self.keep_free_bytes = keep_free_bytes
        self.batch_bytes = batch_bytes
        self._notify_cb = notify
        self._on_batch_done = on_batch_done
        self.label = label
        self._rotated_line = rotated_line
        self._cond = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._closing = False
        self._scheduled = False  # a writer job of this journal is queued or running
        self._started = False
        self._cap_checked = False
        # Writer state, touched only by the writer thread once started.
        self._store = LogStore(
            self.dir,
            max_bytes=max_bytes,
            file_bytes=file_bytes,
            notify=self._notify,
            label=label,
        )
        self._paused = False
        self._unstored_paused = 0
        self._failing = False
        self._unstored_failing = 0
        self.batches = 0  # group commits that reached stable storage (a statistic)

    # ----- public API, any thread -----

    @property
    def max_bytes(self) -> int:
        return self._store.max_bytes

    @property
    def file_bytes(self) -> int:
        return self._store.file_bytes

    @property
    def syncs(self) -> int:
        """fdatasync calls so far, rotations included (a statistic)."""
        return self._store.syncs

    @property
    def closed(self) -> bool:
        """True once `close()` was called; queueing then raises RuntimeError."""
        return self._closing

    @property
    def paused(self) -> bool:
        """True while the keep-free floor stops persistent writes."""
        return self._paused

    def size_bytes(self) -> int:
        """Total bytes of all log files (a counter kept by the writer, no stat)."""
        return self._store.total

    def files(self) -> list[Path]:
        """The log files, oldest first."""
        return [path for _, path in list_logs(self.dir)]

    def append(self, data: bytes, token: object) -> None:
        """Queue `data` (complete lines, each ending in a newline); `token` is reported once."""
        if not data.endswith(b"\n"):
            raise ValueError("journal data must be complete lines ending in a newline")
        self._put((_APPEND, data, token))

    def request_flush(self, token: object) -> None:
        """Report `token` once everything queued before it has been written and synced."""
        self._put((_FLUSH, _NOTHING, token))

    def request_clear(self, token: object) -> None:
        """Delete all log files, atomically, after what was queued before; then report."""
        self._put((_CLEAR, _NOTHING, token))

    def recover(self) -> None:
        """Cold start repair: finish an interrupted clear and cut torn file tails."""
        if self._started:
            raise RuntimeError("recover() must run before start()")
        clearing = clearing_dir(self.dir)
        if clearing.exists():  # a clear was interrupted after its rename: finish it
            shutil.rmtree(clearing)
        self.dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        recovered = self.dir.parent / RECOVERED_DIR
        for _, path in list_logs(self.dir):
            try:
                done = repair(path, recovered)
            except OSError as error:  # a start must never fail because of a damaged file
                self._notify(Severity.ERROR, f"cannot check {self.label} {path.name}: {error}")
                continue
            if done is not None:
                self._notify(
                    Severity.WARNING,
                    f"repaired {self.label} {path.name}: cut {done.cut_bytes} damaged "
                    f"bytes, set aside in {RECOVERED_DIR}/{done.set_aside.name}",
                )

    def start(self) -> None:
        """Start writing: a writer job runs whenever there is work."""
        if self._started:
            raise RuntimeError("journal already started")
        if self._closing:
            raise RuntimeError("journal is closed")
        self._open_dir()
        with self._cond:
            self._started = True
            if self._queue:
                self._schedule()

    def close(self) -> None:
        """Write, sync and report everything queued, wait for the writer. Idempotent."""
        with self._cond:
            self._closing = True
            while self._scheduled:
                self._cond.wait()
        if self._queue:  # never started: drain in this thread, no token is lost
            self._open_dir()
            while batch := self._next_batch():
                self._write(batch)
        self._store.close()

    def _open_dir(self) -> None:
        self.dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        self._store.scan()

    # ----- queue -----

    def _put(self, item: _Item) -> None:
        with self._cond:
            if self._closing:
                raise RuntimeError("journal is closed")
            self._queue.append(item)
            if self._started and not self._scheduled:
                self._schedule()

    def _schedule(self) -> None:
        """Queue this journal's next writer job (with `_cond` held)."""
        self._scheduled = True
        writers.submit(self._write_next)

    def _next_batch(self) -> list[_Item]:
        """Take the next batch off the queue (empty when nothing is queued)."""
        with self._cond:
            queue = self._queue
            batch: list[_Item] = []
            size = 0
            while queue and (not batch or size + len(queue[0][1]) <= self.batch_bytes):
                item = queue.popleft()
                batch.append(item)
                size += len(item[1])
                if item[0] == _CLEAR:  # appends after a clear go to the new, empty dir
                    break
            return batch

    # ----- writer job -----

    def _write_next(self) -> None:
        """One batch, on a writer thread; then this journal's next job, if more is queued
        (behind other journals' jobs: a busy log cannot hold a thread from the rest)."""
        try:
            if batch := self._next_batch():
                self._write(batch)
        finally:
            with self._cond:
                if self._queue:
                    self._schedule()
                else:
                    self._store.close()  # an idle journal holds no descriptor
                    self._scheduled = False
                    self._cond.notify_all()

    def _write(self, batch: list[_Item]) -> None:
        try:
            if not self._cap_checked:  # the cap may have been lowered since the last boot
                self._cap_checked = True
                self._store.enforce_cap()
            reports = self._process(batch)
        except Exception:  # a bug must not silently stop persistent logging
            _log.exception("journal writer failed on a batch")
            self._notify(Severity.ERROR, f"{self.label} writer failed on a batch")
            reports = [(token, False) for _, _, token in batch]
        try:
            self._on_batch_done(reports)
        except Exception:
            _log.exception("journal on_batch_done callback failed")

    def _process(self, batch: list[_Item]) -> list[tuple[object, bool]]:
        stored = iter(self._commit([data for kind, data, _ in batch if kind == _APPEND]))
        reports: list[tuple[object, bool]] = []
        all_stored = True
        for kind, _, token in batch:
            if kind == _APPEND:
                ok = next(stored)
                all_stored = all_stored and ok
            elif kind == _FLUSH:
                ok = all_stored
            else:  # the clear is always last in its batch: its appends are written already
                ok = self._store.clear()
            reports.append((token, ok))
        return reports

    def _commit(self, datas: list[bytes]) -> list[bool]:
        """Write `datas` with one fdatasync (more only when rotating); which are durable."""
        stored = [False] * len(datas)
        if not datas:
            return stored
        store = self._store
        limit = store.file_bytes
        pending: list[bytes] = []  # bytes for the current file, not written yet
        pending_len = 0
        ready: list[int] = []  # indexes of datas wholly in `pending`
        try:
            if not self._space_ok(datas):
                return stored
            fd = store.prepare()
            for index, data in enumerate(datas):
                if store.current_size + pending_len + len(data) <= limit:  # common case
                    pending.append(data)
                    pending_len += len(data)
                else:  # split at lines so no file grows past file_bytes; lines never span
                    for line in _split_lines(data):
                        used = store.current_size + pending_len
                        if used and used + len(line) > limit:
                            if pending:
                                store.write_sync(fd, pending)
                            for done in ready:
                                stored[done] = True
                            ready.clear()
                            pending, pending_len = [], 0
                            fd = store.rotate()
                            if self._rotated_line is not None:
                                first = self._rotated_line()
                                pending.append(first)
                                pending_len += len(first)
                        pending.append(line)
                        pending_len += len(line)
                ready.append(index)
            store.write_sync(fd, pending)
        except OSError as error:
            store.undo_unsynced()
            self._io_failed(error, [d for d, ok in zip(datas, stored, strict=True) if not ok])
            return stored
        for done in ready:
            stored[done] = True
        self.batches += 1
        self._io_ok()
        return stored

    def _space_ok(self, datas: list[bytes]) -> bool:
        """Apply the keep-free floor to a batch, announcing pause and resume."""
        stat = os.statvfs(self.dir)
        free = stat.f_bavail * stat.f_frsize
        if free - sum(map(len, datas)) < self.keep_free_bytes:
            if not self._paused:
                self._paused = True
                self._notify(
                    Severity.WARNING,
                    f"{self.label} paused: less than {self.keep_free_bytes} bytes "
                    f"free on {self.dir}",
                )
            self._unstored_paused += _entries(datas)
            return False
        if self._paused:
            self._paused = False
            count, self._unstored_paused = self._unstored_paused, 0
            self._notify(
                Severity.NOTICE,
                f"{self.label} resumed: {count} entries were not stored while paused",
            )
        return True

    def _io_failed(self, error: OSError, lost: list[bytes]) -> None:
        self._unstored_failing += _entries(lost)
        if not self._failing:  # once per episode, not once per batch
            self._failing = True
            self._notify(
                Severity.WARNING,
                f"{self.label} write failed: {error}; entries are not stored until "
                "writing works again",
            )

    def _io_ok(self) -> None:
        if self._failing:
            self._failing = False
            count, self._unstored_failing = self._unstored_failing, 0
            self._notify(
                Severity.NOTICE,
                f"{self.label} works again: {count} entries were not stored",
            )

    def _notify(self, severity: Severity, message: str) -> None:
        try:
            self._notify_cb(severity, message)
        except Exception:  # a failing callback must not stop the writer
            _log.exception("journal notify callback failed")
