"""The persistent journal: real files, real writer thread, real fdatasync."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vapixlog.severity import Severity
from vapixlog.syslog import Journal, logfiles
from vapixlog.syslog import store as store_module
from vapixlog.syslog import writers as writers_module
from vapixlog.syslog.logfiles import valid_length

MiB = 1 << 20


class Recorder:
    """Collects what the journal reports, from whatever thread it reports on."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.batches: list[list[tuple[object, bool]]] = []
        self.reports: list[tuple[object, bool]] = []
        self.notes: list[tuple[Severity, str]] = []
        self.threads: set[str] = set()
        self.on_batch: Callable[[], None] | None = None

    def notify(self, severity: Severity, message: str) -> None:
        with self.cond:
            self.notes.append((severity, message))

    def on_batch_done(self, reports: list[tuple[object, bool]]) -> None:
        if self.on_batch is not None:
            self.on_batch()
        with self.cond:
            self.threads.add(threading.current_thread().name)
            self.batches.append(list(reports))
            self.reports.extend(reports)
            self.cond.notify_all()

    def wait_for(self, count: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.reports) >= count, timeout=10)

    def result(self, token: object) -> bool:
        found = [ok for t, ok in self.reports if t == token]
        assert len(found) == 1, f"{token!r} reported {len(found)} times"
        return found[0]

    def messages(self, severity: Severity) -> list[str]:
        return [message for s, message in self.notes if s == severity]


Factory = Callable[..., tuple[Journal, Recorder]]


@pytest.fixture
def make_journal(tmp_path: Path) -> Iterator[Factory]:
    made: list[Journal] = []

    def make(**options: object) -> tuple[Journal, Recorder]:
        recorder = Recorder()
        params: dict[str, object] = {
            "max_bytes": 64 * MiB,
            "file_bytes": 8 * MiB,
            "keep_free_bytes": 0,
        }
        params.update(options)
        directory = params.pop("dir", tmp_path / "log" / "persistent")
        journal = Journal(
            directory,  # type: ignore[arg-type]
            notify=recorder.notify,
            on_batch_done=recorder.on_batch_done,
            **params,  # type: ignore[arg-type]
        )
        made.append(journal)
        return journal, recorder

    yield make
    for journal in made:
        journal.close()


def content(journal: Journal) -> bytes:
    return b"".join(path.read_bytes() for path in journal.files())


def test_appends_are_durable_in_order(make_journal: Factory) -> None:
    journal, rec = make_journal()
    journal.recover()
    journal.start()
    lines = [f"line {i}\n".encode() for i in range(500)]
    for i, line in enumerate(lines):
        journal.append(line, i)
    journal.request_flush("flush")
    rec.wait_for(501)
    assert rec.reports == [*((i, True) for i in range(500)), ("flush", True)]
    assert rec.threads == {"vapixlog-journal"}
    assert content(journal) == b"".join(lines)
    assert [p.name for p in journal.files()] == ["messages-000001.log"]
    assert journal.size_bytes() == len(b"".join(lines))
    assert oct(journal.files()[0].stat().st_mode & 0o777) == "0o640"


def test_many_journals_share_a_few_writer_threads_and_idle_ones_keep_no_file_open(
    make_journal: Factory, tmp_path: Path
) -> None:
    """A fleet writing at once is served by the shared writer threads (a thread per
    journal made 10,000 devices a thread convoy); every journal keeps its order, and an
    idle one keeps no descriptor (its next entries reopen the same file)."""
    journals = [make_journal(dir=tmp_path / f"log{i}") for i in range(3 * writers_module.SIZE)]
    for journal, _ in journals:
        journal.recover()
        journal.start()
    for token in range(200):
        for journal, _ in journals:
            journal.append(f"line {token}\n".encode(), token)
    for _, rec in journals:
        rec.wait_for(200)
        assert rec.reports == [(token, True) for token in range(200)]
    assert 0 < len(_writer_threads()) <= writers_module.SIZE
    journal, rec = journals[0]
    deadline = time.monotonic() + 5
    while journal._store._fd is not None:  # the job that wrote the last batch ends
        assert time.monotonic() < deadline, "an idle journal kept its file open"
        time.sleep(0.01)
    journal.append(b"after idle\n", "late")
    rec.wait_for(201)
    expected = b"".join(f"line {t}\n".encode() for t in range(200)) + b"after idle\n"
    assert content(journal) == expected and len(journal.files()) == 1


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policies")
def test_writer_threads_do_not_preempt_the_event_loop(make_journal: Factory) -> None:
    """Writer threads are batch threads: their wake-ups after fdatasync do not preempt the
    thread that holds the GIL they need (docs/benchmarks.md); the caller's thread keeps its
    policy."""
    callers_policy = os.sched_getscheduler(0)
    journal, rec = make_journal()
    journal.recover()
    journal.start()
    journal.append(b"one line\n", 1)
    rec.wait_for(1)
    threads = _writer_threads()
    assert threads
    for thread in threads:
        assert thread.native_id is not None
        assert os.sched_getscheduler(thread.native_id) == os.SCHED_BATCH
    assert os.sched_getscheduler(0) == callers_policy


def _writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == writers_module.THREAD_NAME]


def test_group_commit_with_concurrent_writers(make_journal: Factory) -> None:
    journal, rec = make_journal()
    journal.recover()
    journal.start()
    threads, per_thread = 20, 200

    def writer(t: int) -> None:
        for j in range(per_thread):
            journal.append(f"t{t:02d} {j:04d}\n".encode(), (t, j))

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    total = threads * per_thread
    rec.wait_for(total)
    tokens = [cast(tuple[int, int], token) for token, _ in rec.reports]
    assert sorted(tokens) == [(t, j) for t in range(threads) for j in range(per_thread)]
    assert all(ok for _, ok in rec.reports)
    # The file holds the lines in the order the appends were queued, which is also the
    # order of the reports; each thread's own lines keep their order.
    lines = content(journal).decode().splitlines()
    assert lines == [f"t{t:02d} {j:04d}" for t, j in tokens]
    for t in range(threads):
        mine = [line for line in lines if line.startswith(f"t{t:02d} ")]
        assert mine == [f"t{t:02d} {j:04d}" for j in range(per_thread)]
    # Group commit: one fdatasync and one report call per batch, far fewer than appends.
    assert journal.batches == len(rec.batches) < total
    assert journal.syncs == journal.batches


def test_appends_queued_before_start_form_one_batch(make_journal: Factory) -> None:
    journal, rec = make_journal()
    for i in range(1000):
        journal.append(b"x\n", i)
    journal.start()
    rec.wait_for(1000)
    assert journal.batches == 1
    assert len(rec.batches) == 1


def test_batch_size_is_bounded(make_journal: Factory) -> None:
    journal, rec = make_journal(batch_bytes=100)
    for i in range(100):
        journal.append(b"0123456789\n", i)  # 11 bytes: 9 per batch
    journal.start()
    rec.wait_for(100)
    assert journal.batches == len(rec.batches) == 12
    assert content(journal) == b"0123456789\n" * 100


def disk_total(journal: Journal) -> int:
    return sum(path.stat().st_size for path in journal.files())


def test_rotation_and_cap(make_journal: Factory) -> None:
    file_bytes, max_bytes = 100, 300
    journal, rec = make_journal(file_bytes=file_bytes, max_bytes=max_bytes)
    worst: list[int] = []
    rec.on_batch = lambda: worst.append(disk_total(journal))
    journal.recover()
    journal.start()
    lines = [f"{i:08d}\n".encode() for i in range(300)]  # 9 bytes each
    for i, line in enumerate(lines):
        journal.append(line, i)
        if i % 7 == 0:
            journal.request_flush(f"f{i}")  # vary the batches
    journal.request_flush("end")
    rec.wait_for(300 + 44)
    assert all(ok for _, ok in rec.reports)
    assert max(worst) <= max_bytes + file_bytes
    files = journal.files()
    for path in files:
        data = path.read_bytes()
        assert len(data) <= file_bytes
        assert data.endswith(b"\n")  # lines never span files
    # The oldest files went first: what is left is the newest lines, without gaps.
    kept = content(journal)
    assert b"".join(lines).endswith(kept)
    assert disk_total(journal) == journal.size_bytes() <= max_bytes + file_bytes
    numbers = [int(p.name[9:15]) for p in files]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    drops = rec.messages(Severity.NOTICE)
    assert drops[0] == (
        "persistent log over its cap of 300 bytes: dropped oldest file "
        "messages-000001.log (99 bytes)"
    )
    assert len(drops) == numbers[0] - 1


def test_multiline_append_is_split_at_lines(make_journal: Factory) -> None:
    journal, rec = make_journal(file_bytes=50, max_bytes=1000)
    journal.start()
    block = b"".join(f"{i:09d}\n".encode() for i in range(23))  # 230 bytes
    journal.append(block, "block")
    journal.append(b"L" * 120 + b"\n", "long")  # one line larger than a file
    journal.append(b"after\n", "after")
    rec.wait_for(3)
    assert all(ok for _, ok in rec.reports)
    sizes = [path.stat().st_size for path in journal.files()]
    assert sizes == [50, 50, 50, 50, 30, 121, 6]
    assert content(journal) == block + b"L" * 120 + b"\n" + b"after\n"


def test_clear_is_atomic_and_restarts_numbering(make_journal: Factory) -> None:
    journal, rec = make_journal(file_bytes=20)
    directory = journal.dir
    journal.start()
    for i in range(10):
        journal.append(f"before {i}\n".encode(), i)
    journal.request_clear("clear")
    journal.append(b"after\n", "after")
    rec.wait_for(12)
    assert rec.result("clear") is True
    assert all(ok for _, ok in rec.reports)
    assert [p.name for p in journal.files()] == ["messages-000001.log"]
    assert content(journal) == b"after\n"
    assert journal.size_bytes() == 6
    assert not directory.with_name(directory.name + ".clearing").exists()
    assert sorted(p.name for p in directory.parent.iterdir()) == ["persistent"]


def test_clear_leaves_no_files(make_journal: Factory) -> None:
    journal, rec = make_journal()
    journal.start()
    journal.append(b"x\n", 1)
    journal.request_clear("clear")
    rec.wait_for(2)
    assert journal.files() == []
    assert journal.size_bytes() == 0
    assert list(journal.dir.iterdir()) == []


def test_recover_cuts_torn_tails(make_journal: Factory, tmp_path: Path) -> None:
    directory = tmp_path / "log" / "persistent"
    directory.mkdir(parents=True)
    (directory / "messages-000001.log").write_bytes(b"good\n" + b"\0" * 4096)
    (directory / "messages-000002.log").write_bytes(b"good\npart")
    (directory / "messages-000003.log").write_bytes(b"")
    journal, rec = make_journal()
    journal.recover()
    assert (directory / "messages-000001.log").read_bytes() == b"good\n"
    assert (directory / "messages-000002.log").read_bytes() == b"good\npart"[:5]
    recovered = sorted((tmp_path / "log" / "recovered").iterdir())
    assert [p.name.split(".")[0:2] for p in recovered] == [
        ["messages-000001", "log"],
        ["messages-000002", "log"],
    ]
    assert all(p.name.endswith(".torn") and p.name.split(".")[2].isdigit() for p in recovered)
    assert recovered[0].read_bytes() == b"\0" * 4096
    assert recovered[1].read_bytes() == b"part"
    warnings = rec.messages(Severity.WARNING)
    assert warnings == [
        "repaired persistent log messages-000001.log: cut 4096 damaged bytes, "
        f"set aside in recovered/{recovered[0].name}",
        "repaired persistent log messages-000002.log: cut 4 damaged bytes, "
        f"set aside in recovered/{recovered[1].name}",
    ]
    # Appending goes on in the newest file, on a clean line boundary.
    (directory / "messages-000003.log").unlink()
    journal.start()
    journal.append(b"new\n", "new")
    rec.wait_for(1)
    assert (directory / "messages-000002.log").read_bytes() == b"good\nnew\n"
    assert journal.size_bytes() == 5 + 9


def test_recover_cuts_from_the_line_of_a_nul(make_journal: Factory, tmp_path: Path) -> None:
    directory = tmp_path / "log" / "persistent"
    directory.mkdir(parents=True)
    path = directory / "messages-000007.log"
    path.write_bytes(b"one\ntwo\nth\0ree\nfour\n")
    journal, rec = make_journal()
    journal.recover()
    assert path.read_bytes() == b"one\ntwo\n"
    assert len(rec.notes) == 1


def test_recover_leaves_intact_files_alone(make_journal: Factory, tmp_path: Path) -> None:
    directory = tmp_path / "log" / "persistent"
    directory.mkdir(parents=True)
    (directory / "messages-000001.log").write_bytes(b"a\nb\n")
    journal, rec = make_journal()
    journal.recover()
    assert rec.notes == []
    assert not (tmp_path / "log" / "recovered").exists()


def reference_valid_length(data: bytes) -> int:
    nul = data.find(b"\0")
    head = data if nul < 0 else data[:nul]
    return head.rfind(b"\n") + 1


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=64) | st.lists(st.sampled_from([b"ab\n", b"\n", b"\0", b"x"])).map(b"".join)
)
def test_streaming_scan_matches_reference(data: bytes) -> None:
    saved = logfiles._CHUNK
    logfiles._CHUNK = 3  # many chunk boundaries in small inputs
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "f"
            path.write_bytes(data)
            assert valid_length(path) == (reference_valid_length(data), len(data))
    finally:
        logfiles._CHUNK = saved


def test_recover_removes_leftover_clearing_dir(make_journal: Factory, tmp_path: Path) -> None:
    directory = tmp_path / "log" / "persistent"
    clearing = tmp_path / "log" / "persistent.clearing"
    clearing.mkdir(parents=True)
    (clearing / "messages-000001.log").write_bytes(b"old\n")
    journal, _ = make_journal()
    journal.recover()  # the crash came after the rename, before the new dir was made
    assert not clearing.exists()
    assert directory.is_dir()
    assert journal.files() == []


def test_keep_free_floor_pauses_and_resumes(make_journal: Factory) -> None:
    journal, rec = make_journal(keep_free_bytes=1 << 62)  # more than any disk has free
    journal.start()
    for i in range(3):
        journal.append(f"lost {i}\n".encode(), i)
        rec.wait_for(i + 1)  # three batches, one pause notice
    assert [ok for _, ok in rec.reports] == [False, False, False]
    assert journal.paused
    assert rec.messages(Severity.WARNING) == [
        f"persistent log paused: less than {1 << 62} bytes free on {journal.dir}"
    ]
    journal.request_flush("flush")
    rec.wait_for(4)
    assert rec.result("flush") is True  # nothing was queued before it in its batch
    journal.keep_free_bytes = 0  # space came back
    journal.append(b"kept\n", "kept")
    rec.wait_for(5)
    assert rec.result("kept") is True
    assert not journal.paused
    assert rec.messages(Severity.NOTICE) == [
        "persistent log resumed: 3 entries were not stored while paused"
    ]
    assert content(journal) == b"kept\n"


def test_flush_reports_whether_earlier_appends_were_stored(make_journal: Factory) -> None:
    journal, rec = make_journal(keep_free_bytes=1 << 62)
    journal.append(b"x\n", "x")
    journal.request_flush("flush")
    journal.start()
    rec.wait_for(2)
    assert rec.reports == [("x", False), ("flush", False)]


@pytest.fixture
def file_size_limit() -> Iterator[Callable[[int], None]]:
    """Make the kernel refuse writes past a size (EFBIG), as a full disk would refuse them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def limit(size: int) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))

    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)


def test_write_error_leaves_no_partial_line(
    make_journal: Factory, file_size_limit: Callable[[int], None]
) -> None:
    journal, rec = make_journal()
    journal.start()
    journal.append(b"first\n", "first")
    rec.wait_for(1)
    path = journal.files()[0]
    file_size_limit(100)
    # The kernel accepts a short write up to the limit, then refuses the rest (EFBIG).
    journal.append(b"a" * 59 + b"\n", "a")
    journal.append(b"b" * 199 + b"\n", "b")
    rec.wait_for(3)
    assert rec.result("first") is True
    assert rec.result("b") is False
    assert path.read_bytes() in (b"first\n", b"first\n" + b"a" * 59 + b"\n")
    assert journal.size_bytes() == path.stat().st_size
    warnings = rec.messages(Severity.WARNING)
    assert len(warnings) == 1
    assert warnings[0].startswith("persistent log write failed: ")
    journal.append(b"c" * 299 + b"\n", "c")  # still too big: no second warning
    rec.wait_for(4)
    assert rec.result("c") is False
    assert len(rec.messages(Severity.WARNING)) == 1
    file_size_limit(resource.RLIM_INFINITY)
    journal.append(b"later\n", "later")
    rec.wait_for(5)
    assert rec.result("later") is True
    assert path.read_bytes().endswith(b"\nlater\n")
    assert b"b" not in path.read_bytes()
    assert rec.messages(Severity.NOTICE)[0].startswith("persistent log works again: ")


def test_close_drains_everything(make_journal: Factory) -> None:
    journal, rec = make_journal()
    journal.start()
    for i in range(2000):
        journal.append(b"entry\n", i)
    journal.request_flush("flush")
    journal.close()
    assert len(rec.reports) == 2001
    assert all(ok for _, ok in rec.reports)
    assert content(journal) == b"entry\n" * 2000
    journal.close()  # idempotent
    assert journal.closed
    with pytest.raises(RuntimeError):
        journal.append(b"too late\n", "late")


def test_close_without_start_still_reports(make_journal: Factory) -> None:
    journal, rec = make_journal()
    journal.append(b"x\n", "x")
    journal.close()
    assert rec.reports == [("x", True)]


def test_append_rejects_incomplete_lines(make_journal: Factory) -> None:
    journal, _ = make_journal()
    with pytest.raises(ValueError):
        journal.append(b"no newline", 1)


def test_start_enforces_a_lowered_cap(make_journal: Factory, tmp_path: Path) -> None:
    directory = tmp_path / "log" / "persistent"
    directory.mkdir(parents=True)
    for seq in (1, 2, 3):
        (directory / f"messages-{seq:06d}.log").write_bytes(b"x" * 99 + b"\n")
    journal, rec = make_journal(max_bytes=150, file_bytes=100)
    journal.recover()
    journal.start()
    journal.request_flush("f")
    rec.wait_for(1)
    assert [p.name for p in journal.files()] == ["messages-000003.log"]
    assert len(rec.messages(Severity.NOTICE)) == 2


CHILD = r"""
import sys, threading
from pathlib import Path
from vapixlog.syslog import Journal

def done(reports):
    ok = [t for t, stored in reports if stored]
    if ok:
        sys.stdout.write(f"{max(ok)}\n")
        sys.stdout.flush()

journal = Journal(Path(sys.argv[1]), max_bytes=1 << 30, file_bytes=1 << 16,
                  keep_free_bytes=0, notify=lambda s, m: None, on_batch_done=done)
journal.recover()
journal.start()
i = 0
while True:
    journal.append(f"entry {i:08d}\n".encode(), i)
    i += 1
"""


def test_acknowledged_entries_survive_sigkill(tmp_path: Path) -> None:
    directory = tmp_path / "persistent"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    acked = -1
    try:
        for line in child.stdout:
            acked = int(line)
            if acked >= 5000:
                break
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert acked >= 5000
    journal = Journal(
        directory,
        max_bytes=1 << 30,
        file_bytes=1 << 16,
        keep_free_bytes=0,
        notify=lambda severity, message: None,
        on_batch_done=lambda reports: None,
    )
    journal.recover()
    lines = b"".join(p.read_bytes() for p in journal.files()).decode().splitlines()
    # Every acknowledged entry is there, in order, with no gap and no damage.
    assert lines[: acked + 1] == [f"entry {i:08d}" for i in range(acked + 1)]
    assert lines == [f"entry {i:08d}" for i in range(len(lines))]
    assert all(p.stat().st_size <= 1 << 16 for p in journal.files())


def test_a_file_made_again_after_it_vanished_gets_its_name_synced(
    make_journal: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An idle journal keeps no file open, and reopening its file syncs no directory: the
    name is durable already. Unless the file is gone (removed from outside): the new one's
    name is synced before any entry in it is reported stored."""
    journal, rec = make_journal()
    journal.recover()
    journal.start()
    journal.append(b"first\n", 1)
    rec.wait_for(1)
    synced: list[Path] = []
    real = store_module.fsync_dir
    monkeypatch.setattr(store_module, "fsync_dir", lambda d: (synced.append(d), real(d)))
    deadline = time.monotonic() + 5
    while journal._store._fd is not None:
        assert time.monotonic() < deadline, "the idle journal kept its file open"
        time.sleep(0.01)
    journal.append(b"second\n", 2)
    rec.wait_for(2)
    assert synced == []  # the same file again: its name was synced when it was made
    while journal._store._fd is not None:  # idle again: the file is closed
        assert time.monotonic() < deadline + 5, "the idle journal kept its file open"
        time.sleep(0.01)
    journal.files()[0].unlink()
    journal.append(b"third\n", 3)
    rec.wait_for(3)
    assert rec.reports == [(1, True), (2, True), (3, True)]
    assert synced == [journal.dir] and content(journal) == b"third\n"
