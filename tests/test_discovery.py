"""Discovery, model.json, doc.md, OpenAPI and the offline documentation pages, on a real
server process."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate

from servers import USERS, Server

ADMIN = ("root", USERS["root"][1])
MODEL = Path(__file__).parents[1] / "src" / "vapixlog" / "apis" / "log" / "model.json"


def get(server: Server, path: str, auth: object = ADMIN) -> httpx.Response:
    return httpx.get(server.url + path, auth=auth, timeout=10)  # type: ignore[arg-type]


def test_a_client_that_knows_only_discovery_writes_a_message(shared_server: Server) -> None:
    with httpx.Client(base_url=shared_server.url, auth=httpx.DigestAuth(*ADMIN)) as client:
        discovery = client.get("/config/discover").json()
        log_api = discovery["apis"]["log"]["v1"]
        assert log_api["state"] == "released" and log_api["version"] == "1.0.2"
        model = client.get(log_api["model"]).json()
        assert "writeMessage" in model["root_entity"]["actions"]
        openapi = client.get(log_api["rest_openapi"]).json()
        write_path = next(path for path in openapi["paths"] if path.endswith("/writeMessage"))
        url = openapi["servers"][0]["url"] + write_path
        assert url == log_api["rest_api"] + "/writeMessage"
        reply = client.post(url, json={"data": {"msg": "found through discovery"}})
        assert reply.json() == {"status": "success"}
        assert "found through discovery" in client.get("/axis-cgi/systemlog.cgi").text


def test_discovery_document_shape(shared_server: Server) -> None:
    document = get(shared_server, "/config/discover").json()
    assert document["framework_version"] == "1.1.0"
    assert document["device"] == {
        "rest_openapi": "/config/discover/openapi.json",
        "rest_ui": "/config/web-ui/swagger-ui/?url=/config/discover/openapi.json",
    }
    assert document["apis"]["log"]["v1"] == {
        "doc": "/config/discover/apis/log/v1/doc.md",
        "doc_html": "/config/web-ui/cu-doc.html?md-doc-loc=/config/discover/apis/log/v1/doc.md",
        "model": "/config/discover/apis/log/v1/model.json",
        "rest_api": "/config/rest/log/v1",
        "rest_openapi": "/config/discover/apis/log/v1/openapi.json",
        "rest_ui": "/config/web-ui/swagger-ui/?url=/config/discover/apis/log/v1/openapi.json",
        "state": "released",
        "version": "1.0.2",
    }
    assert get(shared_server, "/config/discover/apis").json() == document["apis"]
    assert get(shared_server, "/config/discover/apis/log").json() == document["apis"]["log"]
    assert (
        get(shared_server, "/config/discover/apis/log/v1/").json() == document["apis"]["log"]["v1"]
    )
    missing = get(shared_server, "/config/discover/apis/nolog")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == 1


def test_model_is_the_one_the_engine_runs_on(shared_server: Server) -> None:
    served = get(shared_server, "/config/discover/apis/log/v1/model.json").json()
    assert served == json.loads(MODEL.read_text())


def test_doc_md_has_the_sections_of_the_vendor_page(shared_server: Server) -> None:
    response = get(shared_server, "/config/discover/apis/log/v1/doc.md")
    assert response.headers["content-type"].startswith("text/markdown")
    doc = response.text
    for heading in (
        "## Structure",
        "## Entities",
        "### log.v1.persistent",
        "## Data types",
        "### LogMsg",
        "### WriteMessageRequest",
        "##### writeMessage",
        "##### enabled",
    ):
        assert heading in doc, heading
    assert "log.v1 (Root Entity)" in doc and "    enabled (Property)" in doc
    assert "SET - Permissions: admin" in doc and "| Maximum Length | 4096 |" in doc


@pytest.mark.parametrize(
    "path", ["/config/discover/apis/log/v1/openapi.json", "/config/discover/openapi.json"]
)
def test_openapi_documents_are_valid_openapi_3_1(shared_server: Server, path: str) -> None:
    document = get(shared_server, path).json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "/config/rest"}]
    paths = document["paths"]
    assert set(paths) == {
        "/log/v1",
        "/log/v1/writeMessage",
        "/log/v1/persistent",
        "/log/v1/persistent/enabled",
        "/log/v1/persistent/clearLog",
    }
    write = paths["/log/v1/writeMessage"]["post"]
    body = write["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["data"] and body["additionalProperties"] is False
    for status in ("400", "401", "403", "404", "413", "415", "429"):
        schema = write["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}
    schemes = document["components"]["securitySchemes"]
    assert {schemes[name]["scheme"] for name in schemes} == {"basic", "digest"}
    request = document["components"]["schemas"]["log.WriteMessageRequest"]
    assert request["required"] == ["msg"]
    assert request["properties"]["severity"]["oneOf"][1] == {"type": "null"}


def test_discovery_needs_a_login_but_no_particular_role(shared_server: Server) -> None:
    assert get(shared_server, "/config/discover", auth=None).status_code == 401
    viewer = ("viewer", USERS["viewer"][1])
    assert get(shared_server, "/config/discover/openapi.json", auth=viewer).status_code == 200


def test_browsable_documentation_is_served_offline(shared_server: Server) -> None:
    discovery = get(shared_server, "/config/discover").json()
    for page in (discovery["device"]["rest_ui"], discovery["apis"]["log"]["v1"]["doc_html"]):
        html = get(shared_server, page)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assets = [part.split('"')[0] for part in html.text.split('src="')[1:]]
        assets += [part.split('"')[0] for part in html.text.split('href="')[1:]]
        assert assets
        for asset in assets:
            assert asset.startswith("/config/web-ui/"), asset  # nothing from another origin
            assert get(shared_server, asset).status_code == 200, asset
    outside = get(shared_server, "/config/web-ui/swagger-ui/?url=https://example.com/x.json")
    assert outside.status_code == 400
