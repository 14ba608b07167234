"""Throttling of failed logins per client address and user name.

`LoginThrottle` counts consecutive failed logins per client address and claimed user name, so
that guessing one user's password from an address slows neither other addresses nor other
users at that address. After `free_failures` of them, every further failure is answered only
after a delay that doubles up to `max_delay`; at most `max_pending` delayed answers per
(address, user) are outstanding, attempts beyond that are refused (429) before their
credentials are checked. An address may be tracked under `max_users_per_address` user names;
failures for further names share one entry (`*`), so rotating names buys no free attempts.
A successful login resets its (address, user). It is a synchronous state machine with an
injectable monotonic clock; its asyncio glue, and the clients that may pass a refusal (those
that proved the password before), are in `vapixlog.auth.middleware`.
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
    max_pending: int = 4  # delayed answers outstanding per (address, user); beyond: 429
    max_pending_per_address: int = 8  # and per address, all its user names together
    forget_after: float = 300.0  # an address without failures for this long starts afresh
    max_addresses: int = 4096  # (address, user) entries at most (the least recent go first)
    max_users_per_address: int = 8  # user names tracked per address; the rest share one entry

    def __post_init__(self) -> None:
        counts = (self.free_failures, self.max_pending, self.max_addresses)
        if min(*counts, self.max_users_per_address) < 1:
            raise ValueError(
                "free_failures, max_pending, max_addresses and max_users_per_address must be >= 1"
            )
        if not 0 < self.first_delay <= self.max_delay < self.forget_after:
            raise ValueError("need 0 < first_delay <= max_delay < forget_after")


@dataclass
class _Failures:
    count: int = 0  # consecutive failures
    last: float = 0.0  # clock time of the last failure
    pending: int = 0  # delayed answers outstanding
    refused: int = 0  # attempts refused because too many were pending
    delay: float = 0.0  # the delay of the last failure


Key = tuple[str, str]  # (client address, user name as claimed; "" when none could be read)


class LoginThrottle:
    """Failed-login bookkeeping per (address, user); returns the audit messages to write.

    Protocol for one request with credentials for `user` from `address`: `admit(address,
    user)` (None: go on; a number: refuse with that Retry-After), then after checking the
    credentials either `success(...)` or `failure(...)`; a failure with a delay reserves a
    pending slot that the caller frees with `release(...)` after waiting. `throttled(...)`
    says whether a failure now would no longer be audited one by one (the throttle summarises
    those when the episode ends). `user` may be left out (None): one entry per address.
    """

    def __init__(self, policy: LoginPolicy | None = None, *, clock: Clock = time.monotonic):
        self.policy = policy or LoginPolicy()
        self.clock = clock
        # Ordered by last failure, oldest first: the front is what expiry looks at.
        self._entries: OrderedDict[Key, _Failures] = OrderedDict()
        self._users: dict[str, int] = {}  # address -> entries it has
        # address -> delayed answers outstanding: each holds a connection, so one address
        # may not hold more than a few, whichever names it tries.
        self._pending: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def tracking_address(self, address: str) -> bool:
        """Whether any failure from `address` is being counted (cheap: a dict lookup)."""
        return address in self._users

    def tracking(self, address: str, user: str | None = None) -> bool:
        return self._key(address, user) in self._entries

    def throttled(self, address: str, user: str | None = None) -> bool:
        entry = self._entries.get(self._key(address, user))
        return entry is not None and entry.count >= self.policy.free_failures

    def admit(self, address: str, user: str | None = None) -> float | None:
        """None when the attempt may be checked, else the seconds the client should wait."""
        entry = self._entries.get(self._key(address, user))
        if entry is None:
            return None
        full = self._pending.get(address, 0) >= self.policy.max_pending_per_address
        if entry.pending < self.policy.max_pending and not full:
            return None
        entry.refused += 1
        return entry.delay or self.policy.first_delay

    def failure(self, address: str, user: str | None = None) -> tuple[float, list[str]]:
        """Count a failure: (seconds to delay the answer, audit messages to write)."""
        now = self.clock()
        messages = self.expire()
        key = self._key(address, user)
        entry = self._entries.get(key)
        if entry is None:
            while len(self._entries) >= self.policy.max_addresses:
                old_key, old = next(iter(self._entries.items()))
                self._forget(old_key)
                messages += self._ended(old_key, old, "forgotten, too many addresses")
            entry = self._entries[key] = _Failures()
            self._users[address] = self._users.get(address, 0) + 1
        else:
            self._entries.move_to_end(key)
        entry.count += 1
        entry.last = now
        policy = self.policy
        beyond = entry.count - policy.free_failures
        if beyond == 0:
            messages.append(
                f"throttling failed logins {_describe(key)} after {entry.count} failures"
            )
        if beyond <= 0:
            return 0.0, messages
        entry.delay = min(policy.max_delay, policy.first_delay * 2.0 ** min(beyond - 1, 64))
        entry.pending += 1
        self._pending[address] = self._pending.get(address, 0) + 1
        return entry.delay, messages

    def release(self, address: str, user: str | None = None) -> None:
        """A delayed answer has been sent (or abandoned)."""
        entry = self._entries.get(self._key(address, user))
        if entry is not None and entry.pending > 0:
            entry.pending -= 1
        # Per address even when the entry is gone (a success forgot it meanwhile).
        left = self._pending.get(address, 0) - 1
        if left > 0:
            self._pending[address] = left
        else:
            self._pending.pop(address, None)

    def success(self, address: str, user: str | None = None) -> list[str]:
        """A successful login resets its entry; the summary if it was throttled."""
        key = self._key(address, user)
        entry = self._forget(key)
        if entry is None:
            return []
        return self._ended(key, entry, "a successful login")

    def expire(self) -> list[str]:
        """Forget entries without failures for `forget_after`; summaries of episodes."""
        now = self.clock()
        messages: list[str] = []
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if now - entry.last < self.policy.forget_after or entry.pending:
                break
            self._forget(key)
            messages += self._ended(key, entry, f"no failure for {self.policy.forget_after:g} s")
        return messages

    def next_expiry(self) -> float | None:
        """When `expire` may have something to say about a throttled entry."""
        return min(
            (
                entry.last + self.policy.forget_after
                for entry in self._entries.values()
                if entry.count >= self.policy.free_failures
            ),
            default=None,
        )

    def _key(self, address: str, user: str | None) -> Key:
        key = (address, user or "")
        if key in self._entries or self._users.get(address, 0) < self.policy.max_users_per_address:
            return key
        return (address, "*")  # this address has tried too many names: they share one entry

    def _forget(self, key: Key) -> _Failures | None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            left = self._users[key[0]] - 1
            if left:
                self._users[key[0]] = left
            else:
                del self._users[key[0]]
        return entry

    def _ended(self, key: Key, entry: _Failures, why: str) -> list[str]:
        free = self.policy.free_failures
        if entry.count < free:
            return []
        refused = f", {entry.refused} attempts refused while too many were pending"
        return [
            f"throttling failed logins {_describe(key)} ended after {why}: "
            f"{entry.count} failures, {entry.count - free} of them not audited one by one"
            + (refused if entry.refused else "")
        ]


def _describe(key: Key) -> str:
    address, user = key
    return f"from {address}" + (f" for user {user!r}" if user else "")
