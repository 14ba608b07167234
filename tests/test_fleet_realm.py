"""Per-device Digest realm with `serve --devices N` (DECISIONS 2): each device challenges
with `AXIS_<its serial>` and the user store keeps an HA1 per realm, never a password."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from servers import Server, free_port_block, run_cli
from vapixlog import device as device_module
from vapixlog.auth import Role, User, UserStore, compute_ha1
from vapixlog.cli.users import register_realms
from vapixlog.server import device_configs, device_realms
from vapixlog.syslog.system_log import LogLimits

COUNT = 3
ROOT_PASSWORD = "rootpass"  # what `Server.start` gives as VAPIXLOG_ADMIN_PASSWORD
ALICE = ("alice", "alice:in wonderländ")
R1, R2, R3 = "AXIS_ACCC8E000001", "AXIS_ACCC8E000002", "AXIS_ACCC8E000003"
CURL = Path("/usr/bin/curl")


# -- the store -----------------------------------------------------------------------


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "users.json"


def test_password_is_hashed_for_every_realm(path: Path) -> None:
    store = UserStore.load_or_create(path, R1)
    assert store.add_realms([R2, R1, R2]) == [R2]
    assert store.add_realms([R1, R2]) == []  # known: nothing to do
    store.add("alice", Role.OPERATOR, ALICE[1])
    for realm in (R1, R2):
        assert store.ha1("alice", "MD5", realm) == compute_ha1("MD5", "alice", realm, ALICE[1])
        assert store.verify_password("alice", ALICE[1], realm) == User("alice", Role.OPERATOR)
        assert store.verify_password("alice", "wrong", realm) is None
    assert store.ha1("alice", "MD5", R3) is None
    assert store.verify_password("alice", ALICE[1], R3) is None
    assert store.realm == R1 and store.realms == (R1, R2)
    doc = json.loads(path.read_bytes())
    assert doc["realms"] == [R1, R2]
    assert set(doc["users"]["alice"]["ha1"]) == {R1, R2}
    assert ALICE[1].encode() not in path.read_bytes()


def test_a_realm_added_later_lacks_the_old_users(path: Path) -> None:
    store = UserStore.load_or_create(path, R1)
    store.add("root", Role.ADMIN, "rootpw")
    store.add("alice", Role.VIEWER, "alicepw")
    other = UserStore(path)  # `serve` in another process registers a third device
    other.add_realms([R3])
    store.reload_if_changed()
    assert store.realms == (R1, R3)
    assert store.missing([R1, R3]) == {"alice": [R3], "root": [R3]}
    assert not store.complete("alice", "wrong")  # a wrong password proves nothing
    assert store.complete("root", "rootpw")
    assert store.verify_password("root", "rootpw", R3) is not None
    assert store.missing([R1, R3]) == {"alice": [R3]}
    store.add("alice", Role.VIEWER, "alicepw")  # setting it again fixes it
    assert store.missing([R1, R3]) == {}


def test_old_format_loads_and_is_rewritten(path: Path) -> None:
    hashes = {alg: compute_ha1(alg, "root", R1, "pw") for alg in ("MD5", "SHA-256")}
    old = {"realm": R1, "users": {"root": {"role": "admin", "ha1": hashes}}}
    path.write_text(json.dumps(old))
    store = UserStore.load_or_create(path, R2)  # an existing file keeps its realm
    assert store.realms == (R1,)
    assert store.verify_password("root", "pw") == User("root", Role.ADMIN)
    assert store.ha1("root", "MD5", R1) == hashlib.md5(f"root:{R1}:pw".encode()).hexdigest()
    store.add_realms([R2])
    doc = json.loads(path.read_bytes())
    assert doc["realms"] == [R1, R2]
    assert doc["users"]["root"]["ha1"] == {R1: hashes}


@pytest.mark.parametrize(
    "content",
    [
        {"realms": [], "users": {}},
        {"realms": [R1, R1], "users": {}},
        {"realms": [R1], "users": {"a": {"role": "admin", "ha1": {R2: {}}}}},
        {"realms": [R1], "users": {"a": {"role": "admin", "ha1": {R1: {"MD5": "x"}}}}},
    ],
)
def test_bad_realm_lists_are_rejected(path: Path, content: object) -> None:
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match="not a valid user store"):
        UserStore(path)


def test_register_realms_warns_once_with_the_fix(path: Path) -> None:
    store = UserStore.load_or_create(path, R1)
    store.add("root", Role.ADMIN, "rootpw")
    store.add("op", Role.OPERATOR, "oppw")
    devices = [R1, R2, R3]
    line = register_realms(store, devices, state_dir=Path("/s"), admin_password="rootpw")
    assert line is not None and "\n" not in line
    assert "user op (operator) cannot log in to 2 of 3 devices" in line
    assert "vapixlog users add op --role operator --state-dir /s" in line
    assert register_realms(store, devices, state_dir=Path("/s"), admin_password=None) == line
    store.add("op", Role.OPERATOR, "oppw")
    assert register_realms(store, devices, state_dir=Path("/s"), admin_password=None) is None


# -- a real fleet ----------------------------------------------------------------------


def start_fleet(state_dir: Path, count: int, port: int) -> Server:
    server = Server(state_dir, port=port, extra_args=["--devices", str(count)])
    server.start()
    return server


def urls(server: Server, count: int) -> list[str]:
    return [f"http://127.0.0.1:{server.port + index}" for index in range(count)]


def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """The server re-reads users.json at most once a second."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def add_user(state_dir: Path, name: str, role: str, password: str) -> None:
    result = run_cli(
        "users", "add", name, "--role", role, "--password", password, state_dir=state_dir
    )
    assert result.returncode == 0, result.stderr


def status(url: str, auth: httpx.Auth | tuple[str, str] | None) -> int:
    return httpx.get(url + "/config/rest/log/v1", auth=auth, timeout=5).status_code


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, list[str]]]:
    state = tmp_path_factory.mktemp("fleet") / "state"
    server = start_fleet(state, COUNT, free_port_block(COUNT))
    # Added while serving: hashed for every device's realm, picked up by the server.
    add_user(state, "alice", "operator", ALICE[1])
    yield server, urls(server, COUNT)
    if server.proc:
        server.stop()


def test_each_device_challenges_with_its_own_serial(fleet: tuple[Server, list[str]]) -> None:
    server, devices = fleet
    realms: list[str] = []
    for url in devices:
        challenges = httpx.get(url + "/config/rest/log/v1").headers.get_list("www-authenticate")
        found = {m[1] for c in challenges if (m := re.search(r'realm="([^"]*)"', c))}
        assert len(found) == 1 and len(challenges) == 3, challenges  # Digest x2 and Basic
        report = httpx.get(url + "/axis-cgi/serverreport.cgi", auth=("root", ROOT_PASSWORD))
        serial = re.search(r"^Serial No: (\S+)$", report.text, re.MULTILINE)
        assert serial, report.text
        assert found == {f"AXIS_{serial[1]}"}
        realms.extend(found)
    assert len(set(realms)) == COUNT
    assert "cannot log in" not in server.output()
    # The store knows them all, and holds hashes only.
    raw = (server.state_dir / "users.json").read_bytes()
    doc = json.loads(raw)
    assert set(realms) <= set(doc["realms"])
    assert ROOT_PASSWORD.encode() not in raw and b"wonderl" not in raw
    for user in doc["users"].values():
        assert set(realms) <= set(user["ha1"])


@pytest.mark.parametrize("name,password", [("root", ROOT_PASSWORD), ALICE])
def test_digest_and_basic_log_in_on_every_device(
    fleet: tuple[Server, list[str]], name: str, password: str
) -> None:
    for url in fleet[1]:
        wait_until(lambda: status(url, (name, password)) == 200)  # noqa: B023
        assert status(url, httpx.DigestAuth(name, password)) == 200
        assert status(url, httpx.DigestAuth(name, "wrong")) == 401


@pytest.mark.skipif(not CURL.exists(), reason="needs curl")
def test_curl_digest_on_every_device(fleet: tuple[Server, list[str]]) -> None:
    for url in fleet[1]:
        result = subprocess.run(
            [
                *(str(CURL), "-s", "-o", "/dev/null", "-w", "%{http_code}", "--digest"),
                *("-u", f"root:{ROOT_PASSWORD}", url + "/config/rest/log/v1"),
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert result.stdout == "200", result


def test_fleet_growing_warns_about_users_it_cannot_know(tmp_path: Path) -> None:
    state = tmp_path / "state"
    port = free_port_block(3)
    two = start_fleet(state, 2, port)
    add_user(state, "bob", "viewer", "bobpw")
    two.stop()
    three = start_fleet(state, 3, port)
    try:
        lines = [line for line in three.output().splitlines() if "cannot log in" in line]
        assert len(lines) == 1, three.output()
        assert "user bob (viewer) cannot log in to 1 of 3 devices" in lines[0]
        assert f"vapixlog users add bob --role viewer --state-dir {state}" in lines[0]
        first, _, third = urls(three, 3)
        assert status(first, ("bob", "bobpw")) == 200
        assert status(third, ("bob", "bobpw")) == 401
        assert status(third, httpx.DigestAuth("bob", "bobpw")) == 401
        # root's password comes from the environment at every start: it is kept working.
        assert status(third, httpx.DigestAuth("root", ROOT_PASSWORD)) == 200
        add_user(state, "bob", "viewer", "bobpw")  # the fix the warning names
        wait_until(lambda: status(third, httpx.DigestAuth("bob", "bobpw")) == 200)
    finally:
        three.stop()


def test_new_devices_of_a_fleet_never_share_a_serial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random serials have 24 bits (after Axis's OUI): a 10,000-device fleet drew the same
    one for a few devices, which then shared a realm and looked like one device to a
    capture. A new device draws again until its serial is free in the fleet, also next to
    devices made by an earlier start."""
    draws = iter(["00aa01", "00aa01", "00aa02", "00aa01", "00aa02", "00aa03"])
    monkeypatch.setattr(device_module.secrets, "token_hex", lambda _: next(draws))
    configs = device_configs(
        tmp_path, 3, serial=None, hostname=None, limits=LogLimits(), rate_limit=None
    )
    device_realms(configs[:1])  # an earlier start made the first device only
    assert device_realms(configs) == [
        "AXIS_ACCC8E00AA01",
        "AXIS_ACCC8E00AA02",
        "AXIS_ACCC8E00AA03",
    ]
    assert device_realms(configs) == device_realms(configs)  # kept across starts
