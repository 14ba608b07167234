"""Streams for `serverreport.cgi`: a text, a tar and a zip, each in bounded memory.

A report is planned first (`ArchivePlan`): its members and their sizes are fixed before the
first byte goes out. A member is a sequence of parts: in-memory bytes, a snapshot of volatile
log lines (shared strings, not a copy of the text), or a slice of an open log file. Every file
is opened and `fstat`ed when the plan is made, and only that many bytes are ever read, through
the open file descriptor: a persistent file that is rotated away or cleared meanwhile is still
read in full, lines appended after the plan are left out, and a persistent file's size is cut
back to its last complete line.

File data is read with `os.pread` in worker threads, about 1 MiB at a time, and never held
in memory beyond one chunk per transfer; volatile lines are encoded chunk by chunk.

- tar (`TarStream`): headers from `tarfile.TarInfo.tobuf` in POSIX pax format (plain ustar
  headers unless a name or size needs a pax record); each member is padded to 512 bytes and
  the archive ends with two zero blocks.
- zip (`zip_chunks`): written by `zipfile` into a sink that cannot seek, so every member is
  deflated as it streams and followed by a data descriptor (its CRC and sizes); the central
  directory comes last. Deflating runs in worker threads.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import stat
import tarfile
import time
import zipfile
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio.to_thread

_log = logging.getLogger(__name__)

CHUNK = 1 << 20
BLOCK = tarfile.BLOCKSIZE  # 512
_ZIP_EPOCH = 315_576_000  # 1980-01-02 UTC: zip cannot store older times
# A persistent file is cut back to its last newline if one is within this many bytes of
# its end; a longer tail without one is kept as it is (no entry is that long).
_TAIL_PROBE = 64 << 10
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


@dataclass(frozen=True)
class FileSlice:
    """The first `size` bytes of an open file (the plan owns the descriptor)."""

    fd: int
    size: int
    name: str  # for warnings


# bytes: in memory; list[str]: log lines, each written with a newline; FileSlice: a file.
Part = bytes | list[str] | FileSlice


def lines_size(lines: list[str]) -> int:
    """Bytes of `lines` as written: each line in UTF-8 plus its newline."""
    return sum(
        len(line) + 1 if line.isascii() else len(line.encode("utf-8", "surrogatepass")) + 1
        for line in lines
    )


def _part_size(part: Part) -> int:
    if isinstance(part, bytes):
        return len(part)
    if isinstance(part, FileSlice):
        return part.size
    return lines_size(part)


@dataclass
class Member:
    """One file of a report: its parts, one after the other; `size` is their total."""

    name: str
    mtime: int
    parts: list[Part]
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = sum(_part_size(part) for part in self.parts)


@dataclass
class ArchivePlan:
    """The members of a report, with their sizes fixed. Owns the file descriptors."""

    members: list[Member] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)

    def open_file(self, path: Path, *, whole_lines: bool) -> FileSlice | None:
        """Open a regular file (blocking); None if it is gone or not a regular file.

        With `whole_lines` the slice ends at the file's last complete line (a writer may be
        in the middle of appending one).
        """
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
                probe = min(size, _TAIL_PROBE)
                tail = os.pread(fd, probe, size - probe)
                cut = tail.rfind(b"\n")
                if cut >= 0 or probe == size:
                    size = size - len(tail) + cut + 1
        except BaseException:
            os.close(fd)
            raise
        self.fds.append(fd)
        return FileSlice(fd, size, path.name)

    def close(self) -> None:
        """Close every file descriptor (idempotent)."""
        fds, self.fds = self.fds, []
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def _read_exact(fd: int, size: int, offset: int, name: str) -> bytes:
    """`size` bytes at `offset`; a file that turned out shorter is padded with newlines."""
    data = os.pread(fd, size, offset)
    while len(data) < size:
        more = os.pread(fd, size - len(data), offset + len(data))
        if not more:
            _log.warning(
                "serverreport: %s is shorter than when the report was planned; "
                "padding %d bytes with newlines",
                name,
                size - len(data),
            )
            return data + b"\n" * (size - len(data))
        data += more
    return data


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


async def member_chunks(member: Member) -> AsyncGenerator[bytes, None]:
    """The bytes of one member, in chunks of at most about `CHUNK`."""
    for part in member.parts:
        if isinstance(part, bytes):
            if part:
                yield part
        elif isinstance(part, FileSlice):
            offset = 0
            while offset < part.size:
                n = min(CHUNK, part.size - offset)
                # Not abandoned on cancellation: the fd is never closed under a read.
                yield await anyio.to_thread.run_sync(_read_exact, part.fd, n, offset, part.name)
                offset += n
        else:
            for chunk in _lines_chunks(part):
                yield chunk


async def text_chunks(plan: ArchivePlan) -> AsyncGenerator[bytes, None]:
    """The members of `plan` one after the other, without any framing (the text report)."""
    for member in plan.members:
        async with contextlib.aclosing(member_chunks(member)) as chunks:
            async for chunk in chunks:
                yield chunk


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

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """The archive bytes (the plan's owner closes its files afterwards)."""
        for header, member in zip(self._headers, self.plan.members, strict=True):
            yield header
            async with contextlib.aclosing(member_chunks(member)) as chunks:
                async for chunk in chunks:
                    yield chunk
            if pad := _padding(member.size):
                yield bytes(pad)
        yield bytes(2 * BLOCK)


# ----- zip --------------------------------------------------------------------------------


class _Sink(io.RawIOBase):
    """Where `zipfile` writes: a buffer that is emptied after every chunk. It cannot tell
    or seek, so `zipfile` streams: data descriptors instead of rewritten local headers."""

    def __init__(self) -> None:
        super().__init__()
        self._buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._buffer += data
        return len(data)

    def pending(self) -> int:
        return len(self._buffer)

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


def _zip_info(member: Member) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(member.name, time.localtime(max(member.mtime, _ZIP_EPOCH))[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    info.file_size = member.size  # lets zipfile choose zip64 when needed
    return info


async def zip_chunks(plan: ArchivePlan) -> AsyncGenerator[bytes, None]:
    """A deflated zip of the plan, streamed (the plan's owner closes its files afterwards)."""
    sink = _Sink()
    archive = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED)
    for member in plan.members:
        out = archive.open(_zip_info(member), "w")
        async with contextlib.aclosing(member_chunks(member)) as chunks:
            async for chunk in chunks:
                await anyio.to_thread.run_sync(out.write, chunk)
                if sink.pending() >= CHUNK // 4:
                    yield sink.take()
        out.close()  # flushes the deflate stream and writes the data descriptor
        if sink.pending():
            yield sink.take()
    archive.close()  # the central directory
    yield sink.take()
