"""ECMA-262 patterns rewritten so that Python's `re` reads them the same way.

Model patterns are ECMA-262 (the device runs them with `regress`). Tools that read the
OpenAPI document in Python (hypothesis, schemathesis, jsonschema) use `re`, where `.` matches
U+2028, U+2029 and CR, and `$` also matches before a final newline. `portable` rewrites those
two constructs into forms both engines read identically, and leaves the rest alone:
`.` outside a class becomes `[^\\n\\r\\u2028\\u2029]`, `$` becomes `(?![\\s\\S])` (end of input).
"""

from __future__ import annotations

_DOT = "[^\\n\\r\\u2028\\u2029]"
_END = "(?![\\s\\S])"


def portable(pattern: str) -> str:
    out: list[str] = []
    in_class = False
    escaped = False
    for char in pattern:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            out.append(char)
            escaped = True
        elif in_class:
            out.append(char)
            in_class = char != "]"
        elif char == "[":
            out.append(char)
            in_class = True
        elif char == ".":
            out.append(_DOT)
        elif char == "$":
            out.append(_END)
        else:
            out.append(char)
    return "".join(out)
