"""UserStore, roles and ensure_admin."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from vapixlog.auth import Role, User, UserStore, compute_ha1, ensure_admin

REALM = "AXIS_ACCC8E123456"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "users.json"


@pytest.fixture
def store(path: Path) -> UserStore:
    return UserStore.load_or_create(path, REALM)


# -- roles -----------------------------------------------------------------------------

IMPLIES = {
    (Role.ADMIN, Role.ADMIN): True,
    (Role.ADMIN, Role.OPERATOR): True,
    (Role.ADMIN, Role.VIEWER): True,
    (Role.OPERATOR, Role.ADMIN): False,
    (Role.OPERATOR, Role.OPERATOR): True,
    (Role.OPERATOR, Role.VIEWER): True,
    (Role.VIEWER, Role.ADMIN): False,
    (Role.VIEWER, Role.OPERATOR): False,
    (Role.VIEWER, Role.VIEWER): True,
}


@pytest.mark.parametrize(("role", "other"), list(IMPLIES))
def test_implies_matrix(role: Role, other: Role) -> None:
    assert role.implies(other) is IMPLIES[(role, other)]


@pytest.mark.parametrize(
    ("role", "allowed", "expected"),
    [
        (Role.ADMIN, ["viewer"], True),
        (Role.ADMIN, ["operator"], True),
        (Role.ADMIN, ["admin"], True),
        (Role.OPERATOR, ["admin"], False),
        (Role.OPERATOR, ["viewer"], True),
        (Role.OPERATOR, ["admin", "operator"], True),
        (Role.VIEWER, ["admin", "operator"], False),
        (Role.VIEWER, ["viewer"], True),
        (Role.ADMIN, [], False),
        (Role.ADMIN, ["root", "superuser"], False),  # unknown names grant nothing
        (Role.VIEWER, (r for r in ["nobody", "viewer"]), True),  # any iterable
    ],
)
def test_grants(role: Role, allowed: list[str], expected: bool) -> None:
    assert role.grants(allowed) is expected


def test_role_is_str_enum() -> None:
    assert Role("operator") is Role.OPERATOR
    assert f"{Role.ADMIN}" == "admin"


# -- store -----------------------------------------------------------------------------


def test_file_holds_only_hashes(store: UserStore, path: Path) -> None:
    password = "s3cret-Passw0rd:with:colons"
    store.add("alice", Role.OPERATOR, password)
    raw = path.read_bytes()
    assert password.encode() not in raw
    assert b"s3cret" not in raw
    doc = json.loads(raw)
    assert doc["realms"] == [REALM]
    entry = doc["users"]["alice"]
    assert entry["role"] == "operator"
    assert entry["ha1"] == {
        REALM: {
            "MD5": hashlib.md5(f"alice:{REALM}:{password}".encode()).hexdigest(),
            "SHA-256": hashlib.sha256(f"alice:{REALM}:{password}".encode()).hexdigest(),
        }
    }
    assert set(entry) == {"role", "ha1"}


def test_file_mode_0600_even_with_permissive_umask(path: Path) -> None:
    old = os.umask(0)
    try:
        store = UserStore.load_or_create(path, REALM)
        store.add("bob", "viewer", "pw")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_stale_temp_file_does_not_widen_mode(path: Path) -> None:
    store = UserStore.load_or_create(path, REALM)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(b"junk")
    tmp.chmod(0o644)
    store.add("bob", Role.VIEWER, "pw")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_is_atomic_replace(store: UserStore, path: Path) -> None:
    store.add("a", Role.VIEWER, "pw")
    inode = path.stat().st_ino
    store.add("b", Role.VIEWER, "pw")
    # A new inode means the file was replaced by rename, never rewritten in place.
    assert path.stat().st_ino != inode
    assert not path.with_name(f".{path.name}.tmp").exists()
    json.loads(path.read_bytes())


def test_realm_is_kept(path: Path) -> None:
    UserStore.load_or_create(path, REALM).add("root", Role.ADMIN, "pw")
    again = UserStore.load_or_create(path, "AXIS_000000000000")
    assert again.realm == REALM
    assert again.verify_password("root", "pw") == User("root", Role.ADMIN)


def test_open_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        UserStore(tmp_path / "nope.json")


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"realm": "R"}',
        b'{"realm": "R", "users": {"bad name": {"role": "admin", "ha1": {}}}}',
        b'{"realm": "R", "users": {"a": {"role": "king", "ha1": {}}}}',
        b'{"realm": "R", "users": {"a": {"role": "admin", "ha1": {"MD5": "x", "SHA-256": "y"}}}}',
        b'{"realm": "bad\\"realm", "users": {}}',
    ],
)
def test_corrupt_file_rejected_on_open(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a valid user store"):
        UserStore(path)


def test_add_get_list_remove(store: UserStore) -> None:
    assert store.is_empty
    assert store.add("zed", Role.VIEWER, "pw1") == User("zed", Role.VIEWER)
    store.add("amy", "admin", "pw2")
    assert not store.is_empty
    assert store.list() == [User("amy", Role.ADMIN), User("zed", Role.VIEWER)]
    assert store.get("amy") == User("amy", Role.ADMIN)
    assert store.get("nobody") is None
    # add replaces role and password
    store.add("zed", Role.OPERATOR, "new")
    assert store.get("zed") == User("zed", Role.OPERATOR)
    assert store.verify_password("zed", "pw1") is None
    assert store.verify_password("zed", "new") == User("zed", Role.OPERATOR)
    assert store.remove("zed") is True
    assert store.remove("zed") is False
    assert store.list() == [User("amy", Role.ADMIN)]


def test_ha1(store: UserStore) -> None:
    store.add("u", Role.VIEWER, "pässword")
    assert store.ha1("u", "MD5") == compute_ha1("MD5", "u", REALM, "pässword")
    assert store.ha1("u", "SHA-256") == hashlib.sha256(f"u:{REALM}:pässword".encode()).hexdigest()
    assert store.ha1("u", "SHA-512-256") is None
    assert store.ha1("nobody", "MD5") is None


def test_verify_password(store: UserStore) -> None:
    store.add("carol", Role.OPERATOR, "a:b:c")
    assert store.verify_password("carol", "a:b:c") == User("carol", Role.OPERATOR)
    assert store.verify_password("carol", "a:b") is None
    assert store.verify_password("carol", "") is None
    assert store.verify_password("Carol", "a:b:c") is None
    assert store.verify_password("nobody", "a:b:c") is None
    assert store.verify_password("nobody", "\udcff") is None  # unencodable: no exception


@pytest.mark.parametrize(
    "name",
    ["", "a" * 33, "a:b", "a b", "ä", "a/b", "a\n", "root\x00", "x@y"],
)
def test_name_validation(store: UserStore, name: str) -> None:
    with pytest.raises(ValueError, match="invalid user name"):
        store.add(name, Role.VIEWER, "pw")
    assert store.is_empty


@pytest.mark.parametrize("name", ["a", "a" * 32, "Root_1.x-y", "0", "..."])
def test_valid_names(store: UserStore, name: str) -> None:
    store.add(name, Role.VIEWER, "pw")
    assert store.get(name) is not None


def test_password_and_role_validation(store: UserStore) -> None:
    with pytest.raises(ValueError, match="password"):
        store.add("a", Role.VIEWER, "")
    with pytest.raises(ValueError):
        store.add("a", "superuser", "pw")
    store.add("a", Role.VIEWER, ":")  # a colon-only password is fine
    assert store.verify_password("a", ":") is not None


def test_reload_picks_up_external_change(store: UserStore, path: Path) -> None:
    store.add("root", Role.ADMIN, "pw")
    generation = store.generation
    assert store.reload_if_changed() is False  # our own write does not count
    other = UserStore(path)  # as `vapixlog users add` in another process
    other.add("eve", Role.VIEWER, "pw2")
    assert store.get("eve") is None
    assert store.reload_if_changed() is True
    assert store.get("eve") == User("eve", Role.VIEWER)
    assert store.generation != generation
    assert store.reload_if_changed() is False
    other.remove("root")
    assert store.reload_if_changed() is True
    assert store.get("root") is None


def test_mutations_merge_with_external_changes(store: UserStore, path: Path) -> None:
    other = UserStore(path)
    other.add("one", Role.VIEWER, "pw")
    store.add("two", Role.VIEWER, "pw")  # must not drop "one" written meanwhile
    assert {u.name for u in UserStore(path).list()} == {"one", "two"}


def test_reload_keeps_users_when_file_broken(store: UserStore, path: Path) -> None:
    store.add("root", Role.ADMIN, "pw")
    path.write_bytes(b"{broken")
    assert store.reload_if_changed() is False
    assert store.verify_password("root", "pw") is not None
    path.unlink()
    assert store.reload_if_changed() is False
    assert store.get("root") is not None


def test_ensure_admin_random(store: UserStore) -> None:
    generated = ensure_admin(store, None)
    assert generated is not None
    assert len(generated) >= 16
    assert store.verify_password("root", generated) == User("root", Role.ADMIN)
    assert generated.encode() not in store.path.read_bytes()
    assert ensure_admin(store, None) is None  # only once
    assert [u.name for u in store.list()] == ["root"]


def test_ensure_admin_given_password(store: UserStore) -> None:
    assert ensure_admin(store, "from-env") is None
    assert store.verify_password("root", "from-env") is not None


def test_ensure_admin_empty_password_generates(store: UserStore) -> None:
    generated = ensure_admin(store, "")
    assert generated
    assert store.verify_password("root", generated) is not None


def test_ensure_admin_leaves_existing_users(store: UserStore) -> None:
    store.add("alice", Role.VIEWER, "pw")
    assert ensure_admin(store, "x") is None
    assert store.get("root") is None


def test_invalid_realm_rejected(path: Path) -> None:
    with pytest.raises(ValueError, match="realm"):
        UserStore.load_or_create(path, 'bad"realm')
