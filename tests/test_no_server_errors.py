"""Random requests never produce a 500: hypothesis drives a real server process."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servers import USERS, Server

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
paths = st.sampled_from(
    [
        "/config/rest/log/v1",
        "/config/rest/log/v1alpha/persistent",
        "/config/rest/log/v1/persistent/enabled",
        "/config/rest/log/v1/writeMessage",
        "/config/rest/log/v1/persistent/clearLog",
        "/config/rest/log/v1/persistent/enabled?strict=false",
        "/config/rest/log/v1/writeMessage?strict=0",
        "/axis-cgi/systemlog.cgi",
    ]
)
methods = st.sampled_from(["GET", "POST", "PATCH", "PUT", "DELETE"])
bodies = st.one_of(
    json_values.map(lambda v: json.dumps({"data": v}).encode()),
    st.fixed_dictionaries({"msg": st.text(max_size=60), "severity": json_values}).map(
        lambda v: json.dumps({"data": v}).encode()
    ),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=100),
)


@pytest.fixture(scope="module")
def client(shared_server: Server) -> Any:
    with httpx.Client(base_url=shared_server.url, auth=("root", USERS["root"][1]), timeout=10) as c:
        yield c


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(method=methods, path=paths, body=bodies)
def test_random_requests_never_fail_on_the_server(
    client: httpx.Client, method: str, path: str, body: bytes
) -> None:
    headers = {"content-type": "application/json"}
    response = client.request(method, path, content=body, headers=headers)
    assert response.status_code < 500, response.text
    if path.startswith("/config/"):
        envelope = response.json()
        assert envelope["status"] in ("success", "error")
    if path.endswith("enabled") and method in ("PATCH", "PUT") and response.status_code == 200:
        client.patch(path, json={"data": False})  # leave persistent logging off for others
