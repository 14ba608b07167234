"""Charts as inline SVG, drawn here: no library, no script, no style attribute (the report's
CSP allows one hashed `<style>` block and nothing else). Every text is escaped."""

from __future__ import annotations

import math
from html import escape

WIDTH = 480
BAR = "#2f6db5"
MUTED = "#6b7280"
COLORS = {
    "captured": "#2e8540",
    "failed": "#c0392b",
    "unreadable": "#8e44ad",
    "no-log-api": "#b7791f",
    "duplicate": "#6b7280",
    "archive-only": "#2f6db5",
    "EMERG": "#7b1010",
    "ALERT": "#9b1c1c",
    "CRIT": "#b42318",
    "ERR": "#d92d20",
    "WARNING": "#dc6803",
    "NOTICE": "#2f6db5",
    "INFO": "#4b8bd4",
    "DEBUG": "#98a2b3",
}


def _number(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def _svg(height: int, title: str, body: list[str]) -> str:
    label = escape(title)
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'aria-label="{label}" xmlns="http://www.w3.org/2000/svg"><title>{label}</title>'
        + "".join(body)
        + "</svg>"
    )


def hbars(title: str, items: list[tuple[str, float]], unit: str = "") -> str:
    """Horizontal bars, one per (label, value), labels left, values right."""
    if not items:
        return _svg(30, title, [_text(8, 20, "no data", MUTED)])
    row, label_w, value_w = 26, 150, 90
    span = WIDTH - label_w - value_w - 10
    top = max(value for _, value in items) or 1
    body: list[str] = []
    for i, (label, value) in enumerate(items):
        y = 6 + i * row
        length = max(1.0, span * value / top) if value else 0.0
        body.append(_text(label_w - 6, y + 15, _short(label, 22), "#111", anchor="end"))
        fill = COLORS.get(label, BAR)
        body.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{length:.1f}" height="{row - 8}" '
            f'fill="{fill}" rx="2"/>'
        )
        body.append(_text(label_w + length + 6, y + 15, _number(value) + unit, "#111"))
    return _svg(12 + len(items) * row, title, body)


def vbars(title: str, items: list[tuple[str, float]], unit: str = "") -> str:
    """Vertical bars with labels under them and values above (a histogram by category)."""
    if not items:
        return _svg(30, title, [_text(8, 20, "no data", MUTED)])
    height, base, left = 222, 180, 8
    slot = (WIDTH - 2 * left) / len(items)
    top = max(value for _, value in items) or 1
    body = [f'<line x1="{left}" y1="{base}" x2="{WIDTH - left}" y2="{base}" stroke="#ccc"/>']
    for i, (label, value) in enumerate(items):
        x = left + i * slot
        tall = (base - 24) * value / top if value else 0.0
        fill = COLORS.get(label, BAR)
        body.append(
            f'<rect x="{x + slot * 0.15:.1f}" y="{base - tall:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{tall:.1f}" fill="{fill}" rx="2"/>'
        )
        middle = x + slot / 2
        body.append(_text(middle, base - tall - 5, _number(value) + unit, "#111", anchor="middle"))
        body.append(_text(middle, base + 18, _short(label, 10), MUTED, anchor="middle", size=11))
    return _svg(height, title, body)


def histogram(title: str, edges: list[float], counts: list[int], unit: str = "s") -> str:
    """A histogram: `counts[i]` values in [edges[i], edges[i + 1])."""
    if not counts:
        return _svg(30, title, [_text(8, 20, "no data", MUTED)])
    step = (edges[-1] - edges[0]) / len(counts) if len(edges) > 1 else 1.0
    digits = min(3, max(0, 1 - math.floor(math.log10(step)))) if step > 0 else 2
    items = [(f"{edges[i]:.{digits}f}{unit}", float(count)) for i, count in enumerate(counts)]
    last = f"bars start at the value shown; the last ends at {edges[-1]:.{digits}f}{unit}"
    chart = vbars(title, items)
    return chart.replace("</svg>", _text(WIDTH - 8, 214, last, MUTED, anchor="end") + "</svg>")


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(
    x: float, y: float, text: str, fill: str, *, anchor: str = "start", size: int = 14
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" fill="{fill}" font-size="{size}" '
        f'text-anchor="{anchor}">{escape(text)}</text>'
    )
