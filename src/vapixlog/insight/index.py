"""`logs-index.sqlite`: an SQLite FTS5 index of every line of a capture folder's archives
(device, boot, time, severity, tag, pid, message), built incrementally.

An archive is indexed once: a second run reads only archives that are new or whose size or
modification time changed, and drops those that are gone. A file that is no readable server
report is recorded with its problem (and named by `build_index`), so it is not read again
either until it changes.

The index can always be built again from the archives, so it is written for speed: a
rollback journal without fsync (a killed run loses nothing but its last transaction; a
power cut may cost the index, which a rebuild brings back), a large page cache, the rows
inserted in batches, and, when a run adds more archives than the index holds, the secondary
B-tree indexes dropped during the inserts and built again once at the end (their upkeep row
by row was most of the time). A file that is not an index of this format is rebuilt.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vapixlog.insight.archives import list_folder, read_archive
from vapixlog.severity import Severity

INDEX_NAME = "logs-index.sqlite"
SCHEMA_VERSION = 1
COMMIT_EVERY = 200  # archives a transaction
_SCHEMA = """
CREATE TABLE IF NOT EXISTS archives (
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, size INTEGER, mtime_ns INTEGER,
    device TEXT, url TEXT, serial TEXT, hostname TEXT, problem TEXT, lines INTEGER
);
CREATE TABLE IF NOT EXISTS lines (
    id INTEGER PRIMARY KEY, archive INTEGER NOT NULL, source TEXT, boot TEXT,
    epoch REAL, ts TEXT, host TEXT, severity INTEGER, tag TEXT, pid INTEGER, message TEXT
);
CREATE VIRTUAL TABLE IF NOT EXISTS lines_fts USING fts5(
    message, tag, content='lines', content_rowid='id'
);
"""
# Dropped during a bulk build (`_bulk`), created again at its end (or by the next run).
_SECONDARY = """
CREATE INDEX IF NOT EXISTS lines_archive ON lines(archive);
CREATE INDEX IF NOT EXISTS lines_epoch ON lines(epoch);
"""


@dataclass
class IndexStats:
    """What one `build_index` run did."""

    indexed: list[str] = field(default_factory=list)  # archives (re)read
    removed: list[str] = field(default_factory=list)  # gone from the folder
    unchanged: int = 0
    lines: int = 0  # lines added
    problems: dict[str, str] = field(default_factory=dict)  # every bad file -> why


@dataclass(frozen=True)
class Match:
    """One line found by `search`."""

    device: str
    archive: str
    url: str | None
    serial: str | None
    source: str
    boot: str | None
    epoch: float
    timestamp: str
    hostname: str
    severity: Severity
    tag: str
    pid: int
    message: str

    @property
    def line(self) -> str:
        """The line as the device wrote it."""
        label = f"[ {self.severity.label:<7} ]"
        return f"{self.timestamp} {self.hostname} {label} {self.tag}[{self.pid}]: {self.message}"


def _connect(path: Path) -> sqlite3.Connection:
    """The index at `path`, made or brought to this format; a file that is not one
    (another format, damaged) is replaced: the archives tell everything it held."""
    for attempt in (1, 2):
        db = sqlite3.connect(path)
        try:
            db.execute("PRAGMA journal_mode=DELETE")  # leaves WAL, which earlier runs used
            db.execute("PRAGMA synchronous=OFF")
            db.execute("PRAGMA cache_size=-65536")  # KiB: 64 MiB at most, as pages are used
            db.execute("PRAGMA temp_store=MEMORY")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise sqlite3.DatabaseError(f"index format {version}, not {SCHEMA_VERSION}")
            db.executescript(_SCHEMA + _SECONDARY)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            return db
        except sqlite3.DatabaseError:
            db.close()
            if attempt == 2:
                raise
            for stale in (path, *path.parent.glob(path.name + "-*")):
                stale.unlink(missing_ok=True)
    raise AssertionError("unreachable")


def build_index(folder: str | os.PathLike[str]) -> IndexStats:
    """Bring `folder`/logs-index.sqlite up to date with the archives in `folder`."""
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder")
    stats = IndexStats()
    paths, problems = list_folder(root)
    stats.problems.update({p.name: p.problem for p in problems})
    with _closing(_connect(root / INDEX_NAME)) as db:
        known = {
            name: (ident, size, mtime, problem)
            for ident, name, size, mtime, problem in db.execute(
                "SELECT id, name, size, mtime_ns, problem FROM archives"
            )
        }
        present = {path.name for path in paths}
        for name in sorted(set(known) - present):
            _drop(db, known[name][0])
            stats.removed.append(name)
        todo: list[Path] = []
        for path in paths:
            try:
                stat = path.stat()
            except OSError:
                continue
            old = known.get(path.name)
            if old and (old[1], old[2]) == (stat.st_size, stat.st_mtime_ns):
                stats.unchanged += 1
                if old[3]:
                    stats.problems[path.name] = old[3]
                continue
            if old:
                _drop(db, old[0])  # before a bulk build drops the index on `archive`
            todo.append(path)
        bulk = len(todo) > stats.unchanged
        if bulk:
            db.execute("DROP INDEX IF EXISTS lines_archive")
            db.execute("DROP INDEX IF EXISTS lines_epoch")
        next_id = db.execute("SELECT COALESCE(MAX(id), 0) FROM lines").fetchone()[0] + 1
        for path in todo:
            added = _add(db, path, stats, next_id)
            next_id += added
            stats.lines += added
            stats.indexed.append(path.name)
            if len(stats.indexed) % COMMIT_EVERY == 0:  # a stopped run keeps what it did
                db.commit()
        if bulk:
            db.executescript(_SECONDARY)
        db.commit()
    return stats


@dataclass
class _closing:
    db: sqlite3.Connection

    def __enter__(self) -> sqlite3.Connection:
        return self.db

    def __exit__(self, *exc: object) -> None:
        self.db.close()


def _drop(db: sqlite3.Connection, archive: int) -> None:
    db.execute(
        "INSERT INTO lines_fts(lines_fts, rowid, message, tag) "
        "SELECT 'delete', id, message, tag FROM lines WHERE archive = ?",
        (archive,),
    )
    db.execute("DELETE FROM lines WHERE archive = ?", (archive,))
    db.execute("DELETE FROM archives WHERE id = ?", (archive,))


def _add(db: sqlite3.Connection, path: Path, stats: IndexStats, start: int) -> int:
    """Add one archive's lines, numbered from `start`; returns how many."""
    log = read_archive(path)
    if log.problem:
        stats.problems[log.name] = log.problem
    side = log.sidecar
    entries = [*log.entries, *log.audit]
    cursor = db.execute(
        "INSERT INTO archives (name, size, mtime_ns, device, url, serial, hostname, problem, "
        "lines) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            log.name,
            log.size,
            log.mtime_ns,
            log.device,
            _text(side.get("url")),
            _text(side.get("serial")),
            log.hostname,
            log.problem,
            len(entries),
        ),
    )
    archive = cursor.lastrowid
    rows = [
        (
            start + i,
            archive,
            e.source,
            e.boot,
            e.epoch,
            e.timestamp,
            e.line.split(" ", 2)[1],
            e.severity,
            e.tag,
            e.pid,
            e.message,
        )
        for i, e in enumerate(entries)
    ]
    db.executemany("INSERT INTO lines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.executemany(
        "INSERT INTO lines_fts(rowid, message, tag) VALUES (?, ?, ?)",
        [(row[0], row[10], row[8]) for row in rows],
    )
    return len(rows)


def _text(value: object) -> str | None:
    return str(value) if value is not None else None


def fts_query(text: str) -> str:
    """The user's words as an FTS5 query: every word must occur (each quoted, so that
    punctuation such as `0x1f` or `a-b` is a phrase, never query syntax)."""
    words = re.findall(r'"[^"]+"|\S+', text)
    return " ".join('"' + word.strip('"').replace('"', '""') + '"' for word in words)


_NAMED = "{t}.device = ? OR {t}.name = ? OR {t}.serial = ? OR {t}.url = ? OR {t}.hostname = ?"
# A part of an archive name only when no device is named exactly (d7 is not d70).
_DEVICE = (
    f"({_NAMED.format(t='a')} OR (NOT EXISTS (SELECT 1 FROM archives b WHERE "  # noqa: S608
    f"{_NAMED.format(t='b')}) AND instr(a.device, ?) > 0))"
)
_SELECT = (
    "SELECT a.device, a.name, a.url, a.serial, l.source, l.boot, l.epoch, l.ts, l.host, "
    "l.severity, l.tag, l.pid, l.message FROM lines l JOIN archives a ON a.id = l.archive "
    "WHERE {where} ORDER BY l.epoch DESC, l.id DESC"
)


def search(
    folder: str | os.PathLike[str],
    query: str,
    *,
    severity: Severity | None = None,
    device: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int | None = None,
) -> list[Match]:
    """Lines matching every word of `query` (all lines when it is empty), at `severity` or
    worse, of the devices `device` names (archive name, serial, URL or host name, or a part
    of the archive name), with `since <= time <= until` (Unix seconds); newest last. With
    `limit`, the newest `limit` lines."""
    path = Path(folder) / INDEX_NAME
    if not path.exists():
        raise FileNotFoundError(f"{path}: no index; run `vapixlog logs index {folder}` first")
    where, params = ["1"], list[object]()
    match = fts_query(query)
    if match:
        where.append("l.id IN (SELECT rowid FROM lines_fts WHERE lines_fts MATCH ?)")
        params.append(match)
    if severity is not None:
        where.append("l.severity <= ?")
        params.append(int(severity))
    if device:
        where.append(_DEVICE)
        params.extend([device] * 11)
    if since is not None:
        where.append("l.epoch >= ?")
        params.append(since)
    if until is not None:
        where.append("l.epoch <= ?")
        params.append(until)
    # The clauses are fixed text; every value is a parameter.
    sql = _SELECT.replace("{where}", " AND ".join(where))
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    with _closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        rows = db.execute(sql, params).fetchall()
    return [_match(row) for row in reversed(rows)]


def _match(row: tuple[object, ...]) -> Match:
    values = list(row)
    values[9] = Severity(int(values[9]))  # type: ignore[call-overload]
    return Match(*values)  # type: ignore[arg-type]


def iter_problems(folder: str | os.PathLike[str]) -> Iterator[tuple[str, str]]:
    """The bad files the index recorded: (name, problem)."""
    path = Path(folder) / INDEX_NAME
    with _closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        yield from db.execute("SELECT name, problem FROM archives WHERE problem IS NOT NULL")
