"""The DCA engine is generic: a second, made-up model (a map with add and remove, an enum,
a nested object, an action with a response) runs through the same code paths as the Log
API, with discovery and OpenAPI for it too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.testclient import TestClient  # an in-process client; no server needed

from vapixlog.auth import AuthMiddleware, DigestAuthority, Role, UserStore
from vapixlog.dca import discovery
from vapixlog.dca.binding import BoundApi, Handlers, RequestContext, Result
from vapixlog.dca.model import load_model
from vapixlog.dca.rest import DcaApp

MODEL = Path(__file__).with_name("data") / "inventory_model.json"
BASE = "/config/rest/inventory/v2beta"


def inventory_api() -> BoundApi:
    state: dict[str, Any] = {"mode": "auto", "location": None, "secret": "", "items": {}}
    handlers = Handlers()

    @handlers.getter("mode")
    async def get_mode(ctx: RequestContext) -> str:
        return str(state["mode"])

    @handlers.setter("mode")
    async def set_mode(ctx: RequestContext, value: str) -> None:
        state["mode"] = value

    @handlers.getter("location")
    async def get_location(ctx: RequestContext) -> Any:
        return state["location"]

    @handlers.setter("location")
    async def set_location(ctx: RequestContext, value: Any) -> None:
        state["location"] = value

    @handlers.setter("secret")
    async def set_secret(ctx: RequestContext, value: str) -> None:
        state["secret"] = value

    @handlers.trigger("reset")
    async def reset(ctx: RequestContext, data: dict[str, Any]) -> Result:
        keep = data.get("keep") or 0
        keys = list(state["items"])
        for key in keys[keep:]:
            del state["items"][key]
        return Result(data={"removed": max(0, len(keys) - keep)}, has_data=True)

    @handlers.keys("items")
    async def item_keys(ctx: RequestContext) -> list[str]:
        return list(state["items"])

    @handlers.adder("items")
    async def add_item(ctx: RequestContext, item: dict[str, Any]) -> None:
        state["items"][item["id"]] = {"count": 0, "tags": [], **item}

    @handlers.remover("items")
    async def remove_item(ctx: RequestContext) -> None:
        del state["items"][ctx.keys[-1]]

    for name in ("id", "count", "tags"):

        async def get_field(ctx: RequestContext, name: str = name) -> Any:
            return state["items"][ctx.keys[-1]][name]

        handlers.getter(f"items.{name}")(get_field)

    @handlers.setter("items.count")
    async def set_count(ctx: RequestContext, value: int) -> None:
        state["items"][ctx.keys[-1]]["count"] = value

    return BoundApi(load_model(MODEL), handlers)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = UserStore.load_or_create(tmp_path / "users.json", realm="AXIS_TEST")
    for name, role in (("admin", Role.ADMIN), ("op", Role.OPERATOR), ("viewer", Role.VIEWER)):
        store.add(name, role, f"{name}-pw")
    apis = [inventory_api()]
    app = Starlette(
        routes=[
            Route("/config/rest/{path:path}", DcaApp(apis)),
            *discovery.routes(apis, firmware="t"),
        ],
        middleware=[Middleware(AuthMiddleware, store=store, digest=DigestAuthority(store.realm))],
    )
    with TestClient(app) as test_client:
        test_client.auth = ("admin", "admin-pw")
        yield test_client


def as_user(name: str) -> tuple[str, str]:
    return (name, f"{name}-pw")


def test_singleton_properties_enum_nested_object_and_write_only(client: TestClient) -> None:
    root = client.get(BASE).json()
    assert root == {"status": "success", "data": {"mode": "auto", "location": None, "items": []}}
    assert (
        client.patch(f"{BASE}/mode", json={"data": "manual"}, auth=as_user("op")).status_code == 200
    )
    bad = client.patch(f"{BASE}/mode", json={"data": "turbo"})
    assert bad.status_code == 400 and "data: must be one of ['auto', 'manual']" in bad.text
    place = {"lat": 55.7, "lon": 13.2, "label": None}
    assert client.patch(f"{BASE}/location", json={"data": place}).status_code == 200
    assert client.get(f"{BASE}/location").json()["data"] == place
    missing = client.patch(f"{BASE}/location", json={"data": {"lat": 1}})
    assert "data.lon: required field is missing" in missing.json()["error"]["message"]
    assert client.patch(f"{BASE}/location", json={"data": None}).status_code == 200
    assert (
        client.patch(f"{BASE}/location", json={"data": place}, auth=as_user("op")).status_code
        == 403
    )
    # A write-only property: settable, never read back.
    assert client.patch(f"{BASE}/secret", json={"data": "s"}).status_code == 200
    write_only = client.get(f"{BASE}/secret")
    assert write_only.status_code == 405 and write_only.headers["allow"] == "PATCH, PUT"
    assert "secret" not in client.get(BASE).json()["data"]


def test_map_add_get_patch_delete(client: TestClient) -> None:
    added = client.post(
        f"{BASE}/items", json={"data": {"id": "a/b", "tags": ["x"]}}, auth=as_user("op")
    )
    assert (added.status_code, added.json()) == (201, {"status": "success"})
    again = client.post(f"{BASE}/items", json={"data": {"id": "a/b"}})
    assert again.status_code == 409 and again.json()["error"]["code"] == 11
    assert client.post(f"{BASE}/items", json={"data": {"id": "c", "count": 2}}).status_code == 201
    invalid = client.post(f"{BASE}/items", json={"data": {"id": "UPPER"}})
    assert invalid.status_code == 400 and "data.id: must match" in invalid.text
    no_key = client.post(f"{BASE}/items", json={"data": {"count": 1}})
    assert no_key.status_code == 400 and "data.id" in no_key.text
    too_many = client.post(
        f"{BASE}/items", json={"data": {"id": "d", "tags": ["1", "2", "3", "4"]}}
    )
    assert "data.tags: must have at most 3 items" in too_many.text

    listed = client.get(f"{BASE}/items", auth=as_user("viewer")).json()["data"]
    assert listed == [{"id": "a/b", "count": 0, "tags": ["x"]}, {"id": "c", "count": 2, "tags": []}]
    item = f"{BASE}/items/a%2Fb"  # a key holding '/' is percent-encoded in the path
    assert client.get(item).json()["data"] == {"id": "a/b", "count": 0, "tags": ["x"]}
    assert client.patch(f"{item}/count", json={"data": 7}, auth=as_user("op")).status_code == 200
    assert client.patch(item, json={"data": {"count": 8}}).status_code == 200
    assert client.get(f"{item}/count").json()["data"] == 8
    read_only = client.patch(item, json={"data": {"id": "z"}})
    assert "data.id: property is not settable" in read_only.text
    assert client.get(f"{BASE}/items/nothing").status_code == 404
    assert client.get(f"{BASE}/items/nothing/count").status_code == 404

    assert client.delete(item, auth=as_user("op")).status_code == 403
    assert client.delete(item).json() == {"status": "success"}
    assert client.get(item).status_code == 404
    collection = client.delete(f"{BASE}/items")
    assert collection.status_code == 405 and collection.headers["allow"] == "GET, POST"


def test_action_with_a_response(client: TestClient) -> None:
    for key in ("a", "b", "c"):
        client.post(f"{BASE}/items", json={"data": {"id": key}})
    reply = client.post(f"{BASE}/reset", json={"data": {"keep": 1}})
    assert reply.json() == {"status": "success", "data": {"removed": 2}}
    assert [item["id"] for item in client.get(f"{BASE}/items").json()["data"]] == ["a"]
    assert client.post(f"{BASE}/reset", json={"data": {"keep": -1}}).status_code == 400
    assert client.post(f"{BASE}/reset", json={"data": {}}).json()["data"] == {"removed": 1}


def test_discovery_and_openapi_for_the_second_model(client: TestClient) -> None:
    entry = client.get("/config/discover").json()["apis"]["inventory"]["v2"]
    assert entry["rest_api"] == BASE and entry["state"] == "beta"
    assert entry["version"] == "2.0.0-beta.1"
    document = client.get(entry["rest_openapi"]).json()
    validate(document)
    paths = document["paths"]
    assert set(paths["/inventory/v2beta/items"]) == {"get", "post"}
    assert "201" in paths["/inventory/v2beta/items"]["post"]["responses"]
    assert "409" in paths["/inventory/v2beta/items"]["post"]["responses"]
    assert set(paths["/inventory/v2beta/items/{itemsKey}"]) == {"get", "patch", "put", "delete"}
    assert set(paths["/inventory/v2beta/secret"]) == {"patch", "put"}
    reset = paths["/inventory/v2beta/reset"]["post"]["responses"]["200"]
    assert reset["content"]["application/json"]["schema"]["properties"]["status"] == {
        "const": "success"
    }
    schemas = document["components"]["schemas"]
    assert schemas["inventory.Mode"] == {"type": "string", "enum": ["auto", "manual"]}
    doc = client.get(entry["doc"]).text
    assert "- Type: Map" in doc and "- Key property: id" in doc


def test_an_unavailable_service_answers_503_code_10(tmp_path: Path) -> None:
    store = UserStore.load_or_create(tmp_path / "users.json", realm="AXIS_TEST")
    store.add("admin", Role.ADMIN, "admin-pw")
    reason: list[str] = []
    app = AuthMiddleware(
        DcaApp([inventory_api()], unavailable=lambda: reason[0] if reason else None),
        store=store,
        digest=DigestAuthority(store.realm),
    )
    client = TestClient(app)  # no lifespan: DcaApp serves HTTP only
    client.auth = ("admin", "admin-pw")
    assert client.get(BASE).status_code == 200
    reason.append("the device is rebooting")
    response = client.get(BASE)
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.json()["error"] == {
        "code": 10,
        "message": "Service unavailable: the device is rebooting",
    }
