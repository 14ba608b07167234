"""Fault injection: the SPEC grammar, `serve --fault` and `--control` end to end, and no
fault layer at all unless asked for. (Each fault kind through real clients, in its
endpoint's dialect: tests/plugin_project/test_faults.py, run by test_pytest_plugin.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import client_for, start_server
from servers import USERS, Server, free_port_block, run_cli
from vapixlog.app import create_app
from vapixlog.auth import UserStore
from vapixlog.device import Device, DeviceConfig
from vapixlog.edge.crosssite import CrossSiteGuard
from vapixlog.faults import FaultPlan, FaultSpecError, parse
from vapixlog.faults.layer import FaultLayer

CONTROL = "/vapixlog/control/faults"
READY = "/axis-cgi/systemready.cgi"
CALL = {"apiVersion": "1", "method": "systemready"}
README = Path(__file__).parent.parent / "README.md"


# -- the grammar ---------------------------------------------------------------------


def test_the_readme_examples_parse() -> None:
    section = README.read_text().split("### Faults", 1)[1].split("\n## ", 1)[0]
    examples = re.findall(r"--fault '([^']+)'", section)
    assert len(examples) >= 8
    for example in examples:
        assert str(parse(example)) == example


def test_what_a_spec_says() -> None:
    fault = parse("POST /axis-cgi/*.cgi:reset=after,every=3")
    assert fault.target.methods == frozenset({"POST"})
    assert fault.target.globs == ("/axis-cgi/*.cgi",)
    assert (fault.action, fault.value, fault.when.every) == ("reset", "after", 3)
    seeded = parse("writeMessage:delay=0.5,p=0.25,seed=9")
    assert (seeded.when.probability, seeded.when.seed, seeded.value) == (0.25, 9, 0.5)
    assert parse("reboot:hang").device_level
    assert not parse("report:takes=30").device_level  # the edge holds the report's body


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("writeMessage", "expected TARGET:ACTION"),
        ("nosuchthing:delay=1", "unknown target"),
        ("get /x:delay=1", "not an HTTP method"),
        ("report:status=200", "400..599"),
        ("report:status=abc", "not a number"),
        ("report:delay=-1", "0..3600"),
        ("report:delay=nan", "finite"),
        ("report:reset=later", "request, before or after"),
        ("report:truncate=1.5", "whole number"),
        ("report:slow=0", "whole number"),
        ("report:delay=1,status=500", "one action per fault"),
        ("report:first=2", "no action"),
        ("report:status=500,first=0", "positive whole number"),
        ("report:status=500,first=2,every=3", "not both"),
        ("report:status=500,p=1.5", "0..1"),
        ("report:status=500,seed=3", "seed goes with p"),
        ("systemready:hang", "reboot only"),
        ("reboot:takes=5", "report only"),
        ("reboot:hang=1", "takes no value"),
        ("report:colour=red", "unknown item"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, complaint: str) -> None:
    with pytest.raises(FaultSpecError, match=re.escape(complaint)):
        parse(spec)


def test_a_bad_fault_on_the_command_line_exits_2(tmp_path: Path) -> None:
    run = run_cli("serve", "--fault", "report:status=600", state_dir=tmp_path / "state")
    assert run.returncode == 2
    assert "--fault" in run.stderr and "400..599" in run.stderr
    assert not (tmp_path / "state").exists()  # refused before anything was created


# -- zero cost when off ----------------------------------------------------------------


def _layers(app: object) -> list[type]:
    found = []
    while app is not None:
        found.append(type(app))
        app = getattr(app, "app", None)
    return found


def test_no_fault_layer_unless_asked_for(tmp_path: Path) -> None:
    device = Device(DeviceConfig(tmp_path / "device"))
    users = UserStore.load_or_create(tmp_path / "users.json", realm="AXIS_TEST")
    plain = _layers(create_app(device, users))
    assert FaultLayer not in plain and CrossSiteGuard in plain
    faulty = _layers(create_app(device, users, faults=FaultPlan(["report:delay=1"])))
    assert faulty.index(FaultLayer) == faulty.index(CrossSiteGuard) - 1
    assert FaultLayer in _layers(create_app(device, users, control=True))


# -- serve --fault and --control, end to end ------------------------------------------


@pytest.fixture(scope="module")
def controlled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("control") / "state", "--control")
    yield server
    if server.proc:
        server.stop()


def test_serve_fault_applies_to_every_device(tmp_path: Path) -> None:
    fault = "systemready:status=503,first=1"
    server = start_server(
        tmp_path / "state", "--devices", "2", "--fault", fault, port=free_port_block(2)
    )
    try:
        for port in (server.port, server.port + 1):  # each device counts its own calls
            with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
                first, second = (client.post(READY, json=CALL).json() for _ in range(2))
            assert first["error"]["code"] == 503 and "data" in second
        with client_for(server) as admin:  # no --control: no endpoint
            assert admin.get(CONTROL).status_code == 404
    finally:
        server.stop()


def test_control_lists_sets_adds_and_clears(controlled: Server) -> None:
    with client_for(controlled, digest=True) as admin:
        put = admin.put(CONTROL, json={"faults": ["systemready:status=500"]})
        assert put.status_code == 200
        assert put.json() == {"faults": ["systemready:status=500"]}
        assert admin.post(READY, json=CALL).json()["error"]["code"] == 500
        added = admin.post(CONTROL, json={"faults": ["report:takes=1"]})
        assert added.json()["faults"] == ["systemready:status=500", "report:takes=1"]
        assert admin.get(CONTROL).json() == added.json()
        bad = admin.put(CONTROL, json={"faults": ["report:status=200"]})
        assert bad.status_code == 400 and "400..599" in bad.json()["error"]
        assert admin.get(CONTROL).json() == added.json()  # unchanged
        assert admin.put(CONTROL, content=b"[1]").status_code == 400
        assert admin.delete(CONTROL).json() == {"faults": []}
        assert "data" in admin.post(READY, json=CALL).json()
        # The control endpoint itself is never faulted.
        admin.put(CONTROL, json={"faults": ["/vapixlog/*:status=500", "/*:reset=request"]})
        assert admin.get(CONTROL).status_code == 200
        assert admin.delete(CONTROL).status_code == 200


def test_control_is_for_administrators_only(controlled: Server) -> None:
    assert httpx.get(controlled.url + CONTROL).status_code == 401
    for user in ("op", "viewer"):
        with client_for(controlled, user) as client:
            assert client.get(CONTROL).status_code == 403
            refused = client.put(CONTROL, json={"faults": ["report:delay=1"]})
            assert refused.status_code == 403
    with client_for(controlled) as admin:
        assert admin.get(CONTROL).json() == {"faults": []}


def test_control_refuses_other_sites(controlled: Server) -> None:
    with client_for(controlled) as admin:
        admin.delete(CONTROL)
        for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            forged = admin.put(CONTROL, json={"faults": ["report:delay=9"]}, headers=headers)
            assert forged.status_code == 403
            assert forged.headers["content-type"].startswith("text/plain")
            assert "cross-site request refused" in forged.text
            assert admin.delete(CONTROL, headers=headers).status_code == 403
        assert admin.get(CONTROL).json() == {"faults": []}
        own = {"Origin": controlled.url}
        assert admin.put(CONTROL, json={"faults": []}, headers=own).status_code == 200


def test_no_control_endpoint_without_control(shared_server: Server) -> None:
    password = USERS["root"][1]
    for method in ("GET", "PUT", "DELETE"):
        reply = httpx.request(method, shared_server.url + CONTROL, auth=("root", password))
        assert reply.status_code in (404, 405), method
    assert httpx.get(shared_server.url + CONTROL, auth=("root", password)).status_code == 404
