"""The Log API end to end against a real `vapixlog serve` process."""

from __future__ import annotations

import httpx
import pytest

from conftest import client_for
from servers import Server

PATHS = ["/config/rest/log/v1", "/config/rest/log/v1alpha"]
JSON_TYPE = {"Content-Type": "application/json"}


def dca_error(response: httpx.Response, status: int, code: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error"
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    return str(body["error"]["message"])


@pytest.mark.parametrize("base", PATHS)
def test_the_four_examples_of_the_spec(admin: httpx.Client, base: str) -> None:
    set_enabled = admin.patch(f"{base}/persistent/enabled", json={"data": True})
    assert set_enabled.status_code == 200
    assert set_enabled.headers["content-type"] == "application/json"
    assert set_enabled.json() == {"status": "success"}

    get_enabled = admin.get(f"{base}/persistent/enabled")
    assert (get_enabled.status_code, get_enabled.json()) == (
        200,
        {"status": "success", "data": True},
    )

    clear = admin.post(f"{base}/persistent/clearLog", json={"data": {}})
    assert (clear.status_code, clear.json()) == (200, {"status": "success"})

    write = admin.post(f"{base}/writeMessage", json={"data": {"msg": "message", "severity": 7}})
    assert (write.status_code, write.json()) == (200, {"status": "success"})

    admin.patch(f"{base}/persistent/enabled", json={"data": False})


@pytest.mark.parametrize("base", PATHS)
def test_get_root_and_entity(admin: httpx.Client, base: str) -> None:
    admin.patch(f"{base}/persistent/enabled", json={"data": False})
    assert (
        admin.get(base).content == b'{"status":"success","data":{"persistent":{"enabled":false}}}'
    )
    assert admin.get(base + "/").json()["data"] == {"persistent": {"enabled": False}}
    persistent = admin.get(f"{base}/persistent")
    assert persistent.json() == {"status": "success", "data": {"enabled": False}}


def test_patch_entity_and_legacy_put(admin: httpx.Client) -> None:
    base = PATHS[0]
    assert admin.patch(f"{base}/persistent", json={"data": {"enabled": True}}).status_code == 200
    assert admin.get(f"{base}/persistent/enabled").json()["data"] is True
    root_patch = admin.patch(base, json={"data": {"persistent": {"enabled": False}}})
    assert root_patch.json() == {"status": "success"}
    assert admin.get(f"{base}/persistent/enabled").json()["data"] is False
    # PUT is the legacy (AXIS OS <= 11.10) alias of set and of trigger.
    assert admin.put(f"{base}/persistent/enabled", json={"data": True}).status_code == 200
    assert admin.get(f"{base}/persistent/enabled").json()["data"] is True
    assert admin.put(f"{base}/writeMessage", json={"data": {"msg": "via put"}}).status_code == 200
    assert admin.put(f"{base}/persistent/clearLog", json={"data": {}}).status_code == 200
    admin.patch(f"{base}/persistent/enabled", json={"data": False})


def write(
    client: httpx.Client, data: object, *, path: str = PATHS[0], **kwargs: object
) -> httpx.Response:
    return client.post(f"{path}/writeMessage", json={"data": data}, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [
        {"msg": ""},
        {"msg": "x" * 4096},
        {"msg": "\U0001f600" * 4096},  # 4096 code points, 8192 UTF-16 units, 16 KiB of UTF-8
        {"msg": "tab\tand escape \x1b are not line terminators"},
        {"msg": "m", "severity": 0},
        {"msg": "m", "severity": 7},
        {"msg": "m", "severity": None},
        {"msg": "m", "severity": 7.0},  # JSON Schema: an integer is a number without fraction
    ],
)
def test_write_message_accepts_both_bounds(admin: httpx.Client, data: object) -> None:
    assert write(admin, data).json() == {"status": "success"}


@pytest.mark.parametrize(
    ("data", "field", "detail"),
    [
        ({"msg": "x" * 4097}, "data.msg", "at most 4096"),
        ({"msg": "\U0001f600" * 4097}, "data.msg", "at most 4096"),
        ({"msg": "line\nbreak"}, "data.msg", "pattern"),
        ({"msg": "carriage\rreturn"}, "data.msg", "pattern"),
        ({"msg": "line\u2028separator"}, "data.msg", "pattern"),
        ({"msg": "paragraph\u2029separator"}, "data.msg", "pattern"),
        ({"msg": "m", "severity": -1}, "data.severity", "at least 0"),
        ({"msg": "m", "severity": 8}, "data.severity", "at most 7"),
        ({"msg": "m", "severity": True}, "data.severity", "integer"),
        ({"msg": "m", "severity": 6.5}, "data.severity", "integer"),
        ({"msg": "m", "severity": "6"}, "data.severity", "integer"),
        ({"msg": None}, "data.msg", "string"),
        ({"msg": 5}, "data.msg", "string"),
        ({"severity": 3}, "data.msg", "missing"),
        ({"msg": "m", "colour": "red"}, "data.colour", "unknown field"),
        ([], "data", "object"),
        ("msg", "data", "object"),
        (None, "data", "object"),
    ],
)
def test_write_message_rejects_invalid_input(
    admin: httpx.Client, data: object, field: str, detail: str
) -> None:
    message = dca_error(write(admin, data), 400, 5)
    assert message.startswith("Validation error: ")
    assert field in message and detail in message


def test_unknown_fields_are_ignored_when_not_strict(admin: httpx.Client) -> None:
    response = write(admin, {"msg": "m", "colour": "red"}, params={"strict": "false"})
    assert response.json() == {"status": "success"}
    dca_error(write(admin, {"msg": "m"}, params={"strict": "maybe"}), 400, 5)
    extra_top_level = admin.post(f"{PATHS[0]}/writeMessage", json={"data": {"msg": "m"}, "x": 1})
    assert "x: unknown field" in dca_error(extra_top_level, 400, 5)


@pytest.mark.parametrize("value", ["true", 1, 0, None, {}, []])
def test_enabled_is_a_strict_non_nullable_boolean(admin: httpx.Client, value: object) -> None:
    response = admin.patch(f"{PATHS[0]}/persistent/enabled", json={"data": value})
    assert "data: must be a boolean" in dca_error(response, 400, 5)


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"not json", {"content-type": "application/json"}, 400, 6),
        (b'{"data": NaN}', {"content-type": "application/json"}, 400, 6),
        (b'{"data": 1e400}', {"content-type": "application/json"}, 400, 6),
        (b'{"data": "\xff"}', {"content-type": "application/json"}, 400, 6),
        (b'[{"data": {}}]', {"content-type": "application/json"}, 400, 6),
        (b'{"msg": "m"}', {"content-type": "application/json"}, 400, 6),
        (b"", {"content-type": "application/json"}, 400, 6),
        (b"[" * 100_000, {"content-type": "application/json"}, 413, 7),
        (b"[" * 60_000 + b"]" * 60_000, {"content-type": "application/json"}, 413, 7),
        (b'{"data": {"msg": "m"}}', {"content-type": "text/plain"}, 415, 8),
        (b'{"data": {"msg": "m"}}', {"content-type": "application/x-www-form-urlencoded"}, 415, 8),
    ],
)
def test_malformed_bodies(
    admin: httpx.Client, content: bytes, headers: dict[str, str], status: int, code: int
) -> None:
    response = admin.post(f"{PATHS[0]}/writeMessage", content=content, headers=headers)
    dca_error(response, status, code)


def test_deeply_nested_json_under_the_limit_is_a_clear_400(admin: httpx.Client) -> None:
    body = b'{"data":' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    response = admin.post(f"{PATHS[0]}/writeMessage", content=body, headers=JSON_TYPE)
    dca_error(response, 400, 6)


def test_missing_content_type_is_refused(admin: httpx.Client) -> None:
    """A browser can send a body without Content-Type to another site without asking it
    first (CORS): JSON endpoints take only application/json."""
    request = admin.build_request(
        "POST", f"{PATHS[0]}/writeMessage", content=b'{"data":{"msg":"no-type"}}'
    )
    assert "content-type" not in request.headers
    response = admin.send(request)
    dca_error(response, 415, 8)
    assert "application/json" in response.json()["error"]["message"]
    assert "no-type" not in admin.get("/axis-cgi/systemlog.cgi").text


def test_oversized_body_is_refused_from_its_content_length(shared_server: Server) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", shared_server.port), timeout=5) as sock:
        # Announce 10 MB and send none of it: the answer must come without the body.
        sock.sendall(
            b"POST /config/rest/log/v1/writeMessage HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Basic cm9vdDpyb290cGFzcw==\r\n"
            b"Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
        )
        head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 413"), head


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/writeMessage", "POST, PUT"),
        ("DELETE", "/writeMessage", "POST, PUT"),
        ("POST", "/persistent/enabled", "GET, PATCH, PUT"),
        ("DELETE", "", "GET, PATCH, PUT"),
        ("POST", "/persistent", "GET, PATCH, PUT"),
        ("GET", "/persistent/clearLog", "POST, PUT"),
    ],
)
def test_method_not_allowed(admin: httpx.Client, method: str, path: str, allow: str) -> None:
    response = admin.request(method, PATHS[0] + path, json={"data": {}})
    dca_error(response, 405, 2)
    assert response.headers["allow"] == allow


@pytest.mark.parametrize(
    "path",
    [
        "/config/rest/log/v2",
        "/config/rest/log/v1beta",
        "/config/rest/nolog/v1",
        "/config/rest/log",
        "/config/rest/",
        "/config/rest/log/v1/nothing",
        "/config/rest/log/v1/persistent/enabled/deeper",
        "/config/rest/log/v1/writeMessage/x",
    ],
)
def test_unknown_resources(admin: httpx.Client, path: str) -> None:
    message = dca_error(admin.get(path), 404, 1)
    assert message == f"Resource not found: {path}"


def test_patch_entity_rejects_unknown_and_read_only_fields(admin: httpx.Client) -> None:
    response = admin.patch(PATHS[0], json={"data": {"persistent": {"enabled": True, "size": 1}}})
    assert "data.persistent.size: unknown field" in dca_error(response, 400, 5)
    # Validation happens before any change is applied.
    assert admin.get(f"{PATHS[0]}/persistent/enabled").json()["data"] is False
    response = admin.patch(PATHS[0], json={"data": {"writeMessage": {}}})
    dca_error(response, 400, 5)


def test_write_message_reaches_the_system_log_with_its_severity(
    shared_server: Server, admin: httpx.Client
) -> None:
    write(admin, {"msg": "severity three", "severity": 3})
    write(admin, {"msg": "default severity"})
    write(admin, {"msg": "null severity", "severity": None})
    log = admin.get("/axis-cgi/systemlog.cgi")
    assert log.status_code == 200
    assert log.headers["content-type"].startswith("text/plain")
    lines = log.text.splitlines()
    assert any(
        "[ ERR     ] log-api[" in line and line.endswith(": severity three") for line in lines
    )
    assert any(
        "[ INFO    ] log-api[" in line and line.endswith(": default severity") for line in lines
    )
    assert any("[ INFO    ]" in line and line.endswith(": null severity") for line in lines)


def test_control_characters_are_escaped(admin: httpx.Client) -> None:
    write(admin, {"msg": "bell\x07 esc\x1b[31m tab\t del\x7f c1\x85 back\\slash"})
    text = admin.get("/axis-cgi/systemlog.cgi").text
    assert r"bell\x07 esc\x1b[31m tab\x09 del\x7f c1\x85 back\\slash" in text
    for char in "\x07\x1b\x7f\x85":
        assert char not in text


def test_no_server_error_for_odd_requests(admin: httpx.Client) -> None:
    odd = [
        ("GET", "/config/rest/log/v1/%00"),
        ("GET", "/config/rest/log/v1/persistent/%2e%2e/%2e%2e"),
        ("OPTIONS", "/config/rest/log/v1"),
        ("HEAD", "/config/rest/log/v1"),
        ("PATCH", "/config/rest/log/v1/persistent/enabled?strict=false&strict=true"),
    ]
    for method, path in odd:
        response = admin.request(method, path, content=b'{"data": true}')
        assert response.status_code < 500, (method, path, response.text)


def test_enabled_survives_a_restart(server: Server) -> None:
    with client_for(server) as client:
        client.patch(f"{PATHS[0]}/persistent/enabled", json={"data": True})
    server.restart()
    with client_for(server) as client:
        assert client.get(f"{PATHS[0]}/persistent/enabled").json()["data"] is True
        client.patch(f"{PATHS[1]}/persistent/enabled", json={"data": False})
    server.kill()
    server.start()
    with client_for(server) as client:
        assert client.get(f"{PATHS[0]}/persistent/enabled").json()["data"] is False
        log = client.get("/axis-cgi/systemlog.cgi").text
    assert "ended without a clean shutdown" in log


def test_clear_log_removes_persistent_content_and_is_audited(server: Server) -> None:
    with client_for(server, digest=True) as client:
        client.patch(f"{PATHS[0]}/persistent/enabled", json={"data": True})
        write(client, {"msg": "before the clear"})
        assert "before the clear" in server.persistent_text()
        assert client.post(f"{PATHS[0]}/persistent/clearLog", json={"data": {}}).status_code == 200
        persistent = server.persistent_text()
        assert "before the clear" not in persistent
        # Audited in the audit log (AXIS OS 12.5+), which the clear leaves alone.
        audit = client.get("/axis-cgi/auditlog.cgi").text
        assert "root@127.0.0.1 configured log.v1.persistent.enabled (true)." in audit
        assert "root@127.0.0.1 configured log.v1.persistent.clearLog ({})." in audit
        assert "configured log.v1" not in persistent
        write(client, {"msg": "after the clear"})
        assert "after the clear" in server.persistent_text()
        # Empty body and {} are accepted for an action without input.
        clear = f"{PATHS[0]}/persistent/clearLog"
        assert client.post(clear, headers=JSON_TYPE).status_code == 200
        # ...but whitespace is a body, and not JSON (schemathesis found it accepted).
        blank = client.post(clear, headers=JSON_TYPE, content=b" \r\n")
        dca_error(blank, 400, 6)
        assert "only whitespace" in blank.json()["error"]["message"]
        assert client.post(f"{PATHS[0]}/persistent/clearLog", json={}).status_code == 200
        bad = client.post(f"{PATHS[0]}/persistent/clearLog", json={"data": {"all": True}})
        dca_error(bad, 400, 5)


def test_disabled_persistence_stores_nothing(server: Server) -> None:
    with client_for(server) as client:
        write(client, {"msg": "only volatile"})
        client.patch(f"{PATHS[0]}/persistent/enabled", json={"data": True})
        write(client, {"msg": "kept"})
        client.patch(f"{PATHS[0]}/persistent/enabled", json={"data": False})
        write(client, {"msg": "after disable"})
    text = server.persistent_text()
    assert "kept" in text and "configured log.v1" not in text  # audited elsewhere (12.5+)
    assert "only volatile" not in text and "after disable" not in text
