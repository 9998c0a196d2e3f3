"""The json validator: parsing, the optional JSON Schema resource, equivalence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expertkit.core.errors import ExpertkitError
from expertkit.core.manifest import OutputSpec
from expertkit.kinds import bind_kind
from expertkit.kinds.json.validator import JsonValidator, parse_json_object

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["name", "price"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "price": {"type": "number", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}
F: dict[str, str] = {}


def make(tmp_path: Path, schema: object | None = None, raw: str | None = None) -> JsonValidator:
    resources = {}
    if schema is not None or raw is not None:
        (tmp_path / "schema.json").write_text(raw if raw is not None else json.dumps(schema))
        resources["json_schema"] = "schema.json"
    validator = bind_kind(tmp_path, OutputSpec(kind="json", resources=resources))
    assert isinstance(validator, JsonValidator)
    return validator


def test_parse_json_object() -> None:
    assert parse_json_object('{"a": 1}') == ({"a": 1}, None)
    value, error = parse_json_object('{"a": 1,}')
    assert value is None and error is not None and error.startswith("not valid JSON")
    assert parse_json_object("[" * 100_000) == (None, "JSON nested too deeply")


def test_without_schema_any_json_is_valid(tmp_path: Path) -> None:
    v = make(tmp_path)
    assert v.validate('{"x": [1, 2, {"y": null}]}', F).valid
    assert v.validate("42", F).valid
    result = v.validate("{x: 1}", F)
    assert not result.valid and result.errors[0].startswith("not valid JSON")


def test_schema_accepts_fitting_output(tmp_path: Path) -> None:
    v = make(tmp_path, SCHEMA)
    assert v.validate('{"name": "lamp", "price": 12.5, "tags": ["home"]}', F).valid


def test_schema_violations_are_reported_with_their_path(tmp_path: Path) -> None:
    v = make(tmp_path, SCHEMA)
    result = v.validate('{"name": "lamp", "price": "cheap", "tags": ["a", 3]}', F)
    assert not result.valid
    assert "$.price: 'cheap' is not of type 'number'" in result.errors
    assert "$.tags[1]: 3 is not of type 'string'" in result.errors
    result = v.validate('{"price": -1, "extra": true}', F)
    assert any("'name' is a required property" in e for e in result.errors)
    assert any(e.startswith("$.price:") and "minimum" in e for e in result.errors)
    assert any("Additional properties" in e for e in result.errors)


def test_many_violations_are_capped(tmp_path: Path) -> None:
    v = make(tmp_path, {"type": "array", "items": {"type": "integer"}})
    result = v.validate(json.dumps(["x"] * 50), F)
    assert len(result.errors) == 6
    assert result.errors[-1] == "and 45 more schema violation(s)"


def test_bad_schema_files_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(ExpertkitError, match="unreadable JSON Schema"):
        make(tmp_path, raw="{not json")
    with pytest.raises(ExpertkitError, match="not a valid JSON Schema"):
        make(tmp_path, {"type": "no-such-type"})
    with pytest.raises(ExpertkitError, match="not found"):
        bind_kind(tmp_path, OutputSpec(kind="json", resources={"json_schema": "missing.json"}))


def test_deep_output_with_schema_does_not_raise(tmp_path: Path) -> None:
    v = make(tmp_path, {"type": "array", "items": {"$ref": "#"}})
    result = v.validate("[" * 900 + "]" * 900, F)
    assert isinstance(result.valid, bool)
    assert v.validate("[" * 100_000 + "]" * 100_000, F).errors == ["JSON nested too deeply"]


def test_equivalent(tmp_path: Path) -> None:
    v = make(tmp_path)
    assert v.equivalent('{"a": 1, "b": [1, 2]}', '{"b":[1,2],"a":1}', F)
    assert v.equivalent('{"a": 1}', '{"a": 1.0}', F)
    assert not v.equivalent('{"a": true}', '{"a": 1}', F)
    assert not v.equivalent('{"a": false}', '{"a": 0}', F)
    assert not v.equivalent('{"b": [1, 2]}', '{"b": [2, 1]}', F)
    assert not v.equivalent("nope", "nope", F)
    assert v.execution_match("1", "1", F) is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=50))
def test_never_raises(text: str) -> None:
    v = JsonValidator(Path("."), OutputSpec(kind="json"))
    assert isinstance(v.validate(text, F).valid, bool)
    assert isinstance(v.equivalent(text, text, F), bool)
