"""Property test of the validation engine: for random data-type definitions and random JSON
values, the engine accepts a value if and only if an independent oracle, the `jsonschema`
library on the equivalent JSON Schema, accepts it.

ECMA-262 semantics are accounted for in the oracle's schema: each pattern used here comes
with a hand-written Python `re` equivalent (`.` excludes the four line terminators, `$` is
the end of input)."""

from __future__ import annotations

from typing import Any

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from vapixlog.dca.datatypes import TypeCompiler
from vapixlog.dca.errors import ValidationError

# (ECMA-262 pattern as a model writes it, the same language in Python's re)
PATTERNS = [
    ("^.*$", r"^[^\n\r\u2028\u2029]*(?![\s\S])"),
    ("^[a-z]+$", r"^[a-z]+(?![\s\S])"),
    ("a.c", r"a[^\n\r\u2028\u2029]c"),
    ("^\\d{2,3}$", r"^[0-9]{2,3}(?![\s\S])"),
    ("^[^x]*$", r"^[^x]*(?![\s\S])"),
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-20, 20)
    | st.floats(-20, 20, allow_nan=False)
    | st.text(alphabet="ab1x\n\r\u2028\u2029 .", max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("fgh"), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def definitions(draw: st.DrawFn, depth: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """A model data-type definition and its JSON Schema twin."""
    kinds = ["string", "integer", "number", "boolean"] + (["array", "object"] if depth < 2 else [])
    kind = draw(st.sampled_from(kinds))
    model: dict[str, Any] = {"type": kind}
    schema: dict[str, Any] = {"type": kind}
    if kind == "string":
        if draw(st.booleans()):
            low = draw(st.integers(0, 3))
            model["minLength"] = schema["minLength"] = low
            model["maxLength"] = schema["maxLength"] = low + draw(st.integers(0, 3))
        if draw(st.booleans()):
            ecma, python = draw(st.sampled_from(PATTERNS))
            model["pattern"], schema["pattern"] = ecma, python
        if draw(st.booleans()):
            values = draw(
                st.lists(st.text(alphabet="ab1", max_size=2), min_size=1, max_size=3, unique=True)
            )
            model["enum"] = schema["enum"] = values
    elif kind in ("integer", "number"):
        if draw(st.booleans()):
            model["minimum"] = schema["minimum"] = draw(st.integers(-5, 0))
        if draw(st.booleans()):
            model["maximum"] = schema["maximum"] = draw(st.integers(0, 5))
    elif kind == "array":
        item_model, item_schema = draw(definitions(depth + 1))
        model["items"], schema["items"] = item_model, item_schema
        if draw(st.booleans()):
            model["maxItems"] = schema["maxItems"] = draw(st.integers(0, 3))
    elif kind == "object":
        fields: dict[str, Any] = {}
        properties: dict[str, Any] = {}
        required = []
        for name in draw(st.lists(st.sampled_from("fgh"), max_size=3, unique=True)):
            field_model, field_schema = draw(definitions(depth + 1))
            nullable = draw(st.booleans())
            fields[name] = {"type": field_model, "nullable": nullable}
            properties[name] = (
                {"anyOf": [field_schema, {"type": "null"}]} if nullable else field_schema
            )
            if not nullable:
                required.append(name)
        model["fields"] = fields
        schema.update(properties=properties, required=required, additionalProperties=False)
    return model, schema


@settings(max_examples=600, deadline=None)
@given(definition=definitions(), value=json_values, nullable=st.booleans())
def test_engine_agrees_with_jsonschema(
    definition: tuple[dict[str, Any], dict[str, Any]], value: Any, nullable: bool
) -> None:
    model, schema = definition
    if nullable:
        schema = {"anyOf": [schema, {"type": "null"}]}
    check = TypeCompiler({}).compile(model, nullable=nullable)
    try:
        check(value, "data", True)
        engine = True
    except ValidationError:
        engine = False
    oracle = jsonschema.Draft202012Validator(schema).is_valid(value)
    assert engine == oracle, (model, value)
