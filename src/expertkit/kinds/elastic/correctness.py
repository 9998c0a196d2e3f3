"""Query DSL answers as parts, and their literals checked against the question and the known values.

Parts are taken from the canonical form the validator's equivalence compares (shorthand expanded), as
``(clause, field, operator, value)``:

* queries: the clause is the boolean context — ``and`` (a lone query, ``must``, ``filter``), ``or``
  (``should``, ``dis_max``), ``not`` (``must_not``) — nested as ``and/or``, under ``query``,
  ``post_filter`` or an aggregation's filter; the operator is the query type, with its parameter for
  the others than the main one (``range.gte``, ``match.operator``); ``terms`` gives one part per value;
* aggregations: the clause is the path of parent aggregation types (names are free and ignored), the
  operator the aggregation type (and ``type.param`` for each parameter);
* ``sort``: one part per sort key with its order; any other top-level key (``size``, ``from``,
  ``_source``…) is one part.

A literal is a string or number of a query (not an aggregation parameter, sort or size): a number is
grounded when the question states it (``1,000`` for 1000 included); date math and dates are left out
(the question says "last week", not ``now-1w``), and so are booleans. A number the question gives in
other units or words ("three hours" for 180 minutes) is reported ungrounded — it is a literal a reader
must check, not an error of a correct answer (a correct answer gets no error kinds).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from expertkit.core.errors import ExpertkitError
from expertkit.core.fileio import read_json
from expertkit.kinds.correctness import Matcher, Part, grounded

if TYPE_CHECKING:
    from expertkit.kinds import OutputKind

_CLAUSE = {"must": "and", "filter": "and", "should": "or", "must_not": "not"}
_MAIN_PARAMS = ("value", "query")
_META = ("boost", "_name")
_INDEX_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
#: Answers up to this long have their parts cached.
MAX_CACHED_CHARS = 20_000


def _j(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class _Walker:
    """Collects the parts and query literals of one canonical body."""

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.literals: list[tuple[str, str | int | float]] = []  # (field, value)

    def add(self, clause: str, field: str, op: str, value: Any, literal: bool = False) -> None:
        self.parts.append((clause, field, op, _j(value)))
        if literal and isinstance(value, str | int | float) and not isinstance(value, bool):
            self.literals.append((field, value))

    def body(self, body: Mapping[str, Any]) -> None:
        for key, value in body.items():
            if key in ("query", "post_filter"):
                self.query(value, f"{key}/and")
            elif key == "aggs":
                self.aggs(value, "aggs")
            elif key == "sort" and isinstance(value, list):
                for item in value:
                    if isinstance(item, dict) and len(item) == 1:
                        (name, spec), = item.items()
                        spec = spec if isinstance(spec, dict) else {"order": spec}
                        self.add("sort", name, "sort", spec.get("order", ""))
                        for param, v in spec.items():
                            if param != "order":
                                self.add("sort", name, f"sort.{param}", v)
                    else:
                        self.add("sort", "", "sort", item)
            else:
                self.add(key, "", "=", value)

    def query(self, q: Any, clause: str) -> None:
        if not isinstance(q, dict) or len(q) != 1:
            self.add(clause, "", "?", q)
            return
        (qtype, body), = q.items()
        if not isinstance(body, dict):
            self.add(clause, "", qtype, body)
            return
        if qtype == "bool":
            for key, value in body.items():
                if key in _CLAUSE:
                    sub = clause if _CLAUSE[key] == "and" else f"{clause}/{_CLAUSE[key]}"
                    for item in value if isinstance(value, list) else [value]:
                        self.query(item, sub)
                elif key not in _META:
                    self.add(clause, "", f"bool.{key}", value)
            return
        if qtype == "constant_score" and "filter" in body:
            self.query(body["filter"], clause)
            return
        if qtype == "dis_max" and isinstance(body.get("queries"), list):
            for item in body["queries"]:
                self.query(item, f"{clause}/or")
            return
        if qtype == "nested" and "query" in body:
            self.query(body["query"], f"{clause}/nested:{body.get('path', '')}")
            return
        if qtype == "match_all" or qtype == "match_none":
            self.add(clause, "", qtype, "")
        elif qtype == "exists":
            self.add(clause, str(body.get("field", "")), "exists", "")
        elif qtype == "terms":
            for name, values in body.items():
                if name in _META:
                    continue
                for v in values if isinstance(values, list) else [values]:
                    self.add(clause, name, "terms", v, literal=True)
        elif qtype in ("multi_match", "query_string", "simple_query_string"):
            fields = body.get("fields") or [body.get("default_field", "")]
            for name in fields if isinstance(fields, list) else [fields]:
                self.add(clause, str(name), qtype, body.get("query", ""), literal=qtype == "multi_match")
            for param, v in body.items():
                if param not in ("query", "fields", "default_field", *_META):
                    self.add(clause, "", f"{qtype}.{param}", v)
        elif all(isinstance(v, dict) for k, v in body.items() if k not in _META):
            for name, params in body.items():  # a field query in canonical form: {field: {param: value}}
                if name in _META:
                    continue
                for param, v in params.items():
                    if param in _META:
                        continue
                    op = qtype if param in _MAIN_PARAMS else f"{qtype}.{param}"
                    self.add(clause, name, op, v, literal=param in _MAIN_PARAMS or qtype == "range")
        else:
            self.add(clause, "", qtype, body)

    def aggs(self, aggs: Any, path: str) -> None:
        if not isinstance(aggs, dict):
            self.add(path, "", "?", aggs)
            return
        for agg in aggs.values():
            if not isinstance(agg, dict):
                self.add(path, "", "?", agg)
                continue
            for atype, params in agg.items():
                if atype == "aggs":
                    continue
                if atype == "meta":
                    self.add(path, "", "meta", params)
                    continue
                if atype == "filter":
                    self.add(path, "", "filter", "")
                    self.query(params, f"{path}/filter/and")
                    continue
                field = str(params.get("field", "")) if isinstance(params, dict) else ""
                self.add(path, field, atype, "")
                if isinstance(params, dict):
                    for param, v in params.items():
                        if param != "field":
                            self.add(path, field, f"{atype}.{param}", v)
                if isinstance(agg.get("aggs"), dict):
                    self.aggs(agg["aggs"], f"{path}/{atype}:{field}")


def _walk(answer: str) -> _Walker | None:
    """The parts and literals of ``answer`` (short answers cached: scoring asks for them several times)."""
    return _walk_cached(answer) if len(answer) <= MAX_CACHED_CHARS else _walk_once(answer)


@lru_cache(maxsize=4096)
def _walk_cached(answer: str) -> _Walker | None:
    return _walk_once(answer)


def _walk_once(answer: str) -> _Walker | None:
    from expertkit.kinds.elastic.body import canonical_body, parse_body

    body, error = parse_body(answer)
    if body is None or error:
        return None
    walker = _Walker()
    try:
        walker.body(canonical_body(body))
    except Exception:  # never raise on an output (RecursionError included): no parts
        return None
    return walker


class ElasticMatcher(Matcher):
    """Parts of Query DSL bodies; literals against the question and ``<values>/<index>.json``."""

    broken = "broken_json"

    def __init__(self, validator: OutputKind) -> None:
        super().__init__(validator)
        self._values: dict[str, dict[str, set[str]]] = {}

    def parses(self, answer: str) -> bool:
        from expertkit.kinds.elastic.body import parse_body

        return parse_body(answer)[0] is not None

    def parts(self, answer: str) -> list[Part] | None:
        walker = _walk(answer)
        return None if walker is None else list(walker.parts)

    def known_values(self, index: str | None) -> dict[str, set[str]]:
        """Field → known values (lower case) of ``index``, from the ``values`` resource (empty without)."""
        folder = self.resource("values")
        if folder is None or not index or not _INDEX_RE.fullmatch(index):  # a name, never a path
            return {}
        if index not in self._values:
            path = folder / f"{index}.json"
            values: dict[str, set[str]] = {}
            if path.is_file():
                data = read_json(path, what="known values")
                if not isinstance(data, dict):
                    raise ExpertkitError("known values must be an object of field -> list of values", path=path)
                values = {str(k): {str(v).lower() for v in vs} for k, vs in data.items() if isinstance(vs, list)}
            if len(self._values) >= 1024:
                return values
            self._values[index] = values
        return self._values[index]

    def ungrounded(self, answer: str, fields: Mapping[str, str], question: str) -> list[str]:
        walker = _walk(answer)
        if walker is None:
            return []
        known = self.known_values(self.validator.value(fields, "index"))
        out: list[str] = []
        for field, value in walker.literals:
            values = known.get(field, set()) | known.get(field.removesuffix(".keyword"), set())
            if not grounded(value if isinstance(value, str) else _j(value), question, values):
                item = f"{field}={value!r}"
                if item not in out:
                    out.append(item)
        return out
