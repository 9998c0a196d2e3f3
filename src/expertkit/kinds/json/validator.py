"""The ``json`` validator: the output parses as JSON and, optionally, fits a JSON Schema.

The schema is the file named by the manifest's ``output.resources.json_schema`` (relative to the
expert folder); it is read and checked once, when the validator is built. Its ``$schema`` picks the
draft (2020-12 when absent). ``format`` is not asserted.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from expertkit.core.errors import ExpertkitError
from expertkit.core.fileio import read_json
from expertkit.kinds import OutputKind
from expertkit.kinds.validation import ValidationResult, too_long

if TYPE_CHECKING:
    from expertkit.core.contract import FieldSpec
    from expertkit.core.manifest import OutputSpec

#: Schema violations reported per output (the rest are counted).
MAX_SCHEMA_ERRORS = 5


def parse_json_object(text: str) -> tuple[Any, str | None]:
    """``(value, error)``: the parsed JSON or why it does not parse."""
    if not isinstance(text, str):
        return None, "output is not text"
    problem = too_long(text)
    if problem:
        return None, problem
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except RecursionError:
        return None, "JSON nested too deeply"
    except (ValueError, TypeError) as exc:  # pragma: no cover - defensive
        return None, f"not valid JSON: {exc}"


def _tagged(value: Any) -> Any:
    """A form of a JSON value where ``true`` != ``1`` and ``1`` == ``1.0`` (as in JSON)."""
    if isinstance(value, bool) or value is None:
        return ("b", value)
    if isinstance(value, int | float):
        if isinstance(value, float) and math.isnan(value):
            return ("nan",)
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, list):
        return ("l", tuple(_tagged(v) for v in value))
    if isinstance(value, dict):
        return ("o", frozenset((k, _tagged(v)) for k, v in value.items()))
    return ("?", repr(value))


def _where(path: Any) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def find_json(text: str, opener: re.Pattern[str]) -> tuple[int, str] | None:
    """Start offset and text of the first complete JSON value in ``text`` that starts at an ``opener``."""
    decoder = json.JSONDecoder()
    for m in opener.finditer(text):
        try:
            _, end = decoder.raw_decode(text, m.start())
        except json.JSONDecodeError:
            continue
        except RecursionError:  # every opener inside would recurse as deep again: give up
            return None
        return m.start(), text[m.start() : end]
    return None


_VALUE_OPENER = re.compile(r"[{\[]")


#: The routing fields the shipped kinds start a contract with (``expertkit new``), and route by when a manifest
#: marks none with ``route``.
SHIPPED_ROUTING: tuple[tuple[str, str], ...] = (
    ("Dialect", "The language of the answer."),
    ("Task", "What the answer is."),
)


class JsonValidator(OutputKind):
    """The ``json`` kind: any JSON value is valid; with a ``json_schema`` resource it must also fit that schema."""

    name = "json"
    example_answer = '{"answer": "example"}'
    resource_notes = "Optionally add a JSON Schema the answers must fit: `output.resources.json_schema: schema.json`."
    direct_openers: ClassVar[tuple[str, ...]] = ("{", "[")
    keeps_trailing_text = True
    scaffold_routing = SHIPPED_ROUTING
    default_routing = tuple(name for name, _ in SHIPPED_ROUTING)

    def __init__(self, expert_root: str | Path, output: OutputSpec, fields: Sequence[FieldSpec] = ()) -> None:
        super().__init__(expert_root, output, fields)
        self._schema_validator: Any = None
        path = self.resource("json_schema")
        if path is not None:
            self._schema_validator = load_schema_validator(path)

    def validate(self, output: str, fields: Mapping[str, str]) -> ValidationResult:
        value, error = parse_json_object(output)
        if error:
            return ValidationResult(False, [error])
        if self._schema_validator is None:
            return ValidationResult(True)
        try:
            found = sorted(self._schema_validator.iter_errors(value), key=lambda e: list(map(str, e.path)))
        except RecursionError:
            return ValidationResult(False, ["JSON nested too deeply for the schema check"])
        errors = []
        for err in found[:MAX_SCHEMA_ERRORS]:
            message = " ".join(err.message.split())
            if len(message) > 160:
                message = message[:157] + "..."
            errors.append(f"{_where(err.absolute_path)}: {message}")
        if len(found) > MAX_SCHEMA_ERRORS:
            errors.append(f"and {len(found) - MAX_SCHEMA_ERRORS} more schema violation(s)")
        return ValidationResult(not errors, errors)

    def equivalent(self, a: str, b: str, fields: Mapping[str, str]) -> bool:
        va, ea = parse_json_object(a)
        vb, eb = parse_json_object(b)
        if ea is not None or eb is not None:
            return False
        try:
            return bool(_tagged(va) == _tagged(vb))
        except RecursionError:
            return False

    @classmethod
    def find_answer(cls, text: str) -> tuple[int, str] | None:
        """The first complete JSON object or array."""
        return find_json(text, _VALUE_OPENER)

    def schema_grammar(self, fields: Mapping[str, str]) -> str | None:
        """The expert's JSON Schema as a grammar (any JSON without one)."""
        from expertkit.kinds.json.grammar import json_ebnf, json_schema_ebnf

        schema = getattr(self._schema_validator, "schema", None)
        return json_schema_ebnf(schema) if isinstance(schema, Mapping) else json_ebnf()


def load_schema_validator(path: Path) -> Any:
    """A jsonschema validator for the schema file; :class:`ExpertkitError` when it is not a schema."""
    import jsonschema
    from jsonschema.exceptions import SchemaError

    if not path.is_file():
        raise ExpertkitError("JSON Schema file not found", path=path, key="output.resources.json_schema")
    schema = read_json(path, what="JSON Schema")
    if not isinstance(schema, dict | bool):
        raise ExpertkitError("a JSON Schema must be an object or a boolean", path=path)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        raise ExpertkitError(f"not a valid JSON Schema: {exc.message}", path=path) from None
    return cls(schema)
