"""Rate limiting of `writeMessage` per (user, client address).

* `RateLimiter`: one token bucket per (user, address). A bucket holds up to N tokens and
  refills N per SECONDS (`--rate-limit N/SECONDS`); each write takes one token, and a write
  that finds the bucket empty is refused (429, code 9, `Retry-After`). Refused writes are
  not logged one by one: they are counted per (user, address) "episode", and one entry
  `suppressed N messages from user X at ADDRESS (rate limit N/S)` is written when the
  episode ends (no refusal for `quiet` seconds) or, during a sustained flood, every
  `report_every` seconds. Memory is bounded: idle buckets that have refilled completely are
  dropped (a new full bucket is the same thing), and at most `max_keys` are kept.
`RateLimiter` is a synchronous state machine with an injectable monotonic clock, so it is
unit tested with a fake clock. `WriteLimiter` is the asyncio glue for `writeMessage` (a timer
for the end-of-episode report). Failed logins are throttled by `vapixlog.auth.throttle`.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]

_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?|\.\d+)\s*")


@dataclass(frozen=True)
class Rate:
    """N events per SECONDS: a bucket of N tokens that refills N tokens per SECONDS."""

    count: int
    seconds: float

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("the count of a rate limit must be at least 1")
        if not self.seconds > 0 or math.isinf(self.seconds):
            raise ValueError("the period of a rate limit must be a positive number of seconds")

    @property
    def per_second(self) -> float:
        return self.count / self.seconds

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds:g}"


#: The default `--rate-limit`: far above what one client does in ordinary use.
DEFAULT_WRITE_RATE = Rate(1000, 1.0)


def parse_rate(text: str) -> Rate | None:
    """`200/1` (200 per second), `50/0.5`, `600/60`; `off` (or `none`) is None."""
    if text.strip().lower() in ("off", "none"):
        return None
    match = _RATE.fullmatch(text)
    if not match:
        raise ValueError(f"invalid rate limit {text!r}; use N/SECONDS (e.g. 200/1) or off")
    try:
        return Rate(int(match[1]), float(match[2]))
    except ValueError as exc:
        raise ValueError(f"invalid rate limit {text!r}: {exc}") from None


def retry_after(seconds: float) -> int:
    """A `Retry-After` value: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(seconds))


class TokenBucket:
    """`capacity` tokens, refilled continuously at `per_second`; starts full."""

    __slots__ = ("capacity", "per_second", "tokens", "updated")

    def __init__(self, capacity: float, per_second: float, now: float) -> None:
        self.capacity = capacity
        self.per_second = per_second
        self.tokens = capacity
        self.updated = now

    def take(self, now: float) -> float:
        """Take one token: 0.0 when one was there, else the seconds until there is one."""
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.per_second)
            self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.per_second

    def full_at(self) -> float:
        """When the bucket will be full again if nobody takes from it."""
        return self.updated + (self.capacity - self.tokens) / self.per_second


@dataclass
class Suppression:
    """Refused events of one key since the last report."""

    user: str
    address: str
    count: int
    first: float
    last: float


class RateLimiter:
    """Token buckets keyed by (user, address), with bounded memory (see module doc)."""

    def __init__(
        self,
        rate: Rate,
        *,
        clock: Clock = time.monotonic,
        quiet: float = 1.0,
        report_every: float = 10.0,
        max_keys: int = 65536,
    ) -> None:
        self.rate = rate
        self.clock = clock
        self.quiet = quiet
        self.report_every = report_every
        self.max_keys = max_keys
        # Least recently used first: the front is what eviction looks at.
        self._buckets: OrderedDict[tuple[str, str], TokenBucket] = OrderedDict()
        self._suppressed: dict[tuple[str, str], Suppression] = {}

    def __len__(self) -> int:
        """The number of buckets kept (a statistic, for tests)."""
        return len(self._buckets)

    def check(self, user: str, address: str) -> float:
        """Take a token for (user, address): 0.0 when allowed, else the seconds to wait."""
        now = self.clock()
        key = (user, address)
        bucket = self._buckets.get(key)
        if bucket is None:
            self._evict(now)
            bucket = self._buckets[key] = TokenBucket(self.rate.count, self.rate.per_second, now)
        else:
            self._buckets.move_to_end(key)
        wait = bucket.take(now)
        if wait > 0.0:
            episode = self._suppressed.get(key)
            if episode is None:
                self._suppressed[key] = Suppression(user, address, 1, now, now)
            else:
                episode.count += 1
                episode.last = now
        return wait

    @property
    def suppressing(self) -> bool:
        """True while some refusals have not been reported yet."""
        return bool(self._suppressed)

    def due(self, *, all: bool = False) -> list[Suppression]:
        """Episodes to report now (ended, or running for `report_every`); `all`: every one."""
        now = self.clock()
        done = [
            key
            for key, episode in self._suppressed.items()
            if all or now - episode.last >= self.quiet or now - episode.first >= self.report_every
        ]
        return [self._suppressed.pop(key) for key in done]

    def next_due(self) -> float | None:
        """The clock time at which `due` returns something, None when nothing is pending."""
        return min(
            (
                min(e.last + self.quiet, e.first + self.report_every)
                for e in self._suppressed.values()
            ),
            default=None,
        )

    def message(self, episode: Suppression) -> str:
        return (
            f"suppressed {episode.count} messages from user {episode.user} at "
            f"{episode.address} (rate limit {self.rate})"
        )

    def _evict(self, now: float) -> None:
        buckets = self._buckets
        while buckets:
            key, oldest = next(iter(buckets.items()))
            if oldest.full_at() > now and len(buckets) < self.max_keys:
                break
            del buckets[key]


class WriteLimiter:
    """The `writeMessage` rate limit of one device: buckets plus the suppression reports.

    `check` runs on the event loop; `report(message)` is called there too (the device logs
    the message as a WARNING). `rate` None means no limit.
    """

    def __init__(
        self,
        rate: Rate | None,
        *,
        report: Callable[[str], None],
        clock: Clock = time.monotonic,
        quiet: float = 1.0,
        report_every: float = 10.0,
    ) -> None:
        self.rate = rate
        self.limiter = (
            None
            if rate is None
            else RateLimiter(rate, clock=clock, quiet=quiet, report_every=report_every)
        )
        self._report = report
        self._timer: asyncio.TimerHandle | None = None

    def check(self, user: str, address: str) -> int | None:
        """None when the write may go ahead, else its `Retry-After` in whole seconds."""
        limiter = self.limiter
        if limiter is None:
            return None
        wait = limiter.check(user, address)
        if limiter.suppressing:
            # A write accepted after a burst reports it first, so the entry comes before it.
            self._emit(limiter.due())
            self._arm()
        return retry_after(wait) if wait > 0.0 else None

    def close(self) -> None:
        """Report every pending episode now (at shutdown) and stop the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.limiter is not None:
            self._emit(self.limiter.due(all=True))

    def _emit(self, episodes: list[Suppression]) -> None:
        assert self.limiter is not None
        for episode in episodes:
            self._report(self.limiter.message(episode))

    def _arm(self) -> None:
        assert self.limiter is not None
        if self._timer is not None or (when := self.limiter.next_due()) is None:
            return
        delay = max(0.0, when - self.limiter.clock()) + 0.01
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        assert self.limiter is not None
        self._emit(self.limiter.due())
        self._arm()
