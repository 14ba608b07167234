"""Fleet insight (issue 18): what a capture folder tells, as `summary.json`, `report.html`
and a searchable SQLite FTS5 index of every captured line.

    summarize(folder)        rebuild summary.json and report.html from the archives
    after_capture(folder)    the same for `vapixlog capture` to call at its end: never
                             raises, returns one line to show
    build_index(folder)      index new or changed archives into logs-index.sqlite
    search(folder, query)    matching lines, newest last
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from vapixlog.insight.index import INDEX_NAME, IndexStats, Match, build_index, search
from vapixlog.insight.report import REPORT_NAME, write_report
from vapixlog.insight.summary import SUMMARY_NAME, build_summary

__all__ = [
    "INDEX_NAME",
    "REPORT_NAME",
    "SUMMARY_NAME",
    "IndexStats",
    "Match",
    "after_capture",
    "build_index",
    "search",
    "summarize",
]


def summarize(folder: str | os.PathLike[str]) -> dict[str, object]:
    """Rebuild `summary.json` and `report.html` (and its device pages) in `folder` from the
    archives there; returns the summary. Raises `NotADirectoryError` for a missing folder;
    bad files are named in the summary, never raised."""
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder")
    summary = build_summary(root)
    target = root / SUMMARY_NAME
    part = target.with_name(target.name + ".part")
    part.write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    part.replace(target)
    write_report(root, summary)
    return summary


def after_capture(folder: str | os.PathLike[str]) -> str:
    """The hook `vapixlog capture` calls once its devices are done: summarize the output
    folder. Never raises (a capture must not fail for its report); returns one line to
    print, saying where the report is or why there is none."""
    try:
        summary = summarize(folder)
    except Exception as exc:  # the capture's own outcome stands whatever happens here
        return f"note: no report for {folder}: {type(exc).__name__}: {exc}"
    fleet = summary["fleet"]
    assert isinstance(fleet, dict)
    problems = len(fleet["problems"])
    bad = f", {problems} unreadable file{'s' if problems != 1 else ''}" if problems else ""
    count = fleet["devices"]
    return f"report: {Path(folder) / REPORT_NAME} ({count} device{'s' if count != 1 else ''}{bad})"
