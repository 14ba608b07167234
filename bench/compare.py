"""The measurements behind the stack choices (docs/benchmarks.md, "Choices").

1. server: the floor app on uvicorn + httptools + uvloop against granian (ASGI, uvloop), same
   core pinning and wrk load as `bench/run.py`, alternated so that drift cancels;
2. JSON: orjson against the standard library for the envelope and the request body;
3. validation: the model's compiled closures against jsonschema-rs and fastjsonschema on
   `WriteMessageRequest` (both ways lack the ECMA-262 pattern semantics: `regress` is kept);
4. logging path: `format_line` and its parts.

    .venv/bin/python bench/compare.py   (granian, fastjsonschema, jsonschema-rs: bench only)
"""

from __future__ import annotations

import json
import shutil
import sys
import timeit
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run

from vapixlog.apis.log import model
from vapixlog.dca.model import Action
from vapixlog.severity import Severity
from vapixlog.syslog.line import escape, format_line


def us(func: Callable[[], object], number: int = 100_000) -> float:
    """Microseconds per call, best of 5."""
    return min(timeit.repeat(func, number=number, repeat=5)) / number * 1e6


def servers(seconds: float, rounds: int = 3) -> list[str]:
    floor = run.Server(run.PLAIN_FLOOR)  # plain uvicorn, as the floor of bench/run.py
    granian_bin = str(Path(run.PY).with_name("granian"))
    granian = run.Server(
        [
            *(granian_bin, "--interface", "asgi", "--loop", "uvloop", "--workers", "1"),
            *("--port", "{port}", "--log-level", "warning", "--no-ws", "bench.floor_app:app"),
        ]
    )
    rates: dict[str, list[float]] = {"uvicorn + httptools + uvloop": [], "granian (asgi)": []}
    floor.start()
    granian.start()
    try:
        for server in (floor, granian):
            run.wait_ok(server.port)
        for _ in range(rounds):
            for name, server in zip(rates, (floor, granian), strict=True):
                load = run.wrk(server.port, run.WRITE, "post.lua", connections=32, seconds=seconds)
                rates[name].append(load.rate)
    finally:
        floor.stop()
        granian.stop()
    best = max(rates["uvicorn + httptools + uvloop"])
    return [
        f"| {name}: floor app, 32 conn | {max(values):,.0f} req/s "
        f"(runs: {', '.join(f'{v:,.0f}' for v in values)}) | {max(values) / best:.2f} |"
        for name, values in rates.items()
    ]


def json_rows() -> list[str]:
    body = b'{"data":{"msg":"benchmark entry from wrk, one line","severity":6}}'
    envelope = {"status": "success", "data": {"persistent": {"enabled": True}}}
    rows = []
    for what, fast, slow in (
        ("parse the writeMessage body", lambda: orjson.loads(body), lambda: json.loads(body)),
        (
            "serialise an envelope with data",
            lambda: orjson.dumps(envelope),
            lambda: json.dumps(envelope, separators=(",", ":")).encode(),
        ),
    ):
        a, b = us(fast), us(slow)
        rows.append(f"| {what} | {a:.2f} us (orjson) | {b:.2f} us (json) | {b / a:.1f} x |")
    return rows


def validation_rows() -> list[str]:
    action = model().root.actions["writeMessage"]
    assert isinstance(action, Action) and action.validate is not None
    check = action.validate
    data = {"msg": "benchmark entry from wrk, one line", "severity": 6}
    schema = {
        "type": "object",
        "properties": {
            "msg": {"type": "string", "minLength": 0, "maxLength": 4096, "pattern": "^.*$"},
            "severity": {
                "oneOf": [{"type": "integer", "minimum": 0, "maximum": 7}, {"type": "null"}]
            },
        },
        "required": ["msg"],
        "additionalProperties": False,
    }
    closures = us(lambda: check(data, "data", True))
    rows = [f"| compiled closures (vapixlog.dca.datatypes) | {closures:.2f} us | |"]
    try:
        import jsonschema_rs

        validator = jsonschema_rs.validator_for(schema)
        rs = us(lambda: validator.is_valid(data))
        rows.append(f"| jsonschema-rs | {rs:.2f} us | yes/no only: messages need a second pass |")
    except ImportError:
        rows.append("| jsonschema-rs | not installed | |")
    try:
        import fastjsonschema

        compiled = fastjsonschema.compile(schema)
        fast = us(lambda: compiled(data))
        rows.append(f"| fastjsonschema | {fast:.2f} us | Python `re`: `^.*$` is not ECMA-262's |")
    except ImportError:
        rows.append("| fastjsonschema | not installed | |")
    return rows


def logging_rows() -> list[str]:
    now = datetime.now().astimezone()
    message = "benchmark entry from wrk, one line"
    rows = []
    for what, func in (
        ("datetime.now().astimezone()", lambda: datetime.now().astimezone()),
        ("datetime.now(tz), tz kept", lambda: datetime.now(now.tzinfo)),
        ("isoformat(timespec=milliseconds)", lambda: now.isoformat(timespec="milliseconds")),
        ("escape(message), nothing to escape", lambda: escape(message)),
        (
            "format_line (all of the above but now)",
            lambda: format_line(now, "axis-accc8e000000", Severity.INFO, "log-api", 4242, message),
        ),
    ):
        rows.append(f"| {what} | {us(func):.2f} us |")
    return rows


def main() -> None:
    run.WORK.mkdir(exist_ok=True)
    parts = ["| server stack | result | vs uvicorn |", "|---|---:|---:|"]
    if shutil.which("wrk"):
        parts += servers(4.0)
    parts += ["", "| JSON | fast | stdlib | ratio |", "|---|---:|---:|---:|", *json_rows()]
    parts += ["", "| validating WriteMessageRequest | per call | note |", "|---|---:|---|"]
    parts += validation_rows()
    parts += ["", "| logging path | per call |", "|---|---:|", *logging_rows()]
    text = "\n".join(parts)
    print(text)
    if "--no-doc" not in sys.argv:
        run.write_doc(text, "bench:choices")


if __name__ == "__main__":
    main()
