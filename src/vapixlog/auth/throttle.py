"""Throttling of failed logins per client address.

`LoginThrottle` counts consecutive failed logins per client address. After `free_failures`
of them, every further failure is answered only after a delay that doubles up to
`max_delay`; at most `max_pending` delayed answers per address are outstanding, attempts
beyond that are refused (429) before their credentials are checked. A successful login
resets the address. It is a synchronous state machine with an injectable monotonic clock;
its asyncio glue is in `vapixlog.auth.middleware`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from vapixlog.ratelimit import Clock


@dataclass(frozen=True)
class LoginPolicy:
    """How failed logins from one client address are throttled (see module doc)."""

    free_failures: int = 5  # consecutive failures answered at once and audited one by one
    first_delay: float = 0.25  # the delay of the first failure after those, in seconds
    max_delay: float = 8.0  # the delay doubles up to this
    max_pending: int = 4  # delayed answers outstanding per address; beyond: 429
    forget_after: float = 300.0  # an address without failures for this long starts afresh
    max_addresses: int = 4096  # addresses tracked at most (the least recent are forgotten)

    def __post_init__(self) -> None:
        if self.free_failures < 1 or self.max_pending < 1 or self.max_addresses < 1:
            raise ValueError("free_failures, max_pending and max_addresses must be >= 1")
        if not 0 < self.first_delay <= self.max_delay < self.forget_after:
            raise ValueError("need 0 < first_delay <= max_delay < forget_after")


@dataclass
class _Failures:
    count: int = 0  # consecutive failures
    last: float = 0.0  # clock time of the last failure
    pending: int = 0  # delayed answers outstanding
    refused: int = 0  # attempts refused because too many were pending
    delay: float = 0.0  # the delay of the last failure


class LoginThrottle:
    """Failed-login bookkeeping per client address; returns the audit messages to write.

    Protocol for one request with credentials from `address`:
    `admit(address)` (None: go on; a number: refuse with that Retry-After), then after
    checking the credentials either `success(address)` or `failure(address)`; a failure with
    a delay reserves a pending slot that the caller frees with `release(address)` after
    waiting. `throttled(address)` says whether a failure now would no longer be audited one
    by one (the throttle summarises those when the episode ends).
    """

    def __init__(self, policy: LoginPolicy | None = None, *, clock: Clock = time.monotonic):
        self.policy = policy or LoginPolicy()
        self.clock = clock
        # Ordered by last failure, oldest first: the front is what expiry looks at.
        self._addresses: OrderedDict[str, _Failures] = OrderedDict()

    def __len__(self) -> int:
        return len(self._addresses)

    def tracking(self, address: str) -> bool:
        return address in self._addresses

    def throttled(self, address: str) -> bool:
        entry = self._addresses.get(address)
        return entry is not None and entry.count >= self.policy.free_failures

    def admit(self, address: str) -> float | None:
        """None when the attempt may be checked, else the seconds the client should wait."""
        entry = self._addresses.get(address)
        if entry is None or entry.pending < self.policy.max_pending:
            return None
        entry.refused += 1
        return entry.delay

    def failure(self, address: str) -> tuple[float, list[str]]:
        """Count a failure: (seconds to delay the answer, audit messages to write)."""
        now = self.clock()
        messages = self.expire()
        entry = self._addresses.get(address)
        if entry is None:
            while len(self._addresses) >= self.policy.max_addresses:
                old_address, old = self._addresses.popitem(last=False)
                messages += self._ended(old_address, old, "forgotten, too many addresses")
            entry = self._addresses[address] = _Failures()
        else:
            self._addresses.move_to_end(address)
        entry.count += 1
        entry.last = now
        policy = self.policy
        beyond = entry.count - policy.free_failures
        if beyond == 0:
            messages.append(f"throttling failed logins from {address} after {entry.count} failures")
        if beyond <= 0:
            return 0.0, messages
        entry.delay = min(policy.max_delay, policy.first_delay * 2.0 ** min(beyond - 1, 64))
        entry.pending += 1
        return entry.delay, messages

    def release(self, address: str) -> None:
        """A delayed answer has been sent (or abandoned)."""
        entry = self._addresses.get(address)
        if entry is not None and entry.pending > 0:
            entry.pending -= 1

    def success(self, address: str) -> list[str]:
        """A successful login resets the address; the summary if it was throttled."""
        entry = self._addresses.pop(address, None)
        if entry is None:
            return []
        return self._ended(address, entry, "a successful login")

    def expire(self) -> list[str]:
        """Forget addresses without failures for `forget_after`; summaries of episodes."""
        now = self.clock()
        messages: list[str] = []
        addresses = self._addresses
        while addresses:
            address, entry = next(iter(addresses.items()))
            if now - entry.last < self.policy.forget_after or entry.pending:
                break
            del addresses[address]
            messages += self._ended(
                address, entry, f"no failure for {self.policy.forget_after:g} s"
            )
        return messages

    def next_expiry(self) -> float | None:
        """When `expire` may have something to say about a throttled address."""
        return min(
            (
                entry.last + self.policy.forget_after
                for entry in self._addresses.values()
                if entry.count >= self.policy.free_failures
            ),
            default=None,
        )

    def _ended(self, address: str, entry: _Failures, why: str) -> list[str]:
        free = self.policy.free_failures
        if entry.count < free:
            return []
        refused = f", {entry.refused} attempts refused while too many were pending"
        return [
            f"throttling failed logins from {address} ended after {why}: "
            f"{entry.count} failures, {entry.count - free} of them not audited one by one"
            + (refused if entry.refused else "")
        ]
