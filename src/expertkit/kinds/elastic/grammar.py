"""The ``schema`` grammar of ``elastic_dsl`` experts: one EBNF grammar per index.

Which field a query type, an aggregation or a sort may name is asked of the expert's own validator
(a probe body per field and type), so the grammar admits what the validator accepts and follows it
when the validator changes; the value a field takes follows its mapped type (numbers for numeric
fields, ``true``/``false`` for booleans, strings otherwise). The grammar is written in the compact
form of the training data: no spaces, top-level keys in the order ``size``, ``query``, ``sort`` or
``aggs``; bool clauses in the order ``must``, ``filter``, ``should`` (then ``minimum_should_match``),
``must_not``; range bounds lower first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from expertkit.kinds.elastic.validator import ElasticDslValidator

NUMERIC = frozenset({"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float",
                     "unsigned_long"})
DATES = frozenset({"date", "date_nanos"})
GEO = frozenset({"geo_point", "geo_shape", "point", "shape"})
#: Types a full-text or pattern query (match, prefix, wildcard, ...) does not take a string for.
NOT_TEXT = NUMERIC | DATES | {"boolean", "ip"}
#: Field query types whose value is one scalar: ``{"TYPE":{"FIELD":VALUE}}``.
SCALAR_QUERIES = ("term", "match", "match_phrase", "prefix", "wildcard")
METRIC_AGGS = ("avg", "sum", "min", "max", "cardinality", "value_count")
CALENDAR_INTERVALS = ("minute", "hour", "day", "week", "month", "quarter", "year")

_PRIMITIVES = r'''
str ::= "\"" chr* "\""
chr ::= [^"\\\x00-\x1f] | "\\" esc
esc ::= ["\\/bfnrt] | "u" hex hex hex hex
hex ::= [0-9a-fA-F]
int ::= "-"? ("0" | [1-9] [0-9]*)
num ::= int ("." [0-9]+)? ([eE] [-+]? [0-9]+)?
boolv ::= "true" | "false"
ipv ::= "\"" octet "." octet "." octet "." octet ("/" [0-9] [0-9]?)? "\""
octet ::= "25" [0-5] | "2" [0-4] [0-9] | "1" [0-9] [0-9] | [1-9] [0-9] | [0-9]
'''


def lit(text: str) -> str:
    """An EBNF string literal for ``text``."""
    return json.dumps(text)


def key(name: str) -> str:
    """The literal ``"name":``."""
    return lit(json.dumps(name) + ":")


def alt(items: Iterable[str]) -> str:
    return " | ".join(f"({i})" for i in items)


def _ordered(items: list[str]) -> str:
    """One or more of ``items`` in this order, comma-separated (an EBNF expression)."""
    if len(items) == 1:
        return items[0]
    head, rest = items[0], _ordered(items[1:])
    return f"({head} (\",\" ({rest}))?) | ({rest})"


def value_rule(ftype: str) -> str:
    if ftype in NUMERIC:
        return "num"
    if ftype == "boolean":
        return "boolv"
    if ftype == "ip":
        return "ipv"
    return "str"


def _sample(ftype: str) -> Any:
    if ftype in NUMERIC:
        return 1
    if ftype == "boolean":
        return True
    if ftype in DATES:
        return "now-1d"
    if ftype == "ip":
        return "10.0.0.1"
    return "x"


class _Probe:
    """Asks the validator which bodies it accepts for one index."""

    def __init__(self, validator: ElasticDslValidator, fields: Mapping[str, str]) -> None:
        self.validator = validator
        self.fields = dict(fields)

    def ok(self, body: dict[str, Any]) -> bool:
        return bool(self.validator.validate(json.dumps(body, separators=(",", ":")), self.fields).valid)


def build_index_grammar(validator: ElasticDslValidator, fields: Mapping[str, str], types: Mapping[str, str]) -> str:
    """The EBNF of search bodies on an index whose flattened mapping is ``types`` (path -> type), asking
    ``validator`` (the expert's) which fields each query, aggregation and sort may name."""
    probe = _Probe(validator, fields)
    leaves = {path: t for path, t in types.items() if t not in ("object", "nested", "alias")}
    rules: dict[str, str] = {}
    leaf_alts: list[str] = []

    for qtype in SCALAR_QUERIES:
        by_value: dict[str, list[str]] = {}
        for path, ftype in leaves.items():
            if ftype in GEO or (qtype != "term" and ftype in NOT_TEXT):
                continue  # a string query on a number, date or point fails in Elasticsearch
            if probe.ok({"query": {qtype: {path: _sample(ftype) if qtype == "term" else "x"}}}):
                value = value_rule(ftype) if qtype == "term" else "str"
                by_value.setdefault(value, []).append(key(path))
        if by_value:
            rules[f"q_{qtype}"] = alt(f"({alt(names)}) {value}" for value, names in by_value.items())
            leaf_alts.append(f"{key(qtype)} \"{{\" q_{qtype} \"}}\"")
    terms: dict[str, list[str]] = {}
    for path, ftype in leaves.items():
        if probe.ok({"query": {"terms": {path: [_sample(ftype)]}}}):
            terms.setdefault(value_rule(ftype), []).append(key(path))
    if terms:
        rules["q_terms"] = alt(f"({alt(names)}) \"[\" {v} (\",\" {v})* \"]\"" for v, names in terms.items())
        leaf_alts.append(f"{key('terms')} \"{{\" q_terms \"}}\"")
    ranges: dict[str, list[str]] = {}
    for path, ftype in leaves.items():
        if ftype not in NUMERIC | DATES:  # a range over keywords is legal but compares strings: not offered
            continue
        value = "str" if ftype in DATES else "num"
        if probe.ok({"query": {"range": {path: {"gte": _sample(ftype) if ftype in DATES else 1}}}}):
            ranges.setdefault(value, []).append(key(path))
    if ranges:
        rules["q_range"] = alt(f"({alt(names)}) \"{{\" range_{v} \"}}\"" for v, names in ranges.items())
        for v in ranges:
            lower = f"({lit(chr(34) + 'gt' + chr(34) + ':')} | {lit(chr(34) + 'gte' + chr(34) + ':')}) {v}"
            upper = f"({lit(chr(34) + 'lt' + chr(34) + ':')} | {lit(chr(34) + 'lte' + chr(34) + ':')}) {v}"
            rules[f"range_{v}"] = f"({lower} (\",\" {upper})?) | ({upper})"
        leaf_alts.append(f"{key('range')} \"{{\" q_range \"}}\"")
    exists = [lit(json.dumps(p)) for p in leaves if probe.ok({"query": {"exists": {"field": p}}})]
    if exists:
        rules["any_field"] = alt(exists)
        leaf_alts.append(f"{key('exists')} \"{{\" {key('field')} any_field \"}}\"")
    matchable = [lit(json.dumps(p)) for p, t in leaves.items()
                 if probe.ok({"query": {"multi_match": {"query": "x", "fields": [p]}}})
                 and probe.ok({"query": {"match": {p: "x"}}}) and t not in NOT_TEXT | GEO]
    if matchable:
        rules["mm_field"] = alt(matchable)
        leaf_alts.append(f"{key('multi_match')} \"{{\" {key('query')} str \",\" {key('fields')} "
                         f"\"[\" mm_field (\",\" mm_field)* \"]\" \"}}\"")
    clauses = [f"{key('must')} qlist", f"{key('filter')} qlist",
               f"{key('should')} qlist (\",\" {key('minimum_should_match')} int)?", f"{key('must_not')} qlist"]
    rules["bool_body"] = _ordered(clauses)
    rules["qlist"] = "\"[\" q (\",\" q)* \"]\""
    rules["q"] = "\"{\" (" + alt([f"{key('bool')} \"{{\" bool_body \"}}\"", *leaf_alts]) + ") \"}\""

    # aggregations
    agg_alts: list[str] = []
    for agg in METRIC_AGGS:
        ok = [lit(json.dumps(p)) for p in leaves if probe.ok({"size": 0, "aggs": {"a": {agg: {"field": p}}}})]
        if ok:
            rules[f"agg_{agg}"] = alt(ok)
            agg_alts.append(f"{key(agg)} \"{{\" {key('field')} agg_{agg} \"}}\"")
    bucket = [lit(json.dumps(p)) for p in leaves if probe.ok({"size": 0, "aggs": {"a": {"terms": {"field": p}}}})]
    if bucket:
        rules["agg_terms"] = alt(bucket)
        agg_alts.append(f"{key('terms')} \"{{\" {key('field')} agg_terms (\",\" {key('size')} int)? \"}}\"")
    dated = [lit(json.dumps(p)) for p in leaves if probe.ok(
        {"size": 0, "aggs": {"a": {"date_histogram": {"field": p, "calendar_interval": "day"}}}})]
    if dated:
        rules["agg_date"] = alt(dated)
        rules["interval"] = alt(lit(json.dumps(i)) for i in CALENDAR_INTERVALS)
        agg_alts.append(f"{key('date_histogram')} \"{{\" {key('field')} agg_date \",\" "
                        f"{key('calendar_interval')} interval \"}}\"")
    if agg_alts:
        rules["agg"] = "str \":\" \"{\" (" + alt(agg_alts) + ") (\",\" aggs)? \"}\""
        rules["aggs"] = f"{key('aggs')} \"{{\" agg (\",\" agg)* \"}}\""
    sortable = [lit(json.dumps(p)) for p in leaves if probe.ok({"size": 1, "sort": [{p: "desc"}]})]
    tail: list[str] = []
    if sortable:
        rules["sort_field"] = alt(sortable)
        rules["sort"] = (f"{key('sort')} \"[\" sort_item (\",\" sort_item)* \"]\"")
        rules["sort_item"] = f"\"{{\" sort_field \":\" ({lit(json.dumps('asc'))} | {lit(json.dumps('desc'))}) \"}}\""
        tail.append("sort")
    if agg_alts:
        tail.append("aggs")
    query = f"{key('query')} q"
    sized = f"{key('size')} int (\",\" {query})?" + (f" (\",\" ({alt(tail)}))?" if tail else "")
    rules["root"] = f"\"{{\" (({query}) | ({sized})) \"}}\""
    order = ["root", *[name for name in rules if name != "root"]]
    return "\n".join(f"{name} ::= {rules[name]}" for name in order) + "\n" + _PRIMITIVES
