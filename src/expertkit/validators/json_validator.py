"""The ``json`` validator: the output parses as JSON and, optionally, fits a JSON Schema."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from expertkit.validators import ValidationResult, Validator


def parse_json_object(text: str) -> tuple[Any, str | None]:
    """``(value, error)``: the parsed JSON or why it does not parse."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except RecursionError:
        return None, "JSON nested too deeply"


class JsonValidator(Validator):
    kind = "json"

    def validate(self, output: str, fields: Mapping[str, str]) -> ValidationResult:
        value, error = parse_json_object(output)
        if error:
            return ValidationResult(False, [error])
        return ValidationResult(True)

    def equivalent(self, a: str, b: str, fields: Mapping[str, str]) -> bool:
        va, ea = parse_json_object(a)
        vb, eb = parse_json_object(b)
        return ea is None and eb is None and va == vb
