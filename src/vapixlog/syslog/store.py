"""The writer side of the persistent log files: append, sync, rotate, cap, clear.

Used only by the journal's writer thread (or by `Journal.close()` when it was never started),
so it needs no locking. `total` is read by other threads as a plain int, which is safe.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from vapixlog.files import fsync_dir
from vapixlog.severity import Severity
from vapixlog.syslog.logfiles import DIR_MODE, FILE_MODE, list_logs, log_name

_log = logging.getLogger(__name__)


def clearing_dir(directory: Path) -> Path:
    """Where `clear` renames the log dir before deleting it."""
    return directory.with_name(directory.name + ".clearing")


class LogStore:
    """The files `messages-NNNNNN.log` of one directory; the highest number is current."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        file_bytes: int,
        notify: Callable[[Severity, str], None],
        label: str = "persistent log",
    ) -> None:
        self.dir = directory
        self.label = label  # names the log in notices
        self.max_bytes = max_bytes
        self.file_bytes = file_bytes
        self._notify = notify
        self._fd: int | None = None
        self._seq = 1
        self._sizes: dict[int, int] = {}  # sequence number -> bytes, oldest first
        self.total = 0
        self._synced = 0  # size of the current file at its last successful fdatasync
        self._dirty = False  # the current file may hold bytes past `_synced`
        # The file whose name is durable (its directory synced since it was created): an
        # idle journal closes its file, and opening it again then costs no directory sync.
        self._named: int | None = None
        self.syncs = 0  # fdatasync calls, rotations included

    def scan(self) -> None:
        """Learn the files and their sizes from disk (before writing starts)."""
        self._sizes = {seq: path.stat().st_size for seq, path in list_logs(self.dir)}
        self.total = sum(self._sizes.values())
        self._seq = max(self._sizes, default=1)
        self._named = None

    @property
    def current_size(self) -> int:
        return self._sizes.get(self._seq, 0)

    def prepare(self) -> int:
        """The open current file, cut back to its last synced size if a write failed."""
        fd = self._open_current()
        if self._dirty:
            os.ftruncate(fd, self._synced)
            self._dirty = False
            self._set_size(self._synced)
        return fd

    def write_sync(self, fd: int, parts: list[bytes]) -> None:
        """Append `parts` with as few writes as possible, then one fdatasync."""
        if parts:
            self._dirty = True
            view = memoryview(b"".join(parts))
            written = 0
            while written < len(view):  # a short write is not an error: go on
                count = os.write(fd, view[written:])
                if count == 0:  # would loop forever; treat like a full disk
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                written += count
            self._set_size(self._synced + written)
        os.fdatasync(fd)
        self.syncs += 1
        self._synced = self.current_size
        self._dirty = False

    def undo_unsynced(self) -> None:
        """After an error: never leave a partial line or unreported data in the file."""
        if self._fd is None or not self._dirty:
            return
        try:
            os.ftruncate(self._fd, self._synced)
        except OSError:
            return  # still dirty: prepare() retries before the next write
        self._dirty = False
        self._set_size(self._synced)

    def rotate(self) -> int:
        """Close the (synced) current file, start the next one, then enforce the cap."""
        self.close()
        self._seq += 1
        fd = self._open_current()
        self.enforce_cap()
        return fd

    def enforce_cap(self) -> None:
        """Drop the oldest files while over `max_bytes`, never the current one."""
        while self.total > self.max_bytes and len(self._sizes) > 1:
            seq = next(iter(self._sizes))
            path = self.dir / log_name(seq)
            try:
                path.unlink(missing_ok=True)
                fsync_dir(self.dir)
            except OSError as error:
                self._notify(Severity.WARNING, f"cannot drop old {self.label} file: {error}")
                return
            size = self._sizes.pop(seq)
            self.total -= size
            self._notify(
                Severity.NOTICE,
                f"{self.label} over its cap of {self.max_bytes} bytes: dropped oldest file "
                f"{path.name} ({size} bytes)",
            )

    def clear(self) -> bool:
        """Rename the dir away, make a new empty one, then delete the old contents.

        The rename is the atomic step: after a crash, either every file is still in place or
        recover() finds only the `.clearing` dir and deletes it.
        """
        self.close()
        clearing = clearing_dir(self.dir)
        try:
            if clearing.exists():
                shutil.rmtree(clearing)
            if self.dir.exists():
                self.dir.rename(clearing)
        except OSError as error:
            self._notify(Severity.WARNING, f"cannot clear the {self.label}: {error}")
            self.scan()
            return False
        self._sizes, self.total, self._seq, self._synced, self._dirty = {}, 0, 1, 0, False
        self._named = None
        try:
            self.dir.mkdir(mode=DIR_MODE)
            fsync_dir(self.dir.parent)
            shutil.rmtree(clearing)
        except OSError as error:  # the log is cleared; only cleanup is left over
            self._notify(Severity.WARNING, f"{self.label} cleared, cleanup failed: {error}")
        return True

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            except OSError:
                _log.exception("closing a persistent log file failed")

    def _open_current(self) -> int:
        if self._fd is not None:
            return self._fd
        path = self.dir / log_name(self._seq)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:  # a new file (or its directory is gone: a failed clear)
            self.dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
            self._named = None  # whatever was synced before, this name is new
        try:
            size = os.fstat(fd).st_size
            if self._named != self._seq:
                fsync_dir(self.dir)  # make the new file's name durable
                self._named = self._seq
        except OSError:
            os.close(fd)
            raise
        self._fd = fd
        if not self._dirty:  # else `prepare` cuts the file back to `_synced`
            self._synced = size
            self._set_size(size)
        return fd

    def _set_size(self, size: int) -> None:
        self.total += size - self._sizes.get(self._seq, 0)
        self._sizes[self._seq] = size
