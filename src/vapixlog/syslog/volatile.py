"""The volatile log: the current boot's lines in memory, bounded in bytes.

Used from the event loop thread only; it has no locking of its own.
"""

from __future__ import annotations

from collections import deque
from itertools import islice


def _cost(line: str) -> int:
    """Bytes the line takes in `text()`: its UTF-8 encoding plus the newline."""
    if line.isascii():  # the common case, without encoding a copy
        return len(line) + 1
    return len(line.encode("utf-8", "surrogatepass")) + 1


class VolatileLog:
    """A ring of formatted lines whose total size never exceeds `max_bytes`.

    The oldest lines are evicted first. A single line larger than the whole ring is not kept
    (the bound is strict); it is counted in `dropped` like any evicted line.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.max_bytes = max_bytes
        self._lines: deque[str] = deque()
        self._size = 0
        self.dropped = 0

    @property
    def size_bytes(self) -> int:
        """Total bytes of `text()`."""
        return self._size

    def __len__(self) -> int:
        return len(self._lines)

    def append(self, line: str) -> None:
        """Add one formatted line (without newline), evicting the oldest lines as needed."""
        cost = _cost(line)
        if cost > self.max_bytes:
            self.dropped += 1
            return
        self._lines.append(line)
        self._size += cost
        # Each line is evicted at most once, so append stays O(1) amortised.
        while self._size > self.max_bytes:
            self._size -= _cost(self._lines.popleft())
            self.dropped += 1

    def lines(self) -> list[str]:
        """All kept lines, oldest first."""
        return list(self._lines)

    def tail(self, n: int) -> list[str]:
        """The newest `n` lines, oldest first."""
        if n <= 0:
            return []
        if n >= len(self._lines):
            return list(self._lines)
        # Walk from the right end only, so a short tail of a big ring stays cheap.
        out = list(islice(reversed(self._lines), n))
        out.reverse()
        return out

    def text(self) -> bytes:
        """The kept lines as UTF-8, each ending in a newline."""
        if not self._lines:
            return b""
        return ("\n".join(self._lines) + "\n").encode("utf-8", "surrogatepass")

    def clear(self) -> None:
        """Forget every line (the `dropped` counter is kept: it counts evictions)."""
        self._lines.clear()
        self._size = 0
