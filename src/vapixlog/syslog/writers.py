"""The writer threads shared by every journal of the process.

A thread per journal made a fleet a thread convoy: 10,000 devices starting (each writes
`Audit Log started.`) kept a thousand writer threads alive at once, all waiting for the GIL,
and the process spent most of its time switching between them. Here at most `SIZE` daemon
threads run journal jobs in turn; a journal queues one job at a time (its next batch), so its
batches stay in order and a busy journal cannot hold a thread from the others.

Daemon threads, as the per-journal ones were: they cannot hold up interpreter exit, which
breaks no promise (a token is reported only after its fdatasync; `recover()` cuts torn
tails). Threads start on demand and then stay, idle ones waiting on the job queue.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable

# Writes are mostly waits on fdatasync (the GIL is released): a few threads keep several
# journals syncing at once without a convoy.
SIZE = 8
THREAD_NAME = "vapixlog-journal"

_log = logging.getLogger(__name__)


class WriterPool:
    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = threading.Semaphore(0)  # one release per thread waiting for a job

    def submit(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)
        if self._idle.acquire(blocking=False):  # a waiting thread will take it
            return
        with self._lock:
            if self._threads < self.size:
                self._threads += 1
                threading.Thread(target=self._work, name=THREAD_NAME, daemon=True).start()

    def _work(self) -> None:
        _yield_to_the_loop()
        while True:
            job = self._jobs.get()
            try:
                job()
            except Exception:  # a job handles its own errors; this keeps the thread alive
                _log.exception("journal writer job failed")
            self._idle.release()


def _yield_to_the_loop() -> None:
    """Run this thread as a batch thread (Linux `SCHED_BATCH`): its wake-ups do not preempt
    the event loop.

    A writer wakes when its fdatasync returns; preempting the loop then gains nothing, as the
    loop holds the GIL the writer needs next: two context switches, and the writer waits
    anyway. As a batch thread it runs when the loop waits or its time slice ends. Measured:
    writeMessage with persistent logging on, 32 connections, 16,000 -> 18,000-20,000 req/s
    (docs/benchmarks.md). The thread's priority (nice) is unchanged; no privilege is needed.
    """
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or refused: as it was
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


writers = WriterPool()
