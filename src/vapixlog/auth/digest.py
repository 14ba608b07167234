"""HTTP Digest authentication (RFC 7616), qop=auth, MD5 and SHA-256.

Challenges look like an Axis device's (Apache mod_auth_digest):
``Digest realm="AXIS_<serial>", nonce="...", algorithm=MD5, qop="auth"``, in that order, with
``stale=true`` before ``qop`` when re-challenging an expired nonce, and no ``opaque``. Nonces
are Apache's shape too, and stateless: ``base64(time_us[8])`` (12 characters, ending in ``=``)
followed by 40 hex digits of ``HMAC-SHA1(secret, time)``, so issuing one costs no memory and
checking one costs one HMAC; the time is made unique per authority. The only state is the
replay tracker: the highest nonce count (nc) seen per nonce, bounded in size.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import NamedTuple

from vapixlog.auth.digest_header import (
    NC_DIGIT,
    HeaderShape,
    MalformedHeader,
    parse_params,
    shape_of,
)

ALGORITHMS = ("SHA-256", "MD5")  # challenge order: the stronger one first
DEVICE_ALGORITHMS = ("MD5",)  # the only one Axis devices offer
_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
_CANONICAL = {"md5": "MD5", "sha-256": "SHA-256"}
_REQUIRED = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")
_NONCE_LEN = 52  # 12 base64 characters of the time, 40 hex digits of its HMAC
_HA2_CACHE_SIZE = 256
_SHAPES_MAX = 1024  # connections whose last header's shape is kept

_NC_RE = re.compile(f"{NC_DIGIT}{{8}}")


class DigestResult(NamedTuple):
    """What `DigestAuthority.verify` found.

    ok: the response proves the password and the nonce is fresh: `username` is in.
    stale: the response is right but the nonce expired (or is not ours); challenge again
        with ``stale=true``: this is not a failed login.
    Otherwise a failure with a short `reason` (never containing secrets).
    """

    ok: bool
    username: str | None
    stale: bool = False
    reason: str = ""


class DigestAuthority:
    """Issues Digest challenges and verifies Digest credentials.

    `clock` (seconds) is injectable so tests can expire nonces without sleeping.
    `secret` defaults to a random per-process key: nonces from before a restart then
    verify as "stale" for a client that knows the password, which re-authenticates
    silently, as after a device reboot.
    """

    def __init__(
        self,
        realm: str,
        *,
        nonce_ttl: float = 300.0,
        secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
        max_tracked_nonces: int = 100_000,
        algorithms: tuple[str, ...] = ALGORITHMS,
    ) -> None:
        if not algorithms or any(alg not in _HASHES for alg in algorithms):
            raise ValueError(f"algorithms must be some of {ALGORITHMS}")
        self.realm = realm
        self.algorithms = algorithms
        self.nonce_ttl = nonce_ttl
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._clock = clock
        self._max_tracked = max_tracked_nonces
        self._last_nonce_us = 0
        # nonce -> (nc window state, see _accept_nc; nonce timestamp ms; the user who proved
        # the password with it), in order of first use.
        self._seen: OrderedDict[str, tuple[int, int, str]] = OrderedDict()
        # Nonces issued at or before this time (ms) that are not in `_seen` may have been
        # evicted while still valid; they are treated as stale so a replay cannot slip in.
        self._evicted_upto_ms = -1
        self._lock = threading.Lock()
        self._ha2: dict[tuple[str, str, str], str] = {}  # (algorithm, method, uri) -> HA2
        # session (a connection) -> the shape of its last header that verified, its algorithm
        self._shapes: dict[Hashable, tuple[HeaderShape, str]] = {}

    # -- challenges ------------------------------------------------------------------

    def new_nonce(self) -> str:
        return self._issue()[0]

    def _issue(self) -> tuple[str, int]:
        """A new nonce and its time (us)."""
        with self._lock:  # unique: two clients sharing a nonce would share its counts
            now_us = max(int(self._clock() * 1_000_000), self._last_nonce_us + 1)
            self._last_nonce_us = now_us
        head = struct.pack(">Q", now_us)
        mac = hmac.digest(self._secret, head, "sha1").hex()
        return base64.b64encode(head).decode("ascii") + mac, now_us

    def challenges(self, stale: bool = False, *, proven_by: str | None = None) -> list[str]:
        """``WWW-Authenticate`` values, one per algorithm (the stronger first), one nonce.

        Several challenges share their nonce: `requests` merges them into one dict, which
        only works if the shared fields agree. `proven_by` names the user whose stale
        credentials were right: the new nonce is proven for them.
        """
        nonce, time_us = self._issue()
        if proven_by is not None:
            with self._lock:
                self._remember(nonce, (0, time_us // 1000, proven_by))
        tail = ", stale=true" if stale else ""
        return [
            f'Digest realm="{self.realm}", nonce="{nonce}", algorithm={alg}{tail}, qop="auth"'
            for alg in self.algorithms
        ]

    # -- verification ----------------------------------------------------------------

    def proven(self, nonce: str, username: str) -> bool:
        """Whether `username` has proven the password with `nonce` (or its stale one).

        Only a client that knows the password can make a nonce proven, so the failed-login
        throttle lets such a client's attempts be checked even while it refuses others.
        """
        with self._lock:
            seen = self._seen.get(nonce)
        return seen is not None and seen[2] == username

    def verify(
        self,
        params: str | dict[str, str],
        *,
        method: str,
        uri: str,
        lookup: Callable[[str, str], str | None],
        session: Hashable | None = None,
    ) -> DigestResult:
        """Check Digest credentials (the text after ``Digest ``) for one request.

        `uri` is the request target as received (raw path, plus ``?query`` if any).
        `lookup(username, algorithm)` returns the stored HA1 hex, or None.
        `session` names the client's connection (its address and port): a header with the
        shape of the last one that verified on it is checked without a parse
        (`vapixlog.auth.digest_header.HeaderShape`); anything else takes the whole path.
        """
        if session is not None and type(params) is str:
            known = self._shapes.get(session)
            if known is not None and (values := known[0].values(params)) is not None:
                # Parsed, the header would pass every check of the fields up to `_confirm`
                # as the one of that shape did: `_confirm` answers what the whole path would.
                return self._confirm(known[0].params, known[1], values, method, uri, lookup)
        try:
            p = parse_params(params) if isinstance(params, str) else params
        except MalformedHeader as exc:
            return DigestResult(False, None, reason=f"malformed Digest header: {exc}")
        username = p.get("username")
        if not all(map(p.get, _REQUIRED)):  # some missing or empty: say which
            missing = [k for k in _REQUIRED if not p.get(k)]
            return DigestResult(False, username, reason=f"missing {', '.join(missing)}")
        assert username is not None
        if "username*" in p:
            return DigestResult(False, username, reason="username* not supported")
        userhash = p.get("userhash", "false").lower()
        if userhash != "false":
            reason = "userhash=true not supported" if userhash == "true" else "bad userhash"
            return DigestResult(False, username, reason=reason)
        algorithm = _CANONICAL.get(p.get("algorithm", "MD5").lower())
        if algorithm not in self.algorithms:
            return DigestResult(False, username, reason="unsupported algorithm")
        if p["realm"] != self.realm:
            return DigestResult(False, username, reason="wrong realm")
        if p["qop"] != "auth":
            return DigestResult(False, username, reason="unsupported qop")
        if not _NC_RE.fullmatch(p["nc"]):
            return DigestResult(False, username, reason="bad nc")
        values = p["nonce"], p["nc"], p["cnonce"], p["response"]  # digest_header.VARYING
        result = self._confirm(p, algorithm, values, method, uri, lookup)
        if result.ok and session is not None and isinstance(params, str):
            self._keep_shape(session, params, algorithm)
        return result

    def _keep_shape(self, session: Hashable, text: str, algorithm: str) -> None:
        if (shape := shape_of(text)) is not None:
            if len(self._shapes) >= _SHAPES_MAX:
                self._shapes.clear()
            self._shapes[session] = (shape, algorithm)

    def _confirm(
        self,
        p: dict[str, str],
        algorithm: str,
        values: tuple[str, ...],
        method: str,
        uri: str,
        lookup: Callable[[str, str], str | None],
    ) -> DigestResult:
        """The checks that need more than the header: the URI, the response, the nonce.

        `p` has been checked field by field; `values` are its nonce, nc (eight hex digits),
        cnonce and response (`digest_header.VARYING`)."""
        nonce, nc, cnonce, response = values
        username = p["username"]
        if p["uri"] != uri:
            return DigestResult(False, username, reason="uri does not match request")
        h = _HASHES[algorithm]
        stored = lookup(username, algorithm)
        # Unknown users still cost the same hashing, so timing does not reveal existence.
        ha1 = stored if stored is not None else "0" * (32 if algorithm == "MD5" else 64)
        try:
            key = (algorithm, method, uri)
            ha2 = self._ha2.get(key)
            if ha2 is None:  # a client's requests name a few URIs: kept, up to a bound
                ha2 = h(f"{method}:{uri}".encode("latin-1")).hexdigest()
                if len(self._ha2) >= _HA2_CACHE_SIZE:
                    self._ha2.clear()
                self._ha2[key] = ha2
            data = f"{ha1}:{nonce}:{nc}:{cnonce}:{p['qop']}:{ha2}"
            expected = h(data.encode("latin-1")).hexdigest()
        except UnicodeEncodeError:
            expected = ""
        # The client's hex may be upper case; ours is lower case.
        given = response.lower().encode("latin-1", "replace")
        if not hmac.compare_digest(expected.encode(), given) or stored is None:
            return DigestResult(False, username, reason="wrong password or unknown user")
        # The client knows the password. A nonce that is expired or not ours (another
        # server, or ours before a restart) is "stale": the client retries with the new
        # nonce without asking its user again.
        seen = self._seen.get(nonce)  # one lookup: atomic without the lock (checked again there)
        # A tracked nonce is one of ours (checked when first used, or issued as proven), and
        # the time it carries is the one kept: no HMAC to check again.
        ts_ms = seen[1] if seen is not None else self._nonce_time(nonce)
        if ts_ms is None or not self._fresh(ts_ms):
            return DigestResult(False, username, stale=True, reason="stale nonce")
        return self._check_nc(nonce, int(nc, 16), ts_ms, username)

    def _nonce_time(self, nonce: str) -> int | None:
        """The nonce's issue time (ms) if we issued it with the current secret, else None."""
        if len(nonce) != _NONCE_LEN:
            return None
        try:
            head = base64.b64decode(nonce[:12], validate=True)
        except (binascii.Error, ValueError):
            return None
        expected = hmac.digest(self._secret, head, "sha1").hex()
        given = nonce[12:].encode("latin-1", "replace")  # the header was decoded as latin-1
        if len(head) != 8 or not hmac.compare_digest(expected.encode(), given):
            return None
        time_us: int = struct.unpack(">Q", head)[0]
        return time_us // 1000

    def _fresh(self, ts_ms: int) -> bool:
        age = self._clock() - ts_ms / 1000
        # Allow a little negative age in case the wall clock stepped back.
        return -5.0 <= age <= self.nonce_ttl

    def _check_nc(self, nonce: str, nc: int, ts_ms: int, username: str) -> DigestResult:
        with self._lock:
            seen = self._seen.get(nonce)
            if seen is None and ts_ms <= self._evicted_upto_ms:
                return DigestResult(False, username, stale=True, reason="nonce forgotten")
            if nc == 0:
                return DigestResult(False, username, reason="bad nc")
            window = _accept_nc(seen[0] if seen else None, nc)
            if window is None:
                return DigestResult(False, username, reason="replayed nonce count")
            if seen is None:
                self._remember(nonce, (window, ts_ms, username))
            else:  # tracked already: the set of nonces does not change, nothing to sweep
                self._seen[nonce] = (window, ts_ms, username)
        return DigestResult(True, username)

    def _remember(self, nonce: str, state: tuple[int, int, str]) -> None:
        """Track `nonce`; forget expired nonces from the front (oldest first use), then
        enforce the cap. Called with the lock held."""
        self._seen[nonce] = state
        now_ms = int(self._clock() * 1000)
        ttl_ms = int(self.nonce_ttl * 1000)
        while self._seen:
            old_nonce, (_, old_ts, _) = next(iter(self._seen.items()))
            expired = old_ts + ttl_ms < now_ms
            if not expired and len(self._seen) <= self._max_tracked:
                break
            del self._seen[old_nonce]
            if not expired:
                self._evicted_upto_ms = max(self._evicted_upto_ms, old_ts)


# Clients that share one nonce over several connections (httpx's pool does) send counts that
# can arrive out of order, so instead of "greater than the highest", accept any count not seen
# yet within a window below the highest, as IPsec's anti-replay window does (RFC 4303 3.4.3).
_NC_WINDOW = 64


def _accept_nc(state: int | None, nc: int) -> int | None:
    """The new window state if `nc` is fresh, None if it is a replay or too old.

    The state packs the highest count seen (high bits) and a bitmap of the `_NC_WINDOW`
    counts below and including it (low bits): bit i set means count `highest - i` was used.
    """
    if state is None:
        return (nc << _NC_WINDOW) | 1
    highest, seen = state >> _NC_WINDOW, state & ((1 << _NC_WINDOW) - 1)
    if nc > highest:
        seen = ((seen << (nc - highest)) | 1) & ((1 << _NC_WINDOW) - 1)
        return (nc << _NC_WINDOW) | seen
    offset = highest - nc
    if offset >= _NC_WINDOW or seen >> offset & 1:
        return None
    return (highest << _NC_WINDOW) | seen | (1 << offset)
