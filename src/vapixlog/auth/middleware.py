"""Pure ASGI middleware that authenticates every request with Basic or Digest.

Pure ASGI (not BaseHTTPMiddleware) so request and response bodies stream through
untouched and the per-request cost stays at a header lookup plus a dict hit or a hash.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from vapixlog.auth.bruteforce import BruteForceBlock
from vapixlog.auth.digest import DigestAuthority
from vapixlog.auth.digest_header import parse_params
from vapixlog.auth.responses import send_blocked, send_error
from vapixlog.auth.throttle import LoginPolicy, LoginThrottle
from vapixlog.auth.users import User, UserStore
from vapixlog.edge.clientaddr import address_group
from vapixlog.ratelimit import retry_after

log = logging.getLogger(__name__)


#: scope key holding the authenticated `User`.
USER_SCOPE_KEY = "vapixlog.user"

_BASIC_CACHE_SIZE = 1024
_RELOAD_INTERVAL = 1.0

FailureHook = Callable[[str | None, str, str], None]
BlockHook = Callable[[str, int], None]  # (client address, client port) just blocked
AuditHook = Callable[[str], None]
# (claimed user name or None, client host, path) of every failed login, throttled or not
AccessFailureHook = Callable[[str | None, str, str], None]
# (user name, client host) of every authenticated request: must be quick
SuccessHook = Callable[[str, str], None]


class AuthMiddleware:
    """Require valid credentials on every http (and websocket) request.

    public_paths(path) -> True lets a request through without credentials (no user set).
    on_failure(username or None, client host, reason) is called for failed logins:
    credentials given but wrong or unparseable; not for a missing header or a stale nonce.

    Failed logins are throttled per client address and claimed user name by `login_policy`
    (None: not at all; the device's app passes the default `LoginPolicy()`): after
    `free_failures` consecutive failures the 401 is sent only after a growing delay
    (`asyncio.sleep`, so other clients go on), attempts beyond `max_pending` delayed answers
    get 429 (code 9, Retry-After) without their credentials being checked, and a fresh
    successful login resets the entry. A Digest client whose nonce already proved the
    password for that user is never refused: a guesser sharing the address and user name
    cannot lock out a logged-in admin (docs/security.md has the trade-offs).
    Only the first `free_failures` failures of an episode reach `on_failure`;
    `on_throttle(message)` audits the start of the episode and a summary at its end.
    `on_access_failure(username or None, client host, path)` sees every failed login
    (the access log's lines), throttled ones too; `on_success(username, client host)` every
    authenticated request; `on_users_changed()` a change of the user store, when this
    middleware first sees it (it re-reads the store on requests).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: UserStore,
        digest: DigestAuthority | None,
        basic: bool = True,
        public_paths: Callable[[str], bool] | None = None,
        on_failure: FailureHook | None = None,
        on_throttle: AuditHook | None = None,
        login_policy: LoginPolicy | None = None,
        block: BruteForceBlock | None = None,
        on_block: BlockHook | None = None,
        on_access_failure: AccessFailureHook | None = None,
        on_success: SuccessHook | None = None,
        on_users_changed: Callable[[], None] | None = None,
        realm: str | None = None,
    ) -> None:
        # The device's realm (default: the store's own): with `serve --devices N` one store
        # serves every device, each with its own realm and hashes.
        self.realm = realm or store.realm
        if realm is not None and realm not in store.realms:
            raise ValueError(f"realm {realm!r} is not in the user store")
        if digest is not None and digest.realm != self.realm:
            raise ValueError("DigestAuthority realm differs from the device's realm")
        if digest is None and not basic:
            raise ValueError("offer Basic, Digest or both")
        self.app = app
        self.store = store
        self.digest = digest  # None: Digest is not offered (see vapixlog.auth.policy)
        self.basic = basic
        self.public_paths = public_paths
        self.on_failure = on_failure
        self.on_throttle = on_throttle
        self.throttle = None if login_policy is None else LoginThrottle(login_policy)
        self.block = block
        self.on_block = on_block
        self.on_access_failure = on_access_failure
        self.on_success = on_success
        self.on_users_changed = on_users_changed
        self._expiry: tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle] | None = None
        # Basic header value -> User. Only successes are cached, and the whole cache is
        # dropped when the user set changes (generation), so a removed user is out at once.
        self._basic_cache: OrderedDict[bytes, User] = OrderedDict()
        self._cache_generation = store.generation
        self._next_reload = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        host = _client_host(scope)
        group = address_group(host)  # what failures are counted by
        if self.block is not None and self.block.blocked(group):
            await send_blocked(send, kind)  # every path, anonymous ones too
            return
        if self.public_paths is not None and self.public_paths(path):
            await self.app(scope, receive, send)
            return

        self._maybe_reload()
        header = _find_header(scope.get("headers", ()), b"authorization")
        throttle = self.throttle
        tracked = throttle is not None and throttle.tracking_address(group)
        if header and not tracked and (user := self._basic_cache.get(header)) is not None:
            # Basic credentials that logged in before, from an address without failures:
            # what the rest would conclude, without parsing them (most requests).
            self._basic_cache.move_to_end(header)
            if self.on_success is not None:
                self.on_success(user.name, host)
            scope[USER_SCOPE_KEY] = user
            await self.app(scope, receive, send)
            return
        claimed, proven = None, False
        if header and throttle is not None and tracked:
            claimed, nonce = _claimed_user(header)
            # A client that proved the password with its nonce is no guesser: check it even
            # while this address and user get refusals.
            proven = bool(claimed and nonce and self.digest and self.digest.proven(nonce, claimed))
            if not proven and (wait := throttle.admit(group, claimed)) is not None:
                await self._refuse(send, kind, path, host, wait)
                return
        try:
            user, given, stale = self._authenticate(scope, header)
        except Exception:
            # A bug here must neither let the request in nor become a 500 that a client
            # can trigger at will: log it and refuse like any bad credentials.
            log.exception("authentication crashed; refusing the request")
            user, given, stale = None, True, False
        if user is not None:
            # Only a fresh login ends an episode: a logged-in client's every request would
            # otherwise hand a guesser at the same address new free attempts.
            if throttle is not None and not proven and throttle.tracking_address(group):
                self._audit(throttle.success(group, claimed or user.name))
            if self.on_success is not None:
                self.on_success(user.name, host)
            scope[USER_SCOPE_KEY] = user
            await self.app(scope, receive, send)
            return
        failed = given and not stale
        blocked_now = failed and self.block is not None and self.block.failure(group, path)
        if blocked_now and self.on_block is not None:
            client = scope.get("client")
            self.on_block(host, int(client[1]) if client else 0)
        if failed and throttle is not None:
            if claimed is None and header:
                claimed, _ = _claimed_user(header)
            delay, messages = throttle.failure(group, claimed)
            self._audit(messages)
            self._arm_expiry()
            if delay > 0:
                try:  # the slot reserved by failure() is held while waiting
                    await asyncio.sleep(delay)
                finally:
                    throttle.release(group, claimed)
        proven_by = None
        if stale and header:  # stale: the client knows the password
            proven_by, _ = _claimed_user(header)
        await self._send_401(send, kind, path, failed=failed, stale=stale, proven_by=proven_by)

    # -- authentication --------------------------------------------------------------

    def _authenticate(self, scope: Scope, header: bytes | None) -> tuple[User | None, bool, bool]:
        """(user or None, credentials were given, nonce was stale)."""
        if not header:
            return None, False, False
        parts = header.split(None, 1)
        if not parts:
            return None, False, False
        scheme = parts[0].lower()
        rest = parts[1] if len(parts) > 1 else b""
        if scheme == b"basic" and self.basic:
            user = self._basic(scope, header, rest.strip())
            return user, True, False
        if scheme == b"digest" and self.digest is not None:
            return self._digest(self.digest, scope, rest)
        # Bearer, a scheme the policy does not offer, anything else: no credentials.
        return None, False, False

    def _basic(self, scope: Scope, header: bytes, token: bytes) -> User | None:
        cached = self._basic_cache.get(header)
        if cached is not None:
            self._basic_cache.move_to_end(header)
            return cached
        try:
            decoded = base64.b64decode(token, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
            self._fail(scope, None, "malformed Basic credentials")
            return None
        name, colon, password = decoded.partition(":")
        if not colon:
            self._fail(scope, None, "malformed Basic credentials")
            return None
        user = self.store.verify_password(name, password, self.realm)
        if user is None:
            known = self.store.get(name) is not None
            self._fail(scope, name, "wrong password" if known else "unknown user")
            return None
        self._basic_cache[header] = user
        if len(self._basic_cache) > _BASIC_CACHE_SIZE:
            self._basic_cache.popitem(last=False)
        return user

    def _digest(
        self, digest: DigestAuthority, scope: Scope, rest: bytes
    ) -> tuple[User | None, bool, bool]:
        method = "GET" if scope["type"] == "websocket" else scope.get("method", "GET")
        result = digest.verify(
            rest.decode("latin-1"),  # lossless: the hash input must be the bytes as sent
            method=method,
            uri=_request_target(scope),
            lookup=self._ha1,
            session=_connection(scope),
        )
        if result.ok and result.username is not None:
            user = self.store.get(result.username)
            if user is not None:
                return user, True, False
            self._fail(scope, result.username, "unknown user")
            return None, True, False
        if result.stale:
            return None, True, True
        self._fail(scope, result.username, result.reason)
        return None, True, False

    def _ha1(self, name: str, algorithm: str) -> str | None:
        return self.store.ha1(name, algorithm, self.realm)

    def _fail(self, scope: Scope, username: str | None, reason: str) -> None:
        host = _client_host(scope)
        if self.on_access_failure is not None:
            self.on_access_failure(username, host, scope.get("path", ""))
        if self.on_failure is None:
            return
        if self.throttle is not None and self.throttle.throttled(address_group(host), username):
            return  # summarised when the throttling episode ends
        self.on_failure(username, host, reason)

    # -- failed-login throttling -----------------------------------------------------

    def _audit(self, messages: list[str]) -> None:
        if self.on_throttle is not None:
            for message in messages:
                self.on_throttle(message)

    def _arm_expiry(self) -> None:
        """A timer that ends quiet throttling episodes (with their summary) on time."""
        assert self.throttle is not None
        loop = asyncio.get_running_loop()
        if self._expiry is not None:
            armed_loop, handle = self._expiry
            if armed_loop is loop and not handle.cancelled():
                return
        when = self.throttle.next_expiry()
        if when is None:
            self._expiry = None
            return
        delay = max(0.0, when - self.throttle.clock()) + 0.05
        self._expiry = (loop, loop.call_later(delay, self._on_expiry))

    def _on_expiry(self) -> None:
        self._expiry = None
        assert self.throttle is not None
        self._audit(self.throttle.expire())
        self._arm_expiry()

    async def _refuse(self, send: Send, kind: str, path: str, host: str, wait: float) -> None:
        """429: too many delayed failures from this address are outstanding."""
        seconds = retry_after(wait)
        message = f"Rate limited: too many failed logins from {host}, retry after {seconds} s"
        headers = [(b"retry-after", str(seconds).encode())]
        await send_error(send, kind, path, status=429, code=9, message=message, headers=headers)

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now >= self._next_reload:
            self._next_reload = now + _RELOAD_INTERVAL
            self.store.reload_if_changed()
        if self.store.generation != self._cache_generation:
            self._basic_cache.clear()
            self._cache_generation = self.store.generation
            if self.on_users_changed is not None:
                self.on_users_changed()

    async def _send_401(
        self, send: Send, kind: str, path: str, *, failed: bool, stale: bool, proven_by: str | None
    ) -> None:
        message = "Authentication failed" if failed else "Authentication required"
        challenges = self.digest.challenges(stale, proven_by=proven_by) if self.digest else []
        if self.basic:
            challenges.append(f'Basic realm="{self.realm}"')
        headers = [(b"www-authenticate", c.encode()) for c in challenges]
        await send_error(send, kind, path, status=401, code=3, message=message, headers=headers)


def _client_host(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _connection(scope: Scope) -> tuple[Any, ...] | None:
    """The request's connection as its client (address, port), as ASGI servers give it."""
    client = scope.get("client")
    return client if type(client) is tuple else None


def _claimed_user(header: bytes) -> tuple[str | None, str | None]:
    """(user name, Digest nonce) as an Authorization header claims them, unverified."""
    parts = header.split(None, 1)  # any whitespace, as `_authenticate` splits it
    scheme = parts[0].lower() if parts else b""
    rest = parts[1] if len(parts) > 1 else b""
    try:
        if scheme == b"basic":
            decoded = base64.b64decode(rest.strip(), validate=True).decode("utf-8")
            name, colon, _ = decoded.partition(":")
            return (name if colon else None), None
        if scheme == b"digest":
            params = parse_params(rest.decode("latin-1"))
            return params.get("username"), params.get("nonce")
    except (binascii.Error, ValueError):  # MalformedHeader and UnicodeDecodeError too
        pass
    return None, None


def _find_header(headers: Any, name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:  # ASGI servers send header names in lower case
            return bytes(value)
    return None


def _request_target(scope: Scope) -> str:
    """The request target as the client sent it: raw path plus ``?query`` if any."""
    raw = scope.get("raw_path")
    if raw is None:
        # Servers without raw_path: the decoded path is the best we have.
        raw = scope.get("path", "").encode("utf-8")
    target: str = raw.decode("latin-1")
    query: bytes = scope.get("query_string", b"")
    return f"{target}?{query.decode('latin-1')}" if query else target
