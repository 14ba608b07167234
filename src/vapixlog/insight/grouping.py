"""Message grouping: the same message from many devices (or many times) is one group once the
parts that differ every time are masked: ids, addresses, times and numbers."""

from __future__ import annotations

import re

_HEX = "[0-9A-Fa-f]"
_ZONE = r"(?:Z|[+-]\d\d:?\d\d)?"
_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"\b{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}\b"), "<id>"),
    (re.compile(rf"\b{_HEX}{{2}}(?:[:-]{_HEX}{{2}}){{5}}\b"), "<mac>"),
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
        ),
        "<time>",
    ),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:\.\d+)?\b"), "<time>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b"), "<ip>"),
    (re.compile(rf"\[?(?:{_HEX}{{0,4}}:){{2,7}}{_HEX}{{0,4}}\]?(?::\d{{1,5}})?(?![\w:])"), "<ip>"),
    (re.compile(r"\b0[xX][0-9A-Fa-f]+\b"), "<hex>"),
    (re.compile(rf"\b(?=[0-9A-Za-z]*\d)(?:{_HEX}{{8,}}|[0-9A-Z]{{10,}})\b"), "<id>"),
    (re.compile(r"(?<![\w<])[-+]?\d+(?:[.,]\d+)*"), "<n>"),
)


def mask(message: str) -> str:
    """`disk 3 failed at 0x1f3a (10.0.0.5:80)` -> `disk <n> failed at <hex> (<ip>)`."""
    for pattern, token in _MASKS:
        message = pattern.sub(token, message)
    return message
