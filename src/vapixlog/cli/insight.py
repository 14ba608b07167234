"""`vapixlog summarize` and `vapixlog logs index|search`: what a capture folder tells
(issue 18). They read files only: no device is contacted."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from vapixlog.cli._common import Handler, fail, severity


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    summarize = commands.add_parser(
        "summarize",
        help="rebuild summary.json and report.html of a capture folder",
        description="Read every archive of a capture folder (also one downloaded some other "
        "way) and write summary.json and report.html beside them. Bad files are named in "
        "the report, never a reason to stop.",
    )
    summarize.add_argument("folder", type=Path, metavar="OUT", help="the capture folder")
    summarize.set_defaults(handler=_guarded(_summarize))

    logs = commands.add_parser("logs", help="index and search the lines of a capture folder")
    actions = logs.add_subparsers(dest="logs_command", required=True, metavar="ACTION")
    index = actions.add_parser(
        "index",
        help="build or update OUT/logs-index.sqlite (incremental)",
        description="Index every line of every archive in OUT (SQLite FTS5). Only new or "
        "changed archives are read; archives that are gone are dropped.",
    )
    index.add_argument("folder", type=Path, metavar="OUT", help="the capture folder")
    index.set_defaults(handler=_guarded(_index))

    search = actions.add_parser(
        "search",
        help="print the lines matching QUERY, newest last",
        description="Print matching lines in the device's line format, each after the name "
        "of its device (`<device>: <line>`), newest last. Every word of QUERY must occur; "
        "an empty QUERY ('') matches every line. Times without an offset are UTC.",
    )
    search.add_argument("query", metavar="QUERY")
    search.add_argument(
        "-C",
        "--folder",
        type=Path,
        default=Path(),
        metavar="OUT",
        help="the capture folder (default: the current folder); indexed first if needed",
    )
    search.add_argument(
        "--severity", type=severity, metavar="S", help="S or worse (0..7 or a name: err, warning)"
    )
    search.add_argument(
        "--device", metavar="D", help="archive name, serial, URL or host name (or a part)"
    )
    search.add_argument("--since", type=_moment, metavar="T", help="from T (ISO 8601)")
    search.add_argument("--until", type=_moment, metavar="T", help="up to T (ISO 8601)")
    search.add_argument("--limit", type=int, metavar="N", help="only the newest N lines")
    search.add_argument("--json", action="store_true", help="one JSON object a line")
    search.set_defaults(handler=_guarded(_search))


def _guarded(handler: Handler) -> Handler:
    """Every failure as one line (a folder that cannot be written, a damaged index, a reader
    that went away), never a traceback."""

    def run(args: argparse.Namespace) -> int:
        import sqlite3

        try:
            return handler(args)
        except BrokenPipeError:  # `... | head`: the reader has what it wanted
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0
        except (OSError, sqlite3.Error, RuntimeError) as exc:
            fail(f"{type(exc).__name__}: {exc}" if isinstance(exc, sqlite3.Error) else str(exc))
            return 1

    return run


def _moment(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid time {text!r}; use ISO 8601, such as 2026-11-25T19:32:11+00:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _folder(path: Path) -> bool:
    if not path.is_dir():
        fail(f"{path}: not a folder")
        return False
    return True


def _summarize(args: argparse.Namespace) -> int:
    from vapixlog.insight import REPORT_NAME, SUMMARY_NAME, summarize

    if not _folder(args.folder):
        return 2
    summary = summarize(args.folder)
    fleet = summary["fleet"]
    assert isinstance(fleet, dict)
    for problem in fleet["problems"]:
        fail(f"{args.folder / problem['file']}: {problem['problem']}")
    outcomes = ", ".join(f"{n} {name}" for name, n in fleet["outcomes"].items())
    print(
        f"{fleet['devices']} devices ({outcomes or 'none'}); "
        f"{fleet['devices_with_errors']} with errors; "
        f"wrote {args.folder / SUMMARY_NAME} and {args.folder / REPORT_NAME}"
    )
    return 0


def _index(args: argparse.Namespace) -> int:
    from vapixlog.insight import INDEX_NAME, build_index

    if not _folder(args.folder):
        return 2
    stats = build_index(args.folder)
    for name, problem in sorted(stats.problems.items()):
        fail(f"{args.folder / name}: {problem}")
    print(
        f"indexed {len(stats.indexed)} archive{'s' if len(stats.indexed) != 1 else ''} "
        f"({stats.lines} lines), {stats.unchanged} unchanged, {len(stats.removed)} removed: "
        f"{args.folder / INDEX_NAME}"
    )
    return 0


def _search(args: argparse.Namespace) -> int:
    from vapixlog.insight import INDEX_NAME, build_index, search

    if not _folder(args.folder):
        return 2
    if not (args.folder / INDEX_NAME).exists():
        fail(f"no index in {args.folder}: building it")
        build_index(args.folder)
    matches = search(
        args.folder,
        args.query,
        severity=args.severity,
        device=args.device,
        since=args.since,
        until=args.until,
        limit=args.limit,
    )
    out = sys.stdout
    for match in matches:
        if args.json:
            document = {
                "device": match.device,
                "archive": match.archive,
                "url": match.url,
                "serial": match.serial,
                "source": match.source,
                "boot": match.boot,
                "time": match.timestamp,
                "host": match.hostname,
                "severity": match.severity.label,
                "tag": match.tag,
                "pid": match.pid,
                "message": match.message,
                "line": match.line,
            }
            out.write(json.dumps(document, ensure_ascii=False) + "\n")
        else:
            out.write(f"{match.device}: {match.line}\n")
    out.flush()
    return 0 if matches else 1
