"""Log archives for `serverreport.cgi`: a streamed tar and a spooled zip, in bounded memory.

The set of files and their sizes is fixed when the archive is planned (`plan_archive`): every
file is opened first and `fstat`ed, and only that many bytes are ever read, through the open
file descriptor. A persistent file that is rotated away or cleared meanwhile is still read in
full; lines appended after the plan are left out, and a persistent file's size is cut back to
its last complete line. So the total length is known before the first byte is sent.

File data is read with `os.pread` in worker threads, about 1 MiB at a time, and never held
in memory beyond one chunk per transfer. The volatile log is a snapshot of its lines (shared
strings, not a copy of the text) encoded chunk by chunk.

Tar headers come from `tarfile.TarInfo.tobuf` in POSIX pax format (plain ustar headers unless
a name or size needs a pax record); each member is padded to 512 bytes and the archive ends
with two zero blocks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tarfile
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import anyio.to_thread

from vapixlog.syslog.logfiles import RECOVERED_DIR

_log = logging.getLogger(__name__)

CHUNK = 1 << 20
BLOCK = tarfile.BLOCKSIZE  # 512
ZIP_SPOOL_BYTES = 8 << 20
_ZIP_EPOCH = 315_576_000  # 1980-01-02 UTC: zip cannot store older times
# A persistent file is cut back to its last newline if one is within this many bytes of
# its end; a longer tail without one is kept as it is (no entry is that long).
_TAIL_PROBE = 64 << 10
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)

# Member paths, as the log folders of a device.
VOLATILE_MEMBER = "var/log/messages"
PERSISTENT_PREFIX = "var/log/persistent/"
RECOVERED_PREFIX = "var/log/recovered/"
REPORT_MEMBER = "serverreport_cgi.txt"


def lines_size(lines: list[str]) -> int:
    """Bytes of `_lines_chunks(lines)`: each line in UTF-8 plus its newline."""
    return sum(
        len(line) + 1 if line.isascii() else len(line.encode("utf-8", "surrogatepass")) + 1
        for line in lines
    )


def _lines_chunks(lines: list[str]) -> Iterator[bytes]:
    """`lines` as UTF-8, each ending in a newline, in chunks of about `CHUNK` bytes."""
    batch: list[str] = []
    size = 0
    for line in lines:
        batch.append(line)
        size += len(line) + 1
        if size >= CHUNK:
            yield ("\n".join(batch) + "\n").encode("utf-8", "surrogatepass")
            batch, size = [], 0
    if batch:
        yield ("\n".join(batch) + "\n").encode("utf-8", "surrogatepass")


@dataclass
class Member:
    """One archive member: in-memory `data`, volatile `lines`, or an open file `fd`."""

    name: str
    size: int
    mtime: int
    data: bytes | None = None
    lines: list[str] | None = None
    fd: int | None = None


@dataclass
class ArchivePlan:
    """The members of an archive, with their sizes fixed. Owns the file descriptors."""

    members: list[Member] = field(default_factory=list)

    def close(self) -> None:
        """Close every file descriptor (idempotent)."""
        for member in self.members:
            if member.fd is not None:
                fd, member.fd = member.fd, None
                with contextlib.suppress(OSError):
                    os.close(fd)


def _open_file(path: Path, *, whole_lines: bool) -> tuple[int, int, int] | None:
    """(fd, size, mtime) of a regular file, or None if it is gone or not a regular file."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:  # rotated away or cleared between listing and opening
        return None
    except OSError as error:  # a symlink (O_NOFOLLOW), no permission, ...
        _log.warning("serverreport: leaving out %s: %s", path, error)
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return None
        size = st.st_size
        if whole_lines and size > 0:
            # The writer may be in the middle of appending: end at the last complete line.
            probe = min(size, _TAIL_PROBE)
            tail = os.pread(fd, probe, size - probe)
            cut = tail.rfind(b"\n")
            if cut >= 0 or probe == size:
                size = size - len(tail) + cut + 1
        return fd, size, int(st.st_mtime)
    except BaseException:
        os.close(fd)
        raise


def open_log_files(persistent: list[Path], recovered_dir: Path, plan: ArchivePlan) -> None:
    """Open the persistent files and every file in `recovered_dir`, adding them to `plan`.

    Blocking (run it in a thread). On an error the already opened files stay in `plan`,
    whose owner closes them.
    """
    for path in persistent:
        opened = _open_file(path, whole_lines=True)
        if opened is not None:
            fd, size, mtime = opened
            plan.members.append(Member(PERSISTENT_PREFIX + path.name, size, mtime, fd=fd))
    try:
        recovered = sorted(recovered_dir.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        recovered = []
    for path in recovered:
        if path.name.startswith("."):  # a copy in progress (logfiles._copy_durably)
            continue
        opened = _open_file(path, whole_lines=False)
        if opened is not None:
            fd, size, mtime = opened
            plan.members.append(Member(RECOVERED_PREFIX + path.name, size, mtime, fd=fd))


def recovered_dir_of(persistent_dir: Path) -> Path:
    return persistent_dir.parent / RECOVERED_DIR


def _read_exact(fd: int, size: int, offset: int, name: str) -> bytes:
    """`size` bytes at `offset`; a file that turned out shorter is padded with newlines."""
    data = os.pread(fd, size, offset)
    while len(data) < size:
        more = os.pread(fd, size - len(data), offset + len(data))
        if not more:
            _log.warning(
                "serverreport: %s is shorter than when the archive was planned; "
                "padding %d bytes with newlines",
                name,
                size - len(data),
            )
            return data + b"\n" * (size - len(data))
        data += more
    return data


def _member_chunks_sync(member: Member) -> Iterator[bytes]:
    """The data of one member, in chunks (blocking; for the zip thread)."""
    if member.data is not None:
        yield member.data
    elif member.lines is not None:
        yield from _lines_chunks(member.lines)
    elif member.fd is not None:
        offset = 0
        while offset < member.size:
            n = min(CHUNK, member.size - offset)
            yield _read_exact(member.fd, n, offset, member.name)
            offset += n


# ----- tar --------------------------------------------------------------------------------


def _tar_header(member: Member) -> bytes:
    info = tarfile.TarInfo(member.name)
    info.size = member.size
    info.mtime = member.mtime
    info.mode = 0o644
    info.type = tarfile.REGTYPE
    info.uname = info.gname = "root"
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape")


def _padding(size: int) -> int:
    return -size % BLOCK


class TarStream:
    """An uncompressed POSIX tar of a plan, streamed; `length` is known before it starts."""

    def __init__(self, plan: ArchivePlan) -> None:
        self.plan = plan
        self._headers = [_tar_header(member) for member in plan.members]
        self.length = 2 * BLOCK + sum(
            len(header) + member.size + _padding(member.size)
            for header, member in zip(self._headers, plan.members, strict=True)
        )

    async def chunks(self) -> AsyncIterator[bytes]:
        """The archive bytes. The file descriptors are closed when it ends, however."""
        try:
            for header, member in zip(self._headers, self.plan.members, strict=True):
                yield header
                if member.fd is not None:
                    fd, offset = member.fd, 0
                    while offset < member.size:
                        n = min(CHUNK, member.size - offset)
                        # Not abandoned on cancellation: the fd is never closed under a read.
                        yield await anyio.to_thread.run_sync(
                            _read_exact, fd, n, offset, member.name
                        )
                        offset += n
                else:
                    for chunk in _member_chunks_sync(member):
                        yield chunk
                if pad := _padding(member.size):
                    yield bytes(pad)
            yield bytes(2 * BLOCK)
        finally:
            self.plan.close()


# ----- zip --------------------------------------------------------------------------------


def build_zip(plan: ArchivePlan) -> IO[bytes]:
    """A deflated zip of the plan in a spooled temporary file, rewound (blocking).

    At most `ZIP_SPOOL_BYTES` stay in memory; a bigger archive goes to a temporary file.
    The caller closes the returned file; the plan's descriptors are left open.
    """
    spool = tempfile.SpooledTemporaryFile(max_size=ZIP_SPOOL_BYTES)  # noqa: SIM115
    try:
        with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for member in plan.members:
                stamp = time.localtime(max(member.mtime, _ZIP_EPOCH))[:6]
                info = zipfile.ZipInfo(member.name, stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                info.file_size = member.size  # lets zipfile choose zip64 when needed
                with archive.open(info, "w") as out:
                    for chunk in _member_chunks_sync(member):
                        out.write(chunk)
        spool.seek(0)
        return spool
    except BaseException:
        spool.close()
        raise


async def file_chunks(file: IO[bytes]) -> AsyncIterator[bytes]:
    """The rest of `file` in chunks read in a worker thread; closes it when done, however."""
    try:
        while chunk := await anyio.to_thread.run_sync(file.read, CHUNK):
            yield chunk
    finally:
        file.close()
