"""Verified report downloads: a tar that is truncated or corrupt is an error, never a file.

`TarCheck` follows the tar structure as the bytes stream by (nothing is read back, nothing
held in memory): every header block must carry a valid checksum, every member's data (pax
and GNU extension records included) must be there in full, padded to 512 bytes, and the
archive must end with its two zero blocks (POSIX). This catches a body cut at any byte, also
where the device sent no `Content-Length` and the HTTP layer cannot tell: a report is
streamed chunked, and a connection closed between two chunks would otherwise look complete.

`download_tar` writes `<file>.part`, checks it, flushes it to disk and renames it; a failed
check removes the part file, and a path that already exists is only replaced by a checked one.
"""

from __future__ import annotations

import os
import re
import tarfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

import orjson

from vapixlog.client._errors import ArchiveError

BLOCK = tarfile.BLOCKSIZE  # 512
_ZERO = bytes(BLOCK)
_MAX_PAX = 64 << 10
# Records that describe the next member rather than being one.
_EXTENSIONS = {tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK}


class TarCheck:
    """Feed the bytes of a tar with `feed`, then `finish`; `ArchiveError` where it breaks."""

    def __init__(self, url: str | None = None) -> None:
        self._url = url
        self._pending = b""  # an incomplete block
        self._skip = 0  # bytes of member data (with padding) still to come
        self._zeros = 0  # consecutive zero blocks seen
        self._ended = False
        self._pax: bytearray | None = None  # a pax header's records, being collected
        self._pax_size: int | None = None  # the size a pax header gives the next member
        self.offset = 0  # bytes fed so far
        self.members = 0

    def feed(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            if self._skip:
                take = min(self._skip, len(view))
                if self._pax is not None and len(self._pax) < _MAX_PAX:
                    self._pax += view[:take]
                self._skip -= take
                self.offset += take
                view = view[take:]
                continue
            need = BLOCK - len(self._pending)
            self._pending += bytes(view[:need])
            self.offset += min(need, len(view))
            view = view[need:]
            if len(self._pending) == BLOCK:
                block, self._pending = self._pending, b""
                self._block(block)

    def _block(self, block: bytes) -> None:
        if self._ended:
            if block != _ZERO:  # only zero padding may follow the end of the archive
                self._fail(f"data after the end of the archive at byte {self.offset - BLOCK}")
            return
        if block == _ZERO:
            self._zeros += 1
            self._ended = self._zeros >= 2
            return
        if self._zeros:
            self._fail(f"a lone zero block at byte {self.offset - 2 * BLOCK}")
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            self._fail(f"bad header at byte {self.offset - BLOCK} ({exc})")
        self._end_pax()
        size = info.size
        if self._pax_size is not None and info.type not in _EXTENSIONS:
            size, self._pax_size = self._pax_size, None
        if info.type == tarfile.XHDTYPE:
            self._pax = bytearray()
        else:
            self.members += info.type not in _EXTENSIONS
        self._skip = -(-size // BLOCK) * BLOCK

    def _end_pax(self) -> None:
        """A pax header's records are complete: keep the `size` it gives the next member."""
        if self._pax is None:
            return
        match = re.search(rb"(?:^|\n)\d+ size=(\d+)\n", bytes(self._pax))
        self._pax = None
        if match:
            self._pax_size = int(match[1])

    def finish(self) -> None:
        """The stream ended: raise unless it ended as a complete archive."""
        if self._ended and not self._pending:
            return
        if self._skip or self._pending:
            what = "in the middle of a member's data" if self._skip else "inside a block"
            self._fail(f"truncated at byte {self.offset}, {what}")
        self._fail(
            f"truncated at byte {self.offset}: no end-of-archive marker"
            f" after {self.members} member{'s' if self.members != 1 else ''}"
        )

    def _fail(self, why: str) -> None:
        where = f"{self._url}: " if self._url else ""
        raise ArchiveError(
            f"{where}the server report is not a complete tar archive: {why}", url=self._url
        )


class _CheckingWriter:
    """A binary file object that writes through to `file` and checks what passes."""

    def __init__(self, file: IO[bytes], check: TarCheck) -> None:
        self._file = file
        self._check = check

    def write(self, data: bytes) -> int:
        self._check.feed(data)
        return self._file.write(data)


Download = Callable[[IO[bytes]], Awaitable[int]]


async def download_tar(
    download: Download, dest: str | os.PathLike[str] | IO[bytes], url: str | None = None
) -> int:
    """Run `download(file)` (it writes the body into `file`, returns its size) into `dest`,
    checking the tar as it goes. A path: written as `<path>.part`, synced to disk and renamed
    only when complete and checked. A file object: written as it comes (the caller owns it;
    on `ArchiveError` what was written is not a complete archive)."""
    check = TarCheck(url)
    if not isinstance(dest, str | os.PathLike):
        size = await download(_CheckingWriter(dest, check))  # type: ignore[arg-type]
        check.finish()
        return size
    path = Path(dest)
    part = path.with_name(path.name + ".part")
    try:
        with part.open("wb") as file:
            size = await download(_CheckingWriter(file, check))  # type: ignore[arg-type]
            check.finish()
            file.flush()
            os.fsync(file.fileno())
        part.replace(path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    sync_dir(path.parent)
    return size


def sync_dir(folder: Path) -> None:
    """Make a rename or a new file in `folder` durable (best effort where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sidecar_path(archive: Path) -> Path:
    """`<archive>.json` (DECISIONS 8)."""
    return archive.with_name(archive.name + ".json")


def write_sidecar(archive: Path, document: dict[str, Any]) -> Path:
    """Write the sidecar of `archive` atomically (a part file, synced, renamed)."""
    path = sidecar_path(archive)
    part = path.with_name(path.name + ".part")
    with part.open("wb") as file:
        file.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
        file.flush()
        os.fsync(file.fileno())
    part.replace(path)
    sync_dir(path.parent)
    return path
