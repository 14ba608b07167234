"""Retrying the steps of a procedure that are safe to repeat: reads, systemready polls, a
report download, and setting persistent logging on or off (idempotent). A reboot is never
retried here: see `vapixlog.client._capture`.

Retried: no usable answer (connection refused, reset or lost, timeouts, 503), 429 (after the
device's `Retry-After`), the brute-force block (waited out) and other 5xx. Anything else (a
refused login, a missing API, a refused value) fails at once: repeating it cannot help.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from vapixlog.client._errors import (
    AddressBlockedError,
    DeviceUnavailableError,
    RateLimitedError,
    ServerError,
)

T = TypeVar("T")
RETRIED: tuple[type[BaseException], ...] = (
    DeviceUnavailableError,
    RateLimitedError,
    AddressBlockedError,
    ServerError,
    TimeoutError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all, at most `within` seconds from the first; waits grow from
    `first_delay` by `factor` up to `max_delay`, with +-25 % jitter."""

    attempts: int = 5
    within: float = 120.0
    first_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 10.0

    def delay(self, attempt: int, exc: BaseException) -> float:
        """The wait before try `attempt + 1` (after try `attempt`, counted from 1)."""
        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), self.max_delay * 3)
        if isinstance(exc, AddressBlockedError):
            return max(self.max_delay, 10.0)  # the device's block lasts 10 s by default
        base = min(self.first_delay * self.factor ** (attempt - 1), self.max_delay)
        return base * random.uniform(0.75, 1.25)


DEFAULT_POLICY = RetryPolicy()
NO_RETRY = RetryPolicy(attempts=1)


async def retrying(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy = DEFAULT_POLICY,
    *,
    also: tuple[type[BaseException], ...] = (),
) -> T:
    """`await call()`, again after a failure worth retrying (`RETRIED`, and `also`), with
    backoff; the last failure is raised, noting how many tries were made."""
    started = time.monotonic()
    caught = (*RETRIED, *also)
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except caught as exc:
            wait = policy.delay(attempt, exc)
            if attempt >= policy.attempts or time.monotonic() - started + wait > policy.within:
                if attempt > 1:
                    exc.add_note(f"after {attempt} tries")
                raise
            await asyncio.sleep(wait)
