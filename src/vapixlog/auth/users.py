"""Users and roles, stored as Digest HA1 hashes only.

The store is one JSON file in the state dir (``users.json``)::

    {"realms": ["AXIS_ACCC8E123456", "AXIS_ACCC8E000010"],
     "users": {"root": {"role": "admin",
                        "ha1": {"AXIS_ACCC8E123456": {"MD5": "<hex>", "SHA-256": "<hex>"},
                                "AXIS_ACCC8E000010": {"MD5": "<hex>", "SHA-256": "<hex>"}}}}}

Only HA1 = H(name:realm:password) is kept, never the password: that is all Digest needs,
and Basic can be checked by computing the same HA1 from the offered password. The price
is that the realm is part of every hash. A device's realm is `AXIS_<serial>`, so a state
dir serving several devices (`serve --devices N`) keeps an HA1 per realm: setting a
password hashes it for every realm known then. A realm registered later (the fleet grew)
has no hash for the users that existed before, and cannot get one until their password
is given again (`missing`, `complete`). The first realm is the store's own (`realm`),
fixed when the file is created. The format before fleets (``"realm": "<one>"`` and a
flat ``"ha1"`` per user) is read as a store of one realm and rewritten on the next change.
"""

from __future__ import annotations

import builtins
import contextlib
import enum
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vapixlog.files import write_atomic

log = logging.getLogger(__name__)

#: Digest algorithms we keep an HA1 for (RFC 7616 names).
ALGORITHMS: tuple[str, ...] = ("MD5", "SHA-256")

_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,32}")
# The realm is sent inside a quoted-string; keep it to printable ASCII without the two
# characters that would need escaping, so every client parses it identically.
_REALM_RE = re.compile(r"[\x20-\x7e]{1,64}")
_HEX_RE = re.compile(r"[0-9a-f]+")


class Role(enum.StrEnum):
    """A user's group. Higher roles include everything the lower ones may do."""

    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def implies(self, other: Role) -> bool:
        """True if this role includes `other` (every role implies itself)."""
        return _RANK[self] >= _RANK[other]

    def grants(self, allowed: Iterable[str]) -> bool:
        """True if this role or a role it implies is in `allowed` (unknown names ignored)."""
        for name in allowed:
            other = _BY_VALUE.get(name)
            if other is not None and self.implies(other):
                return True
        return False


_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}
_BY_VALUE = {r.value: r for r in Role}


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class _Entry:
    user: User
    ha1: dict[str, dict[str, str]]  # realm -> algorithm -> hex; realms may be missing


def device_realm(serial: str) -> str:
    """A device's Basic and Digest realm: `AXIS_` + its serial (docs/spec/device-security.md)."""
    return f"AXIS_{serial}"


def compute_ha1(algorithm: str, name: str, realm: str, password: str) -> str:
    """HA1 = H(name:realm:password) as lowercase hex (RFC 7616 §3.4.2, UTF-8)."""
    data = f"{name}:{realm}:{password}".encode("utf-8", "surrogatepass")
    return _HASHES[algorithm](data).hexdigest()


def validate_name(name: str) -> None:
    """Raise ValueError unless `name` is 1..32 of [A-Za-z0-9_.-] (no ':' for HA1)."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError(f"invalid user name {name!r}: use 1 to 32 of A-Z a-z 0-9 _ . -")


def _validate_realm(realm: str) -> None:
    if not _REALM_RE.fullmatch(realm) or '"' in realm or "\\" in realm:
        raise ValueError(f"invalid realm {realm!r}: printable ASCII without quote or backslash")


class UserStore:
    """The user database: a JSON file, re-read when another process replaces it.

    `UserStore(path)` opens an existing file; `UserStore.load_or_create` makes one.
    Mutations re-read the file under an exclusive lock first, so a running server and
    `vapixlog users add` in another process never lose each other's changes.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._realms: tuple[str, ...] = ()
        self._entries: dict[str, _Entry] = {}
        self._stamp: tuple[int, int, int] | None = None
        #: Bumped on every change of the user set; caches compare it to stay valid.
        self.generation = 0
        self._load()
        # A comparison target for unknown users, so Basic takes the same time for them.
        self._dummy_ha1 = compute_ha1("SHA-256", secrets.token_hex(8), self.realm, "")

    @classmethod
    def load_or_create(cls, path: Path, realm: str) -> UserStore:
        """Open `path`, creating an empty store with `realm` if it does not exist.

        An existing file keeps its own realms: changing one would invalidate every hash
        (`add_realms` adds more).
        """
        path = Path(path)
        _validate_realm(realm)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _file_lock(path):
            if not path.exists():
                _write(path, {"realms": [realm], "users": {}})
        return cls(path)

    # -- reading ---------------------------------------------------------------------

    @property
    def realm(self) -> str:
        """The store's own realm: the one it was created with."""
        return self._realms[0]

    @property
    def realms(self) -> tuple[str, ...]:
        """Every realm passwords are hashed for, the store's own first."""
        return self._realms

    @property
    def is_empty(self) -> bool:
        return not self._entries

    def get(self, name: str) -> User | None:
        entry = self._entries.get(name)
        return entry.user if entry is not None else None

    def ha1(self, name: str, algorithm: str, realm: str | None = None) -> str | None:
        """The stored HA1 of `name` in `realm` (default: the store's own), else None."""
        entry = self._entries.get(name)
        if entry is None:
            return None
        hashes = entry.ha1.get(realm or self.realm)
        return hashes.get(algorithm) if hashes is not None else None

    def verify_password(self, name: str, password: str, realm: str | None = None) -> User | None:
        """Check a Basic-auth password in `realm` (default: the store's own); the user on
        success, else None (also for a user without a hash for that realm)."""
        realm = realm or self.realm
        entry = self._entries.get(name)
        hashes = entry.ha1.get(realm) if entry is not None else None
        expected = hashes["SHA-256"] if hashes is not None else self._dummy_ha1
        try:
            offered = compute_ha1("SHA-256", name, realm, password)
        except UnicodeEncodeError:
            return None
        # Compare even for unknown users, so timing does not reveal who exists.
        if hmac.compare_digest(offered, expected) and hashes is not None and entry is not None:
            return entry.user
        return None

    def missing(self, realms: Iterable[str]) -> dict[str, builtins.list[str]]:
        """User name -> those of `realms` it has no hash for (so cannot log in to);
        only users that miss one. Their passwords must be set again to fix that."""
        wanted = builtins.list(dict.fromkeys(realms))
        result: dict[str, builtins.list[str]] = {}
        for name, entry in sorted(self._entries.items()):
            lacking = [realm for realm in wanted if realm not in entry.ha1]
            if lacking:
                result[name] = lacking
        return result

    def accounts(self, realm: str | None = None) -> dict[str, tuple[Role, str]]:
        """name -> (role, a fingerprint of the password's hash in `realm`): what an audit of
        account changes compares (the fingerprint changes with the password, reveals none)."""
        realm = realm or self.realm
        return {
            name: (
                entry.user.role,
                hashlib.sha256(entry.ha1.get(realm, {}).get("SHA-256", "").encode()).hexdigest()[
                    :16
                ],
            )
            for name, entry in self._entries.items()
        }

    def list(self) -> builtins.list[User]:
        return sorted((e.user for e in self._entries.values()), key=lambda u: u.name)

    def reload_if_changed(self) -> bool:
        """Re-read the file if another process replaced it; True if it was re-read.

        One stat() call when nothing changed. A broken or missing file keeps the users
        we have: a running server must not lock everyone out because of a bad edit.
        """
        try:
            stamp = _stamp(self.path)
        except OSError:
            return False
        if stamp == self._stamp:
            return False
        with self._lock:
            try:
                self._load()
            except (OSError, ValueError) as exc:
                log.warning("keeping previous users: cannot reload %s: %s", self.path, exc)
                self._stamp = stamp  # do not retry (and warn) on every request
                return False
        return True

    # -- writing ---------------------------------------------------------------------

    def add(self, name: str, role: Role | str, password: str) -> User:
        """Create `name`, or replace its role and password (hashed for every realm)."""
        validate_name(name)
        role = Role(role)
        if not isinstance(password, str) or not password:
            raise ValueError("password must not be empty")
        user = User(name, role)
        with self._mutate() as entries:
            # Hash inside the lock: another process may have added realms meanwhile.
            entries[name] = _Entry(user, self._hash_all(name, password))
        return user

    def add_realms(self, realms: Iterable[str]) -> builtins.list[str]:
        """Register more realms (devices of the state dir); returns the new ones. Existing
        users get no hash for them (see `missing`): their passwords are not known."""
        realms = builtins.list(dict.fromkeys(realms))
        for realm in realms:
            _validate_realm(realm)
        self.reload_if_changed()
        if all(realm in self._realms for realm in realms):
            return []  # the usual start: nothing to write
        with self._mutate():
            new = [realm for realm in realms if realm not in self._realms]
            self._realms = (*self._realms, *new)
        return new

    def complete(self, name: str, password: str) -> bool:
        """Hash the password of `name` for the realms it misses, if `password` is right
        in a realm it has (e.g. the admin password of the environment at start).
        True if the user gained hashes."""
        entry = self._entries.get(name)
        if entry is None or len(entry.ha1) == len(self._realms):
            return False
        known = next(iter(entry.ha1), None)
        if known is None or self.verify_password(name, password, known) is None:
            return False
        with self._mutate() as entries:
            current = entries.get(name)
            if current is None or current.ha1.get(known) != entry.ha1[known]:
                return False  # changed by another process meanwhile: keep its version
            entries[name] = _Entry(current.user, self._hash_all(name, password))
        return True

    def remove(self, name: str) -> bool:
        """Delete `name`; False if there was no such user."""
        with self._mutate() as entries:
            return entries.pop(name, None) is not None

    # -- internals -------------------------------------------------------------------

    def _hash_all(self, name: str, password: str) -> dict[str, dict[str, str]]:
        return {
            realm: {alg: compute_ha1(alg, name, realm, password) for alg in ALGORITHMS}
            for realm in self._realms
        }

    @contextlib.contextmanager
    def _mutate(self) -> Iterator[dict[str, _Entry]]:
        # Lock across processes, start from the file's current content (another process
        # may have changed it since we read it), then write the result back atomically.
        with self._lock, _file_lock(self.path):
            self._load()
            entries = dict(self._entries)
            yield entries
            users = {
                n: {"role": e.user.role.value, "ha1": {r: dict(h) for r, h in e.ha1.items()}}
                for n, e in sorted(entries.items())
            }
            _write(self.path, {"realms": builtins.list(self._realms), "users": users})
            self._entries = entries
            self._stamp = _stamp(self.path)
            self.generation += 1

    def _load(self) -> None:
        stamp = _stamp(self.path)
        with self.path.open("rb") as f:
            raw = f.read()
        realms, entries = _parse(raw, self.path)
        # Realms are only ever added: one gone (or a new first one) means another store.
        lost = [realm for realm in self._realms if realm not in realms]
        if lost or (self._realms and realms[0] != self._realms[0]):
            raise ValueError(f"realms changed from {self._realms!r} to {realms!r}")
        self._realms = realms
        if entries != self._entries:
            self._entries = entries
            self.generation += 1
        self._stamp = stamp


def ensure_admin(store: UserStore, password: str | None) -> str | None:
    """Create `root` (admin) when there are no users at all.

    Uses `password` if given (the caller reads VAPIXLOG_ADMIN_PASSWORD), else a random one.
    Returns the generated password, to be shown once, or None if nothing was generated.
    An empty `password` counts as not given: an empty admin password is never wanted.
    """
    if not store.is_empty:
        return None
    generated = None if password else secrets.token_urlsafe(12)
    store.add("root", Role.ADMIN, password or generated or "")
    return generated


def _parse(raw: bytes, path: Path) -> tuple[tuple[str, ...], dict[str, _Entry]]:
    try:
        doc: Any = json.loads(raw)
        users = doc["users"]
        # Without "realms": the format before fleets, one realm and flat hashes.
        old = "realms" not in doc
        realms = [doc["realm"]] if old else doc["realms"]
        if not isinstance(realms, list) or not realms or not isinstance(users, dict):
            raise TypeError("realms must be a non-empty list and users an object")
        for realm in realms:
            if not isinstance(realm, str):
                raise TypeError("realms must be strings")
            _validate_realm(realm)
        if len(set(realms)) != len(realms):
            raise TypeError("realms repeat")
        entries: dict[str, _Entry] = {}
        for name, item in users.items():
            validate_name(name)
            by_realm = {realms[0]: item["ha1"]} if old else item["ha1"]
            if not isinstance(by_realm, dict) or not set(by_realm) <= set(realms):
                raise TypeError(f"hashes of {name!r} for unknown realms")
            ha1 = {realm: _hashes(by_realm[realm], name) for realm in realms if realm in by_realm}
            entries[name] = _Entry(User(name, Role(item["role"])), ha1)
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{path}: not a valid user store: {exc}") from exc
    return tuple(realms), entries


def _hashes(item: Any, name: str) -> dict[str, str]:
    """One realm's {algorithm: HA1 hex}, checked."""
    ha1 = {alg: item[alg] for alg in ALGORITHMS}
    size = {"MD5": 32, "SHA-256": 64}
    for alg, value in ha1.items():
        if not isinstance(value, str) or len(value) != size[alg] or not _HEX_RE.fullmatch(value):
            raise TypeError(f"bad {alg} hash for {name!r}")
    return ha1


def _write(path: Path, doc: dict[str, Any]) -> None:
    data = json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"
    write_atomic(path, data, mode=0o600)
    # write_atomic reuses a temp file name; if a stale temp file with wider permissions
    # was left behind by a crash, O_CREAT would not reset its mode. Hashes stay private.
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


def _stamp(path: Path) -> tuple[int, int, int]:
    # Atomic replacement gives a new inode, so this catches changes within one mtime tick.
    st = path.stat()
    return (st.st_mtime_ns, st.st_ino, st.st_size)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    lock_path = path.with_name(f".{path.name}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
