"""The persistent log files on disk: naming, listing, and repair of torn tails.

Files are `messages-000001.log`, `messages-000002.log`, ... in one directory; the highest
number is the file being appended to. A crash or power cut can leave the end of a file torn:
a partial last line, or a run of NUL bytes where the filesystem had allocated blocks whose
data never reached the disk. `repair` cuts such a tail off and keeps a copy of it.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import NamedTuple

from vapixlog.files import fsync_dir

FILE_MODE = 0o640
DIR_MODE = 0o750
RECOVERED_DIR = "recovered"
# Big enough for few syscalls, small enough that a huge file never sits in memory.
_CHUNK = 1 << 20
_NAME = re.compile(r"messages-(\d{6,})\.log")


def log_name(seq: int) -> str:
    """The file name of sequence number `seq` (zero padded, so names also sort by age)."""
    return f"messages-{seq:06d}.log"


def list_logs(directory: Path) -> list[tuple[int, Path]]:
    """(sequence number, path) of every log file in `directory`, oldest first.

    Only regular files count: a directory or a dangling symlink that happens to have a log
    file's name is not ours, and opening it would fail.
    """
    found = []
    try:
        for path in directory.iterdir():
            match = _NAME.fullmatch(path.name)
            if match is not None and path.is_file():
                found.append((int(match.group(1)), path))
    except FileNotFoundError:  # no dir yet, or it is being cleared: no files
        return []
    found.sort()
    return found


def valid_length(path: Path) -> tuple[int, int]:
    """(length of the valid prefix, file size) of a log file.

    The valid prefix is the longest run of complete lines (each ending in a newline) that
    contains no NUL byte. The file is streamed in chunks; only `find`/`rfind` touch the data.
    """
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        offset = valid = 0
        while chunk := file.read(_CHUNK):
            nul = chunk.find(b"\0")
            end = len(chunk) if nul < 0 else nul
            newline = chunk.rfind(b"\n", 0, end)
            if newline >= 0:
                valid = offset + newline + 1
            if nul >= 0:
                break
            offset += len(chunk)
    return valid, size


def _copy_durably(source: Path, start: int, target: Path) -> None:
    """Copy `source[start:]` to `target` so that a crash leaves either no target or all of it."""
    tmp = target.with_name(f".{target.name}.tmp")
    with source.open("rb") as src:
        src.seek(start)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            while chunk := src.read(_CHUNK):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    tmp.replace(target)
    fsync_dir(target.parent)


class Repair(NamedTuple):
    """What `repair` did to one file."""

    cut_bytes: int
    set_aside: Path


def repair(path: Path, recovered_dir: Path) -> Repair | None:
    """Cut the torn tail off `path`, keeping a copy in `recovered_dir`; None if it was intact.

    The copy is made durable before the file is truncated: a crash in between only means the
    next repair sets the same tail aside once more.
    """
    valid, size = valid_length(path)
    if valid == size:
        return None
    recovered_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    stamp = time.time_ns() // 1_000_000
    target = recovered_dir / f"{path.name}.{stamp}.torn"
    while target.exists():  # two repairs within one millisecond
        stamp += 1
        target = recovered_dir / f"{path.name}.{stamp}.torn"
    _copy_durably(path, valid, target)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, valid)
        os.fsync(fd)
    finally:
        os.close(fd)
    return Repair(size - valid, target)
