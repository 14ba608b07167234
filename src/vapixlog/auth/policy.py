"""Which HTTP authentication schemes a device offers: `Network.HTTP.AuthenticationPolicy`.

The device's values (device-security.md section 1), per server (a port serves HTTP or HTTPS,
never both, so the choice is made once):

| policy | HTTP | HTTPS |
|---|---|---|
| `basic` | Basic | Basic |
| `digest` | Digest | Digest |
| `basic_digest` | Digest | Digest |
| `recommended` (default) | Digest | Basic |

Digest is MD5 with `qop="auth"`, the only kind devices offer. One value of ours, `any`, offers
and accepts Basic, Digest SHA-256 and Digest MD5 on every port, for tests and benchmarks that
want every scheme. A scheme a policy does not offer is treated like no credentials at all (a
plain challenge), not as a failed login.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from vapixlog.auth.digest import ALGORITHMS, DEVICE_ALGORITHMS


class AuthPolicy(enum.StrEnum):
    BASIC = "basic"
    DIGEST = "digest"
    BASIC_DIGEST = "basic_digest"
    RECOMMENDED = "recommended"
    ANY = "any"


@dataclass(frozen=True)
class Schemes:
    """What one server offers: Basic or not, and the Digest algorithms (none: no Digest)."""

    basic: bool
    digest: tuple[str, ...]


def schemes(policy: AuthPolicy, *, https: bool) -> Schemes:
    if policy is AuthPolicy.ANY:
        return Schemes(basic=True, digest=ALGORITHMS)
    if policy is AuthPolicy.BASIC or (policy is AuthPolicy.RECOMMENDED and https):
        return Schemes(basic=True, digest=())
    return Schemes(basic=False, digest=DEVICE_ALGORITHMS)
