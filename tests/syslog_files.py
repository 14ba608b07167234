"""Read the persistent log files of a state dir, as tests see them."""

from __future__ import annotations

from pathlib import Path

from vapixlog.syslog.line import ParsedLine, parse_line


def persistent_lines(state_dir: Path) -> list[ParsedLine]:
    """Every line of every persistent file, oldest first; a line that does not parse fails."""
    lines = []
    for path in sorted((state_dir / "log" / "persistent").glob("messages-*.log")):
        data = path.read_bytes()
        assert data == b"" or data.endswith(b"\n"), f"{path} ends in a torn line"
        for raw in data.decode().splitlines():
            parsed = parse_line(raw)
            assert parsed is not None, f"unparsable line in {path}: {raw!r}"
            lines.append(parsed)
    return lines
