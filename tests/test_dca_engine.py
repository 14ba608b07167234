"""The DCA engine's data-type validation and model loading, without a server."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vapixlog.dca.binding import BoundApi, Handlers
from vapixlog.dca.datatypes import ModelError, TypeCompiler
from vapixlog.dca.errors import ValidationError
from vapixlog.dca.model import load_model

TYPES: dict[str, Any] = {
    "Name": {"type": "string", "minLength": 1, "maxLength": 3, "pattern": "^[a-z]*$"},
    "Line": {"type": "string", "pattern": "^.*$"},
    "Level": {"type": "integer", "minimum": -2, "maximum": 2},
    "Ratio": {"type": "number", "minimum": 0, "maximum": 1},
    "Mode": {"type": "string", "enum": ["on", "off"]},
    "Day": {"type": "string", "format": "date"},
    "Stamp": {"type": "string", "format": "date-time"},
    "Names": {"type": "array", "items": "Name", "minItems": 1, "maxItems": 2},
    "Short": {"type": "Name", "maxLength": 2},
    "Thing": {
        "type": "object",
        "fields": {
            "name": {"type": "Name"},
            "level": {"type": "Level", "nullable": True},
            "note": {"type": "string", "optional": True},
        },
    },
}


def check(type_name: str, value: Any, *, nullable: bool = False, strict: bool = True) -> Any:
    return TypeCompiler(TYPES).compile(type_name, nullable=nullable)(value, "data", strict)


def rejects(type_name: str, value: Any, detail: str, **kwargs: Any) -> None:
    with pytest.raises(ValidationError) as info:
        check(type_name, value, **kwargs)
    assert detail in info.value.message, info.value.message


@pytest.mark.parametrize(
    ("type_name", "value"),
    [
        ("Name", "a"),
        ("Name", "abc"),
        ("Level", -2),
        ("Level", 2),
        ("Ratio", 0),
        ("Ratio", 0.5),
        ("Ratio", 1),
        ("Mode", "on"),
        ("Day", "2026-11-25"),
        ("Stamp", "2026-11-25T10:00:00Z"),
        ("Stamp", "2026-11-25T10:00:00.123+05:30"),
        ("Names", ["a"]),
        ("Names", ["a", "bb"]),
        ("Short", "ab"),
        ("Line", ""),
        ("Line", "tab\there"),
        ("boolean", False),
    ],
)
def test_accepts(type_name: str, value: Any) -> None:
    assert check(type_name, value) == value


@pytest.mark.parametrize(
    ("type_name", "value", "detail"),
    [
        ("Name", "", "at least 1"),
        ("Name", "abcd", "at most 3"),
        ("Name", "A", "pattern"),
        ("Name", 1, "must be a string"),
        ("Level", -3, "at least -2"),
        ("Level", 3, "at most 2"),
        ("Level", True, "integer, not boolean"),
        ("Level", 1.5, "integer, not a number with a fraction"),
        ("Level", 3.0, "at most 2"),
        ("Level", "1", "integer, not string"),
        ("Ratio", 1.5, "at most 1"),
        ("Ratio", False, "number, not boolean"),
        ("Mode", "auto", "one of"),
        ("Day", "2026-02-30", "valid date"),
        ("Stamp", "2026-11-25 10:00", "valid date-time"),
        ("Names", [], "at least 1 items"),
        ("Names", ["a", "b", "c"], "at most 2"),
        ("Names", ["a", "B"], "data[1]"),
        ("Short", "abc", "at most 2"),
        ("Short", "X", "pattern"),
        ("boolean", 0, "boolean, not integer"),
        ("boolean", "true", "boolean, not string"),
        ("boolean", None, "boolean, not null"),
        ("Line", "a\nb", "pattern"),
        ("Line", "a\rb", "pattern"),
        ("Line", "a\u2028b", "pattern"),
        ("Line", "a\u2029b", "pattern"),
    ],
)
def test_rejects(type_name: str, value: Any, detail: str) -> None:
    rejects(type_name, value, detail)


def test_lengths_count_code_points() -> None:
    assert check("Name", "abc") == "abc"
    rejects("Name", "\U0001f600", "pattern")  # one code point, but not [a-z]
    line = TypeCompiler({"T": {"type": "string", "maxLength": 2}}).compile("T")
    assert line("\U0001f600\U0001f600", "data", True)  # 2 code points, 4 UTF-16 units
    with pytest.raises(ValidationError):
        line("\U0001f600" * 3, "data", True)


def test_objects_fields_nullable_required_and_strict() -> None:
    assert check("Thing", {"name": "a"}) == {"name": "a"}
    assert check("Thing", {"name": "a", "level": None}) == {"name": "a", "level": None}
    assert check("Thing", {"name": "a", "level": 1, "note": "n"})["note"] == "n"
    rejects("Thing", {"level": 1}, "data.name: required field is missing")
    rejects("Thing", {"name": None}, "data.name: must be a string, not null")
    rejects("Thing", {"name": "a", "note": None}, "data.note: must be a string")
    rejects("Thing", {"name": "a", "extra": 1}, "data.extra: unknown field")
    assert check("Thing", {"name": "a", "extra": 1}, strict=False) == {"name": "a"}
    rejects("Thing", ["name"], "must be an object, not array")
    assert check("Thing", None, nullable=True) is None
    rejects("Thing", None, "not null")


@given(st.text(max_size=20))
def test_ecma_dot_never_matches_a_line_terminator(text: str) -> None:
    terminators = set("\n\r\u2028\u2029")
    try:
        check("Line", text)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == (not terminators & set(text))


@given(st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.text(), st.none()))
def test_integer_accepts_exactly_json_integers_in_range(value: Any) -> None:
    ok = type(value) in (int, float) and float(value).is_integer() and -2 <= value <= 2
    try:
        check("Level", value)
        assert ok
    except ValidationError:
        assert not ok


MINIMAL_MODEL: dict[str, Any] = {
    "id": "demo",
    "version": "2.1.0-beta.1",
    "state": "beta",
    "root_entity": {
        "operations": {"get": {"roles": ["viewer"]}},
        "properties": {
            "level": {"data_type": "integer", "operations": {"get": {"roles": ["viewer"]}}}
        },
    },
}


def test_model_version_segment_and_handler_binding() -> None:
    model = load_model(MINIMAL_MODEL)
    assert (model.major, model.version_segment) == (2, "v2beta")
    handlers = Handlers()
    with pytest.raises(ModelError, match="no getter for"):
        BoundApi(model, handlers)

    @handlers.getter("level")
    async def level(ctx: Any) -> int:
        return 1

    BoundApi(model, handlers)

    @handlers.setter("level")
    async def set_level(ctx: Any, value: Any) -> None:
        return None

    with pytest.raises(ModelError, match="setter for unknown paths"):
        BoundApi(model, handlers)


@pytest.mark.parametrize(
    ("patch", "error"),
    [
        ({"state": "gamma"}, "state"),
        ({"version": "1.0"}, "SemVer"),
        ({"root_entity": {"operations": {"get": {"roles": ["god"]}}}}, "unknown roles"),
        ({"root_entity": {"properties": {"x": {"data_type": "Nope"}}}}, "unknown data type"),
        ({"root_entity": {"collection": "map"}}, "key_property"),
        ({"root_entity": {"properties": {"bad name": {"data_type": "string"}}}}, "invalid name"),
        (
            {
                "data_types": {"P": {"type": "string", "pattern": "("}},
                "root_entity": {"properties": {"p": {"data_type": "P"}}},
            },
            "pattern",
        ),
        (
            {
                "data_types": {"A": {"type": "B"}, "B": {"type": "A"}},
                "root_entity": {"properties": {"p": {"data_type": "A"}}},
            },
            "refers to itself",
        ),
    ],
)
def test_broken_models_fail_at_load(patch: dict[str, Any], error: str) -> None:
    with pytest.raises(ModelError, match=error):
        load_model({**MINIMAL_MODEL, **patch})
