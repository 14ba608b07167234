"""`report.html`: the summary as a page that opens from disk, works offline and has no
JavaScript (DECISIONS 18: a `<meta>` CSP allows one hashed `<style>` block, nothing else).

The overview (figures, charts, common error messages, failures and bad files) stays small
whatever the fleet: lists are capped and the rest is in summary.json. Devices are listed
`PAGE_SIZE` at a time, the first page in report.html and the others in
`report-devices-<n>.html` beside it, so 10,000 devices make 50 pages of modest size.
"""

from __future__ import annotations

import base64
import hashlib
import os
from html import escape
from pathlib import Path
from typing import Any

from vapixlog.insight import charts

REPORT_NAME = "report.html"
PAGE_SIZE = 200
MAX_LISTED = 100  # failures and problems shown on the overview

CSS = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#111;background:#f6f7f9}
main{max-width:1200px;margin:0 auto;padding:16px}
h1{font-size:1.5rem;margin:.2em 0}h2{font-size:1.15rem;margin:1.4em 0 .5em}
.meta{color:#555;overflow-wrap:anywhere}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:8px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 10px}
.card b{display:block;font-size:1.4rem}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,440px),1fr));gap:12px;
align-items:start}
figure{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px;min-width:0}
figcaption{font-weight:600;margin-bottom:4px}
svg.chart{display:block;max-width:100%;height:auto}
table{border-collapse:collapse;width:100%;background:#fff;table-layout:fixed}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top;
overflow-wrap:anywhere}
th{background:#eef1f5}
td.n,th.n{text-align:right;width:6em}
code,pre{font:12px/1.4 ui-monospace,monospace}
pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:.3em 0;background:#f3f4f6;padding:4px}
.bad{color:#b42318;font-weight:600}.ok{color:#2e8540}.warn{color:#b7791f}
nav.pages{margin:10px 0;overflow-wrap:anywhere}nav.pages a,nav.pages b{margin-right:6px}
.more{color:#555;font-style:italic}
@media (max-width:700px){
main{padding:8px}
table.stack thead{display:none}
table.stack tr{display:block;border:1px solid #ddd;margin-bottom:8px;background:#fff}
table.stack td{display:block;border:0;width:auto}
table.stack td.n{text-align:left}
table.stack td[data-label]::before{content:attr(data-label) ": ";font-weight:600}
}
""".strip()


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
    return (
        f"default-src 'none'; style-src 'sha256-{digest}'; img-src 'none'; "
        "base-uri 'none'; form-action 'none'"
    )


def page_name(number: int) -> str:
    return REPORT_NAME if number == 1 else f"report-devices-{number}.html"


def write_report(folder: str | os.PathLike[str], summary: dict[str, Any]) -> list[Path]:
    """Write report.html (and the further device pages); returns the files written."""
    root = Path(folder)
    devices = sorted(summary["devices"], key=_interest)
    pages = max(1, -(-len(devices) // PAGE_SIZE))
    written: list[Path] = []
    for number in range(1, pages + 1):
        chunk = devices[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
        parts = [_overview(summary)] if number == 1 else []
        parts.append(_devices(chunk, number, pages, len(devices)))
        title = "Fleet capture report" + (f", devices page {number}" if number > 1 else "")
        written.append(_write(root / page_name(number), _page(title, summary, parts)))
    for stale in root.glob("report-devices-*.html"):
        if stale not in written:
            stale.unlink(missing_ok=True)
    return written


def _write(path: Path, text: str) -> Path:
    part = path.with_name(path.name + ".part")
    part.write_text(text, encoding="utf-8")
    part.replace(path)
    return path


def _interest(device: dict[str, Any]) -> tuple[int, int, str]:
    """Failures first, then unreadable archives, then the most errors."""
    rank = {"failed": 0, "unreadable": 1, "unfinished": 2}.get(device["outcome"], 3)
    return rank, -int(device["errors_total"]), str(device["device"])


def _page(title: str, summary: dict[str, Any], parts: list[str]) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="Content-Security-Policy" content="{_csp()}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{escape(title)}</h1><p class=meta>{escape(summary['folder'])} · generated "
        f"{escape(summary['generated_at'])} by vapixlog summarize</p>"
        + "".join(parts)
        + "</main></body></html>\n"
    )


def _overview(summary: dict[str, Any]) -> str:
    fleet = summary["fleet"]
    outcomes: dict[str, int] = fleet["outcomes"]
    reboot = fleet["reboot_seconds"]
    cards = [
        ("devices", fleet["devices"]),
        *outcomes.items(),
        ("devices with errors", fleet["devices_with_errors"]),
        ("log entries", fleet["entries"]),
        ("median reboot", f"{reboot['median']:.2f} s" if reboot["count"] else "none"),
        ("bad files", len(fleet["problems"])),
    ]
    parts = ['<section class=cards aria-label="key figures">']
    for label, value in cards:
        shown = f"{value:,}" if isinstance(value, int) else str(value)
        parts.append(f"<div class=card><b>{escape(shown)}</b>{escape(str(label))}</div>")
    parts.append("</section><h2>Charts</h2><div class=charts>")
    severity = [(label, float(n)) for label, n in fleet["severity"].items()]
    stages = [(stage, float(s)) for stage, s in fleet["stage_median_seconds"].items()]
    per_outcome = [(k, float(v)) for k, v in outcomes.items()]
    figures = [
        ("Outcomes", charts.hbars("Devices per outcome", per_outcome)),
        ("Entries per severity (system logs)", charts.vbars("Entries per severity", severity)),
        (
            "Reboot duration, request to ready",
            charts.histogram("Reboot durations", reboot["edges"], reboot["counts"]),
        ),
        ("Median seconds per stage", charts.hbars("Median seconds per stage", stages, " s")),
    ]
    for caption, svg in figures:
        parts.append(f"<figure><figcaption>{escape(caption)}</figcaption>{svg}</figure>")
    parts.append("</div>")
    if reboot["count"]:
        parts.append(
            f"<p>Reboots: {reboot['count']:,}, min {reboot['min']:.2f} s, median "
            f"{reboot['median']:.2f} s, p90 {reboot['p90']:.2f} s, max {reboot['max']:.2f} s.</p>"
        )
    parts.append(_messages(fleet))
    parts.append(_failures(summary))
    parts.append(_problems(fleet["problems"]))
    return "".join(parts)


def _messages(fleet: dict[str, Any]) -> str:
    groups = fleet["error_messages"]
    parts = ["<h2>Most common error messages</h2>"]
    if not groups:
        return parts[0] + "<p>No entry at error severity or worse.</p>"
    parts.append(
        "<p>Numbers, addresses and ids are masked so that the same message groups together"
        f" ({fleet['error_message_groups']:,} groups in all).</p><table class=stack><thead><tr>"
        "<th>message</th><th class=n>devices</th><th class=n>entries</th><th>example</th>"
        "</tr></thead><tbody>"
    )
    for group in groups:
        parts.append(
            f"<tr><td><code>{escape(group['tag'])}: {escape(group['pattern'])}</code> "
            f"({escape(group['severity'])})</td><td data-label=devices class=n>"
            f"{group['devices']:,}</td><td data-label=entries class=n>{group['entries']:,}</td>"
            f"<td data-label=example><code>{escape(group['example_device'])}"
            f"</code><pre>{escape(group['example'])}</pre></td></tr>"
        )
    return "".join(parts) + "</tbody></table>"


def _failures(summary: dict[str, Any]) -> str:
    failed = [d for d in summary["devices"] if d["outcome"] in ("failed", "unfinished")]
    rows = [
        f"<tr><td>{escape(str(device['device']))}</td>"
        f"<td class=bad>{escape(str(device['failed_stage'] or device['outcome']))}</td>"
        f"<td>{escape(str(device['error'] or ''))}</td></tr>"
        for device in failed[:MAX_LISTED]
    ]
    return _listing("Failed devices", len(failed), "None.", ["device", "stage", "error"], rows)


def _problems(problems: list[dict[str, str]]) -> str:
    rows = [
        f"<tr><td><code>{escape(problem['file'])}</code></td>"
        f"<td class=bad>{escape(problem['problem'])}</td></tr>"
        for problem in problems[:MAX_LISTED]
    ]
    none = "None: every archive was read in full."
    title = "Files that could not be read"
    return _listing(title, len(problems), none, ["file", "problem"], rows)


def _listing(title: str, count: int, none: str, columns: list[str], rows: list[str]) -> str:
    """A section of the overview: `count` items, the first `MAX_LISTED` as `rows` (markup
    with the values escaped), the rest counted."""
    heading = f"<h2>{title} ({count:,})</h2>"
    if not count:
        return f"{heading}<p>{none}</p>"
    head = "".join(f"<th>{column}</th>" for column in columns)
    more = count - len(rows)
    tail = f"<p class=more>{more:,} more in summary.json.</p>" if more > 0 else ""
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return heading + table + tail


def _nav(number: int, pages: int) -> str:
    if pages == 1:
        return ""
    links = [
        f"<b>{n}</b>" if n == number else f'<a href="{page_name(n)}">{n}</a>'
        for n in range(1, pages + 1)
    ]
    return f'<nav class=pages aria-label="device pages">Pages: {" ".join(links)}</nav>'


def _devices(chunk: list[dict[str, Any]], number: int, pages: int, total: int) -> str:
    first = (number - 1) * PAGE_SIZE + 1
    shown = f"{first:,} to {first + len(chunk) - 1:,} of {total:,}" if chunk else "none"
    parts = [
        f"<h2>Devices ({shown}; failures first, then the most errors)</h2>",
        _nav(number, pages),
        "<table class=stack><thead><tr><th>device</th><th>outcome</th><th>firmware</th>"
        "<th class=n>reboot s</th><th class=n>entries</th><th class=n>errors</th>"
        "<th>details</th></tr></thead><tbody>",
    ]
    for device in chunk:
        parts.append(_device_row(device))
    parts.append("</tbody></table>")
    parts.append(_nav(number, pages))
    return "".join(parts)


def _device_row(device: dict[str, Any]) -> str:
    outcome = str(device["outcome"])
    css = {"captured": "ok", "no-log-api": "warn", "duplicate": "warn"}.get(outcome, "bad")
    if device["failed_stage"]:
        outcome += f" at {device['failed_stage']}"
    name = escape(str(device["device"]))
    who = " ".join(escape(str(device[k])) for k in ("url", "serial") if device.get(k))
    reboot = device["reboot_seconds"]
    details: list[str] = []
    if device["problem"] or device["error"]:
        details.append(f"<p class=bad>{escape(str(device['problem'] or device['error']))}</p>")
    boots = (device["old_boot_id"], device["new_boot_id"])
    if any(boots):
        details.append(f"<p>boot {escape(str(boots[0]))} → {escape(str(boots[1]))}</p>")
    if device["stages"]:
        timings = ", ".join(f"{k} {v:.2f} s" for k, v in device["stages"].items())
        details.append(f"<p>{escape(timings)}</p>")
    if device["errors"]:
        more = device["errors_total"] - len(device["errors"])
        details.append("<p>Entries at error severity or worse:</p><pre>")
        details.append(escape("\n".join(device["errors"])) + "</pre>")
        if more > 0:
            details.append(f"<p class=more>{more:,} more in summary.json.</p>")
    if device["last_before_shutdown"]:
        details.append("<p>Last entries before the shutdown:</p><pre>")
        details.append(escape("\n".join(device["last_before_shutdown"])) + "</pre>")
    body = "".join(details)
    detail = f"<details><summary>show</summary>{body}</details>" if body else ""
    return (
        f"<tr><td data-label=device><b>{name}</b><br><span class=meta>{who}</span></td>"
        f"<td data-label=outcome class={css}>{escape(outcome)}</td>"
        f"<td data-label=firmware>{escape(str(device['firmware'] or ''))}</td>"
        f"<td data-label=reboot class=n>{'' if reboot is None else f'{reboot:.2f}'}</td>"
        f"<td data-label=entries class=n>{device['entries']:,}</td>"
        f"<td data-label=errors class=n>{device['errors_total']:,}</td>"
        f"<td>{detail}</td></tr>"
    )
