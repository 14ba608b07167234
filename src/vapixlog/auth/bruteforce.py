"""The device's brute-force protection (`root.System.PreventDoSAttack`, device-security.md
section 2): Apache mod_evasive applied to failed logins, on by default since AXIS OS 11.5.

Completed wrong-credential checks are counted per client address and page (`DoSPageCount`
per `DoSPageInterval`) and per client address on any page (`DoSSiteCount` per
`DoSSiteInterval`); a challenge without credentials is not a failure. Past either count the
address is blocked for `DoSBlockingPeriod` seconds: every request from it, on every path,
gets 403, whatever its credentials. The block clears by itself; there is no cumulative
lock-out. A shared address (a NAT) blocks its admin too: that is the device's behaviour
(docs/security.md).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from vapixlog.ratelimit import Clock


@dataclass(frozen=True)
class DosPolicy:
    """The parameters, with AXIS OS 11.5+ defaults."""

    page_count: int = 20
    page_interval: float = 1.0
    site_count: int = 20
    site_interval: float = 1.0
    blocking_period: float = 10.0
    max_addresses: int = 4096  # tracked at most; the least recently failing are forgotten


@dataclass
class _Address:
    site: deque[float] = field(default_factory=deque)
    pages: dict[str, deque[float]] = field(default_factory=dict)
    blocked_until: float = 0.0


class BruteForceBlock:
    """Failure counts and blocks per client address, with an injectable monotonic clock."""

    def __init__(self, policy: DosPolicy | None = None, *, clock: Clock = time.monotonic):
        self.policy = policy or DosPolicy()
        self.clock = clock
        self._addresses: OrderedDict[str, _Address] = OrderedDict()

    def blocked(self, address: str) -> bool:
        entry = self._addresses.get(address)
        return entry is not None and entry.blocked_until > self.clock()

    def failure(self, address: str, path: str) -> bool:
        """Count a failed login; True when this failure starts a block of `address`."""
        now = self.clock()
        entry = self._addresses.pop(address, None) or _Address()
        self._addresses[address] = entry  # most recent last
        while len(self._addresses) > self.policy.max_addresses:
            self._addresses.popitem(last=False)
        if entry.blocked_until > now:
            return False
        policy = self.policy
        page = entry.pages.setdefault(path, deque())
        over_site = _count(entry.site, now, policy.site_interval) > policy.site_count
        over_page = _count(page, now, policy.page_interval) > policy.page_count
        if len(entry.pages) > policy.page_count * 4:  # many pages: keep only this one
            entry.pages = {path: page}
        if over_site or over_page:
            entry.blocked_until = now + policy.blocking_period
            entry.site.clear()
            entry.pages.clear()
            return True
        return False


def _count(window: deque[float], now: float, interval: float) -> int:
    """Add `now` to the sliding window and return how many it holds."""
    window.append(now)
    while window and window[0] <= now - interval:
        window.popleft()
    return len(window)
