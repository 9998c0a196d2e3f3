"""The ``elastic_dsl`` validator: an Elasticsearch search request body, judged as Elasticsearch would.

1. The output is one JSON object (no duplicate keys, no NaN) whose top-level keys are the body fields
   of the client's ``Elasticsearch.search`` (a misspelled ``qurey`` is an error).
2. :mod:`~expertkit.kinds.elastic.checker` walks it: every query, aggregation and nested value's
   parameters, types and enums come from the typed classes of ``elasticsearch.dsl``
   (:mod:`~expertkit.kinds.elastic.spec`), values are read as the field's mapping type reads them
   (:mod:`~expertkit.kinds.elastic.values`: boolean, numeric, date and date math, ip, geo), the engine's
   limits hold (result window, terms size, percentiles, intervals, aggregation names, order keys,
   buckets_path), and ``query_string`` queries parse (:mod:`~expertkit.kinds.elastic.query_string`).
3. Fields, against ``<mappings>/<Index>.json`` (read once, cached): every field a query, sort or
   aggregation names exists (multi-fields and object paths included, wildcards where Elasticsearch
   allows them), with the type rules of docs/elastic.md. What Elasticsearch runs but a careful user
   avoids (a range on keyword/text, wildcard on text, term on text, an unmapped field in ``fields``,
   ``docvalue_fields``, ``_source`` or ``highlight``) is a warning, not an error.

   An ``Index`` the mappings folder lacks is an error; without a mappings resource or an ``Index``
   field, fields are not checked.

``equivalent`` compares canonical forms: key order, ``aggs``/``aggregations``, field-query shorthand
(``{"match": {"f": "x"}}`` == ``{"match": {"f": {"query": "x"}}}``; likewise term, match_phrase, prefix,
wildcard, regexp, fuzzy), ``bool`` clause order and single-clause-vs-list, ``terms`` value order,
``dis_max`` query order, and sort shorthand (``"f"`` == ``{"f": {"order": "asc"}}``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from expertkit.core.fileio import read_json
from expertkit.kinds import OutputKind, Role
from expertkit.kinds.correctness import ErrorKind
from expertkit.kinds.elastic.body import IndexMapping, canonical_body, flatten_mapping, parse_body
from expertkit.kinds.elastic.correctness import ElasticMatcher
from expertkit.kinds.json.validator import SHIPPED_ROUTING, find_json
from expertkit.kinds.validation import ValidationResult

if TYPE_CHECKING:
    from expertkit.core.contract import FieldSpec
    from expertkit.core.manifest import OutputSpec

# ---------------------------------------------------------------------------- the validator
_OBJECT_OPENER = re.compile(r"\{")


class ElasticDslValidator(OutputKind):
    """The ``elastic_dsl`` kind: Elasticsearch search bodies, validated against the expert's index mappings."""

    name = "elastic_dsl"
    roles = (Role("index", "Index", "the index the question is about: its mapping is <mappings>/<value>.json",
                  needed=True, example="my-index"),)
    example_answer = '{"query": {"match_all": {}}}'
    resource_notes = ("Add the index mappings the validator checks fields against: a folder of `<index>.json` "
                      "files and `output.resources.mappings: mappings`.")
    matcher_class = ElasticMatcher
    errors = (ErrorKind("broken_json", "json", "the answer is not JSON (or not a JSON object)"),)
    report_columns = ("component_f1", "ungrounded")
    direct_openers: ClassVar[tuple[str, ...]] = ("{", "[")
    keeps_trailing_text = True
    scaffold_routing = SHIPPED_ROUTING
    default_routing = tuple(name for name, _ in SHIPPED_ROUTING)

    def __init__(self, expert_root: str | Path, output: OutputSpec, fields: Sequence[FieldSpec] = ()) -> None:
        super().__init__(expert_root, output, fields)
        self._mappings: dict[str, IndexMapping | None] = {}
        self._grammars: dict[str, str | None] = {}

    def index_names(self) -> list[str]:
        """Indices with a mapping file in the mappings resource."""
        folder = self.resource("mappings")
        if folder is None or not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.json"))

    def mapping(self, index: str) -> IndexMapping | None:
        """The flattened mapping of ``index`` (cached), or None when there is no such file."""
        if index in self._mappings:
            return self._mappings[index]
        folder = self.resource("mappings")
        result: IndexMapping | None = None
        if folder is not None and index and "/" not in index and "\\" not in index and index[0] != ".":
            path = folder / f"{index}.json"
            if path.is_file():
                result = flatten_mapping(index, read_json(path, what="mapping"))
        if len(self._mappings) < 1024:
            self._mappings[index] = result
        return result

    def validate(self, output: str, fields: Mapping[str, str]) -> ValidationResult:
        body, error = parse_body(output)
        if body is None:
            return ValidationResult(False, [error or "not a JSON object"])
        errors: list[str] = []
        mapping: IndexMapping | None = None
        index = self.value(fields, "index")
        if index and self.output.resources.get("mappings"):
            mapping = self.mapping(index)
            if mapping is None:
                known = ", ".join(self.index_names()) or "none"
                errors.append(f"unknown index {index!r} (known: {known})")
        from expertkit.kinds.elastic.checker import Checker

        checker = Checker(mapping)
        try:
            checker.body(body)
        except RecursionError:
            return ValidationResult(False, ["body nested too deeply"])
        except Exception as exc:  # never raise on an output; report instead
            return ValidationResult(False, [f"could not check the body ({type(exc).__name__}: {exc})"])
        errors.extend(checker.errors)
        return ValidationResult(not errors, errors, checker.warnings)

    def equivalent(self, a: str, b: str, fields: Mapping[str, str]) -> bool:
        ba, ea = parse_body(a)
        bb, eb = parse_body(b)
        if ba is None or bb is None or ea or eb:
            return False
        try:
            return canonical_body(ba) == canonical_body(bb)
        except RecursionError:
            return False

    @classmethod
    def find_answer(cls, text: str) -> tuple[int, str] | None:
        """The first complete JSON object."""
        return find_json(text, _OBJECT_OPENER)

    def schema_grammar(self, fields: Mapping[str, str]) -> str | None:
        """The grammar for the prompt's index (``None`` when the expert has no mapping for it)."""
        from expertkit.kinds.elastic.grammar import build_index_grammar

        index = self.value(fields, "index")
        mapping = self.mapping(index) if index else None
        if mapping is None or index is None:
            return None
        if index not in self._grammars:
            self._grammars[index] = build_index_grammar(self, fields, mapping.types)
        return self._grammars[index]
