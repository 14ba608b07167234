"""`summary.json`: what a capture folder tells, per device and across the fleet.

Per device: outcome and failing stage, stage timings, firmware (and product) as the device
reported them, boot ids before and after, reboot duration (request to ready, from the
sidecar; else shutdown line to start line, from the log), entries per severity in the
captured system log, the last entries before the shutdown and every entry at error severity
or worse. Across the fleet: outcomes, a severity histogram, the most common error messages
(grouped with `grouping.mask`) with how many devices log each, and the reboot durations.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from vapixlog.insight.archives import (
    DeviceLog,
    JournalDevice,
    Problem,
    list_folder,
    read_archive,
    read_journal,
)
from vapixlog.insight.grouping import mask
from vapixlog.severity import Severity

SUMMARY_NAME = "summary.json"
FORMAT = 1
LAST_BEFORE_SHUTDOWN = 10
MAX_ERRORS_PER_DEVICE = 200  # more are counted (`errors_total`), not listed
TOP_MESSAGES = 50
LABELS = [severity.label for severity in Severity]  # EMERG .. DEBUG
STAGES = ("enable", "reboot", "wait", "disable", "download", "clear")


def build_summary(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Read every archive of `folder` (one at a time) and return the summary document."""
    root = Path(folder)
    paths, problems = list_folder(root)
    journal = read_journal(root)
    by_file = {d.file: d for d in journal.values() if d.file}
    by_url = {d.url: d for d in journal.values()}
    devices: list[dict[str, Any]] = []
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    matched: set[int] = set()
    for path in paths:
        log = read_archive(path)
        noted = by_file.get(path.name) or by_url.get(str(log.sidecar.get("url")))
        if noted is not None:
            matched.add(id(noted))
        devices.append(_device(log, noted, groups))
        if log.problem:
            problems.append(Problem(log.name, log.kind, log.problem))
    for noted in journal.values():  # devices without an archive: failed, no Log API, ...
        if id(noted) not in matched and noted.outcome != "captured":
            devices.append(_journal_only(noted))
    if not devices and not problems:
        problems.append(Problem(root.name or str(root), "empty-folder", "no archives in it"))
    return {
        "format": FORMAT,
        "folder": str(root.resolve()),
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "fleet": _fleet(devices, groups, problems),
        "devices": devices,
    }


def _device(
    log: DeviceLog, noted: JournalDevice | None, groups: dict[tuple[str, str], dict[str, Any]]
) -> dict[str, Any]:
    side = log.sidecar
    # A journal names the archive of a device that failed after its download (at clear):
    # no sidecar then, the journal tells its URL, serial, stages and failure.
    stages = _stages(side.get("stages")) or (dict(noted.stages) if noted else {})
    failed = not side and noted is not None and noted.outcome == "failed" and not log.problem
    counts = Counter(entry.severity for entry in log.entries)
    errors = [entry for entry in log.entries if entry.severity <= Severity.ERROR]
    seen: set[tuple[str, str]] = set()
    for entry in errors:
        key = (entry.tag, mask(entry.message))
        group = groups.setdefault(
            key,
            {
                "tag": key[0],
                "pattern": key[1],
                "severity": entry.severity,
                "entries": 0,
                "devices": 0,
                "example": entry.line,
                "example_device": log.device,
            },
        )
        group["entries"] += 1
        group["severity"] = min(group["severity"], entry.severity)
        if key not in seen:
            seen.add(key)
            group["devices"] += 1
    if log.problem:
        outcome = "unreadable"
    else:
        outcome = str(side.get("outcome") or (noted.outcome if noted else None) or "archive-only")
    shutdown = log.shutdown_at
    before = log.entries[max(0, shutdown - LAST_BEFORE_SHUTDOWN) : shutdown] if shutdown else []
    return {
        "device": log.device,
        "archive": log.name,
        "bytes": log.size,
        "url": side.get("url") or (noted.url if noted else None),
        "serial": side.get("serial") or (noted.serial if noted else None),
        "product": side.get("product"),
        "firmware": side.get("firmware") or side.get("profile") or (noted and noted.firmware),
        "hostname": log.hostname,
        "outcome": outcome,
        "failed_stage": noted.stage if failed and noted else None,
        "error": noted.error if failed and noted else None,
        "problem": log.problem,
        "old_boot_id": side.get("old_boot_id"),
        "new_boot_id": side.get("new_boot_id"),
        "stages": stages,
        "reboot_seconds": _reboot_seconds(log, stages),
        "entries": len(log.entries),
        "audit_entries": len(log.audit),
        "unparsed_lines": log.unparsed,
        "severity": {Severity(level).label: counts[level] for level in sorted(counts)},
        "errors_total": len(errors),
        "errors": [entry.line for entry in errors[:MAX_ERRORS_PER_DEVICE]],
        "last_before_shutdown": [entry.line for entry in before],
    }


def _journal_only(noted: JournalDevice) -> dict[str, Any]:
    return {
        "device": noted.url,
        "archive": None,
        "bytes": 0,
        "url": noted.url,
        "serial": noted.serial,
        "product": None,
        "firmware": noted.firmware,
        "hostname": None,
        "outcome": noted.outcome or "unfinished",
        "failed_stage": noted.stage if noted.outcome == "failed" else None,
        "error": noted.error,
        "problem": None,
        "old_boot_id": None,
        "new_boot_id": None,
        "stages": dict(noted.stages),
        "reboot_seconds": None,
        "entries": 0,
        "audit_entries": 0,
        "unparsed_lines": 0,
        "severity": {},
        "errors_total": 0,
        "errors": [],
        "last_before_shutdown": [],
    }


def _stages(value: object) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    return {str(k): float(v) for k, v in value.items() if isinstance(v, int | float)}


def _reboot_seconds(log: DeviceLog, stages: dict[str, float]) -> float | None:
    """Request to ready (the reboot and wait stages); without a sidecar, from the log: the
    shutdown line to the next start line."""
    if "reboot" in stages and "wait" in stages:
        return round(stages["reboot"] + stages["wait"], 3)
    if log.shutdown_at is None:
        return None
    down = log.entries[log.shutdown_at]
    for entry in log.entries[log.shutdown_at + 1 :]:
        if entry.boot and entry.boot != down.boot:
            return round(max(0.0, entry.epoch - down.epoch), 3)
    return None


def _fleet(
    devices: list[dict[str, Any]],
    groups: dict[tuple[str, str], dict[str, Any]],
    problems: list[Problem],
) -> dict[str, Any]:
    severity: Counter[str] = Counter()
    for device in devices:
        severity.update(device["severity"])
    top = sorted(groups.values(), key=lambda g: (-g["devices"], -g["entries"], g["pattern"]))
    for group in top:
        group["severity"] = Severity(group["severity"]).label
    reboots = [d["reboot_seconds"] for d in devices if d["reboot_seconds"] is not None]
    stage_times: dict[str, list[float]] = {}
    for device in devices:
        for stage, seconds in device["stages"].items():
            stage_times.setdefault(stage, []).append(seconds)
    return {
        "devices": len(devices),
        "outcomes": dict(Counter(d["outcome"] for d in devices).most_common()),
        "failed_stages": dict(Counter(d["failed_stage"] for d in devices if d["failed_stage"])),
        "devices_with_errors": sum(1 for d in devices if d["errors_total"]),
        "entries": sum(d["entries"] for d in devices),
        "severity": {label: severity[label] for label in LABELS},
        "error_messages": top[:TOP_MESSAGES],
        "error_message_groups": len(groups),
        "reboot_seconds": distribution(reboots),
        "stage_median_seconds": {
            stage: round(statistics.median(stage_times[stage]), 3)
            for stage in [*STAGES, *sorted(set(stage_times) - set(STAGES))]
            if stage in stage_times
        },
        "problems": [{"file": p.name, "kind": p.kind, "problem": p.problem} for p in problems],
    }


def distribution(values: list[float], most: int = 12) -> dict[str, Any]:
    """Count, quantiles and a histogram of at most `most` bins (`edges` has one more item
    than `counts`)."""
    if not values:
        return {"count": 0, "edges": [], "counts": []}
    ordered = sorted(values)
    bins = max(1, min(most, math.isqrt(len(ordered)) + 1))
    low, high = ordered[0], ordered[-1]
    width = (high - low) / bins if high > low else 1.0
    counts = [0] * (bins if high > low else 1)
    for value in ordered:
        counts[min(len(counts) - 1, int((value - low) / width))] += 1
    return {
        "count": len(ordered),
        "min": round(low, 3),
        "median": round(statistics.median(ordered), 3),
        "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 3),
        "max": round(high, 3),
        "edges": [round(low + width * i, 4) for i in range(len(counts) + 1)],
        "counts": counts,
    }
