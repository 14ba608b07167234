"""Data-type validation compiled from a model's type definitions.

Each definition becomes a `Validator`: a function `(value, path, strict) -> value` that returns
the accepted value (unknown object fields dropped when `strict` is false) or raises
`ValidationError` whose message names the offending path. Semantics follow the DCA model
(dca-framework.md section 2): lengths count Unicode code points, `pattern` is an ECMA-262
regex (run by `regress`, so `.` never matches a line terminator), integers and booleans are
strict JSON types.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping
from typing import Any

import regress

from vapixlog.dca.errors import ValidationError

Validator = Callable[[Any, str, bool], Any]
BUILTIN_TYPES = ("string", "integer", "number", "boolean", "array", "object")


class ModelError(Exception):
    """The model document itself is invalid (a bug in the model, not in a request)."""


def _fail(path: str, detail: str) -> ValidationError:
    return ValidationError(f"{path}: {detail}")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class TypeCompiler:
    """Turns type definitions (built-in or named in `data_types`) into validators."""

    def __init__(self, data_types: Mapping[str, Any]) -> None:
        self._definitions = data_types
        self._compiled: dict[str, Validator] = {}
        self._compiling: set[str] = set()

    def compile(self, spec: str | Mapping[str, Any], *, nullable: bool = False) -> Validator:
        """A validator for a type name or an inline definition, optionally accepting null."""
        check = self._named(spec) if isinstance(spec, str) else self._definition(spec)
        if not nullable:
            return check

        def nullable_check(value: Any, path: str, strict: bool) -> Any:
            return None if value is None else check(value, path, strict)

        return nullable_check

    def _named(self, name: str) -> Validator:
        if name in self._compiled:
            return self._compiled[name]
        if name in BUILTIN_TYPES:
            return self._definition({"type": name})
        if name not in self._definitions:
            raise ModelError(f"unknown data type {name!r}")
        if name in self._compiling:
            raise ModelError(f"data type {name!r} refers to itself")
        self._compiling.add(name)
        self._compiled[name] = self._definition(self._definitions[name])
        self._compiling.discard(name)
        return self._compiled[name]

    def _definition(self, spec: Mapping[str, Any]) -> Validator:
        base = spec.get("type")
        if not isinstance(base, str):
            raise ModelError(f"type definition without a 'type': {spec!r}")
        if base not in BUILTIN_TYPES:
            # A named type refined by further keywords: check both.
            named = self._named(base)
            extra = {k: v for k, v in spec.items() if k not in ("type", "description")}
            if not extra:
                return named
            refined = self._definition({"type": self._base_of(base), **extra})

            def both(value: Any, path: str, strict: bool) -> Any:
                return refined(named(value, path, strict), path, strict)

            return both
        builder = _BUILDERS[base]
        return builder(self, spec)

    def _base_of(self, name: str) -> str:
        while name not in BUILTIN_TYPES:
            name = self._definitions[name]["type"]
        return name

    def compile_object(self, spec: Mapping[str, Any]) -> Validator:
        fields: dict[str, tuple[Validator, bool]] = {}
        for name, field in (spec.get("fields") or {}).items():
            nullable = bool(field.get("nullable", False))
            # A nullable field may also be left out; absent and null mean the same.
            required = not nullable and not field.get("optional", False)
            fields[name] = (self.compile(field["type"], nullable=nullable), required)

        def check(value: Any, path: str, strict: bool) -> Any:
            if not isinstance(value, dict):
                raise _fail(path, f"must be an object, not {_type_name(value)}")
            result: dict[str, Any] = {}
            for key, item in value.items():
                if key in fields:
                    result[key] = fields[key][0](item, f"{path}.{key}", strict)
                elif strict:
                    raise _fail(f"{path}.{key}", "unknown field")
            for key, (_, required) in fields.items():
                if required and key not in value:
                    raise _fail(f"{path}.{key}", "required field is missing")
            return result

        return check

    def compile_array(self, spec: Mapping[str, Any]) -> Validator:
        items = self.compile(spec.get("items", "string"))
        min_items, max_items = spec.get("minItems"), spec.get("maxItems")

        def check(value: Any, path: str, strict: bool) -> Any:
            if not isinstance(value, list):
                raise _fail(path, f"must be an array, not {_type_name(value)}")
            if min_items is not None and len(value) < min_items:
                raise _fail(path, f"must have at least {min_items} items")
            if max_items is not None and len(value) > max_items:
                raise _fail(path, f"must have at most {max_items} items")
            return [items(item, f"{path}[{i}]", strict) for i, item in enumerate(value)]

        return check


def _string(_: TypeCompiler, spec: Mapping[str, Any]) -> Validator:
    min_length, max_length = spec.get("minLength"), spec.get("maxLength")
    pattern_text = spec.get("pattern")
    try:
        pattern = regress.Regex(pattern_text) if pattern_text is not None else None
    except Exception as exc:  # regress raises its own error type
        raise ModelError(f"invalid ECMA-262 pattern {pattern_text!r}: {exc}") from exc
    enum = _enum(spec)
    date_format = _FORMATS.get(spec.get("format", ""))

    def check(value: Any, path: str, strict: bool) -> Any:
        if not isinstance(value, str):
            raise _fail(path, f"must be a string, not {_type_name(value)}")
        # len() of a Python str counts code points, as the model's lengths do.
        if min_length is not None and len(value) < min_length:
            raise _fail(path, f"must be at least {min_length} characters long")
        if max_length is not None and len(value) > max_length:
            raise _fail(path, f"must be at most {max_length} characters long")
        if pattern is not None and pattern.find(value) is None:
            if _one_line_would_match(pattern, value):
                what = f"must be one line (no line breaks) to match the pattern {pattern_text}"
                raise _fail(path, what)
            raise _fail(path, f"must match the pattern {pattern_text}")
        if enum is not None and value not in enum:
            raise _fail(path, f"must be one of {sorted(enum)}")
        if date_format is not None and not date_format(value):
            raise _fail(path, f"must be a valid {spec['format']}")
        return value

    return check


_LINE_BREAKS = str.maketrans(dict.fromkeys("\n\r\u2028\u2029", " "))


def _one_line_would_match(pattern: Any, value: str) -> bool:
    """Whether `value` fails its pattern only for its line breaks (`^.*$`: `.` takes any
    character but a line break): then say it must be one line."""
    one_line = value.translate(_LINE_BREAKS)
    return one_line != value and pattern.find(one_line) is not None


def _numeric(kind: str) -> Callable[[TypeCompiler, Mapping[str, Any]], Validator]:
    def build(_: TypeCompiler, spec: Mapping[str, Any]) -> Validator:
        minimum, maximum = spec.get("minimum"), spec.get("maximum")
        enum = _enum(spec)

        def check(value: Any, path: str, strict: bool) -> Any:
            # bool is a subclass of int in Python; JSON true is not a number.
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _fail(path, f"must be an {kind}, not {_type_name(value)}")
            if kind == "integer" and isinstance(value, float):
                # As in JSON Schema, an integer is a number without a fraction: 6.0 is 6.
                if not value.is_integer():
                    raise _fail(path, "must be an integer, not a number with a fraction")
                value = int(value)
            if minimum is not None and value < minimum:
                raise _fail(path, f"must be at least {minimum}")
            if maximum is not None and value > maximum:
                raise _fail(path, f"must be at most {maximum}")
            if enum is not None and value not in enum:
                raise _fail(path, f"must be one of {sorted(enum)}")
            return value

        return check

    return build


def _boolean(_: TypeCompiler, spec: Mapping[str, Any]) -> Validator:
    def check(value: Any, path: str, strict: bool) -> Any:
        if not isinstance(value, bool):
            raise _fail(path, f"must be a boolean, not {_type_name(value)}")
        return value

    return check


def _enum(spec: Mapping[str, Any]) -> frozenset[Any] | None:
    values = spec.get("enum")
    return frozenset(values) if values is not None else None


_TIME = r"\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
_DATE_TIME_RE = re.compile(rf"\d{{4}}-\d{{2}}-\d{{2}}[Tt ]{_TIME}", re.ASCII)
_TIME_RE = re.compile(_TIME, re.ASCII)


def _is_date(text: str) -> bool:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def _is_date_time(text: str) -> bool:
    if not _DATE_TIME_RE.fullmatch(text):
        return False
    try:
        datetime.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return False
    return True


_FORMATS: dict[str, Callable[[str], bool]] = {
    "date": _is_date,
    "date-time": _is_date_time,
    "time": lambda text: _TIME_RE.fullmatch(text) is not None,
}

_BUILDERS: dict[str, Callable[[TypeCompiler, Mapping[str, Any]], Validator]] = {
    "string": _string,
    "integer": _numeric("integer"),
    "number": _numeric("number"),
    "boolean": _boolean,
    "array": TypeCompiler.compile_array,
    "object": TypeCompiler.compile_object,
}
