"""The ``elastic_dsl`` validator: an Elasticsearch search request body, checked against an index mapping.

Checks, in order:

1. The output is one JSON object (no duplicate keys, no NaN) whose top-level keys are search-body
   parameters (a misspelled ``qurey`` is an error).
2. Structure. A walker over the query and aggregation trees finds what ``elasticsearch.dsl`` lets
   through: unknown query / aggregation types, field queries naming no field or two fields, ``terms``
   with a scalar, ``exists`` without ``field``, unknown ``bool`` clauses, unknown options (range
   operators other than gt/gte/lt/lte/format/time_zone/boost/relation), ``size``/``from`` that are not
   non-negative integers, malformed ``sort`` and ``_source``. ``Search.from_dict`` then parses what is
   left, and anything it rejects is an error too.
3. Fields, against ``<mappings>/<Index>.json`` (the mapping is read once and cached): every field
   named in queries, sort, aggregations, ``_source``, ``collapse`` and ``fields`` exists (multi-fields
   like ``customer_full_name.keyword`` and object paths like ``geoip.city_name`` included; wildcards
   where Elasticsearch allows them). Type rules:

   ===========================================================  =======  ==========================
   rule                                                         level    why
   ===========================================================  =======  ==========================
   ``term``/``terms`` on a ``text`` field                       warning  matches analysed tokens;
                                                                         the ``.keyword`` multi-field
                                                                         is suggested when there is one
   ``range`` on anything but numeric/date/ip/range/version      error    (text, keyword, boolean, geo)
   ``prefix``/``wildcard``/``regexp``/``fuzzy`` on non-strings  error    Elasticsearch refuses it
   geo queries/aggregations on a non-geo field                  error    Elasticsearch refuses it
   a query, sort or aggregation on an object (not a leaf)       error    matches nothing / refused
   avg/min/max/stats/percentiles… on a non-numeric field        error    (date and boolean allowed
                                                                         for min/max/avg/stats/
                                                                         percentiles, as in ES)
   sum/extended_stats/histogram… on a non-numeric field         error
   ``date_histogram``/``date_range`` on a non-date field        error
   ``nested`` query/aggregation on a path that is not nested    error
   terms (or any doc-values) aggregation, sort or collapse      error    fielddata is off for text
   on a ``text`` field
   ===========================================================  =======  ==========================

   An ``Index`` the mappings folder lacks is an error; without a mappings resource or an ``Index``
   field, fields are not checked.

``equivalent`` compares canonical forms: key order, ``aggs``/``aggregations``, field-query shorthand
(``{"match": {"f": "x"}}`` == ``{"match": {"f": {"query": "x"}}}``; likewise term, match_phrase, prefix,
wildcard, regexp, fuzzy), ``bool`` clause order and single-clause-vs-list, ``terms`` value order,
``dis_max`` query order, and sort shorthand (``"f"`` == ``{"f": {"order": "asc"}}``).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expertkit.validators import ValidationResult, Validator, too_long

if TYPE_CHECKING:
    from expertkit.manifest import OutputSpec

# ---------------------------------------------------------------------------- vocabulary
SEARCH_BODY_KEYS = frozenset({
    "query", "aggs", "aggregations", "size", "from", "sort", "_source", "track_total_hits",
    "post_filter", "highlight", "collapse", "explain", "fields", "docvalue_fields", "stored_fields",
    "script_fields", "min_score", "timeout", "terminate_after", "track_scores", "version",
    "seq_no_primary_term", "search_after", "suggest", "rescore", "pit", "runtime_mappings",
    "indices_boost", "knn", "rank", "retriever", "stats", "profile", "ext", "slice",
})
META_FIELDS = {"_id": "keyword", "_index": "keyword", "_routing": "keyword", "_ignored": "keyword",
               "_tier": "keyword", "_seq_no": "long", "_doc": "long", "_score": "float"}
NUMERIC = frozenset({"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float",
                     "unsigned_long"})
DATES = frozenset({"date", "date_nanos"})
STRINGS = frozenset({"text", "keyword", "constant_keyword", "wildcard", "match_only_text",
                     "search_as_you_type"})
GEO = frozenset({"geo_point", "geo_shape"})
RANGE_TYPES = frozenset({"integer_range", "float_range", "long_range", "double_range", "date_range",
                         "ip_range"})
RANGE_OK = NUMERIC | DATES | RANGE_TYPES | {"ip", "version"}
TEXTLIKE = frozenset({"text", "match_only_text", "search_as_you_type"})
OBJECTS = frozenset({"object", "nested"})

META_KEYS = frozenset({"boost", "_name"})
BOOL_CLAUSES = ("must", "filter", "should", "must_not")
BOOL_OTHER = frozenset({"minimum_should_match", "boost", "_name", "adjust_pure_negative"})
#: Field queries: one field key whose value is a scalar shorthand or an options object.
#: query type -> (main option of the shorthand, allowed options)
FIELD_QUERIES: dict[str, tuple[str, frozenset[str]]] = {
    "match": ("query", frozenset({
        "query", "analyzer", "auto_generate_synonyms_phrase_query", "fuzziness", "max_expansions",
        "prefix_length", "fuzzy_transpositions", "fuzzy_rewrite", "lenient", "operator",
        "minimum_should_match", "zero_terms_query", "cutoff_frequency", "boost", "_name"})),
    "match_phrase": ("query", frozenset({"query", "analyzer", "slop", "zero_terms_query", "boost", "_name"})),
    "match_phrase_prefix": ("query", frozenset({
        "query", "analyzer", "max_expansions", "slop", "zero_terms_query", "boost", "_name"})),
    "match_bool_prefix": ("query", frozenset({
        "query", "analyzer", "fuzziness", "prefix_length", "max_expansions", "fuzzy_transpositions",
        "fuzzy_rewrite", "operator", "minimum_should_match", "boost", "_name"})),
    "term": ("value", frozenset({"value", "boost", "case_insensitive", "_name"})),
    "prefix": ("value", frozenset({"value", "rewrite", "case_insensitive", "boost", "_name"})),
    "wildcard": ("value", frozenset({"value", "wildcard", "rewrite", "case_insensitive", "boost", "_name"})),
    "regexp": ("value", frozenset({
        "value", "flags", "case_insensitive", "max_determinized_states", "rewrite", "boost", "_name"})),
    "fuzzy": ("value", frozenset({
        "value", "fuzziness", "max_expansions", "prefix_length", "transpositions", "rewrite", "boost",
        "_name"})),
    "span_term": ("value", frozenset({"value", "term", "boost", "_name"})),
}
RANGE_OPS = frozenset({"gt", "gte", "lt", "lte", "format", "time_zone", "boost", "relation", "_name"})
STRING_QUERIES = frozenset({"prefix", "wildcard", "regexp", "fuzzy"})
GEO_QUERIES = frozenset({"geo_distance", "geo_bounding_box", "geo_polygon", "geo_shape", "geo_grid"})
GEO_QUERY_OPTIONS = frozenset({"distance", "distance_type", "validation_method", "ignore_unmapped",
                               "type", "boost", "_name"})
NESTED_OPTIONS = frozenset({"path", "query", "score_mode", "ignore_unmapped", "inner_hits", "boost",
                            "_name"})

#: aggregation type -> field types allowed for its ``field`` (None: any leaf but text)
NUM_OR_DATE = NUMERIC | DATES | {"boolean", "histogram"}
NUM_ONLY = NUMERIC | {"boolean", "histogram"}
AGG_FIELD_TYPES: dict[str, frozenset[str] | None] = {
    **dict.fromkeys(("avg", "min", "max", "stats", "percentiles", "percentile_ranks"), NUM_OR_DATE),
    **dict.fromkeys(("sum", "extended_stats", "median_absolute_deviation", "boxplot", "rate"), NUM_ONLY),
    **dict.fromkeys(("histogram", "variable_width_histogram"), NUM_ONLY),
    **dict.fromkeys(("date_histogram", "auto_date_histogram", "date_range"), DATES | {"date_range"}),
    "range": NUMERIC | DATES,
    **dict.fromkeys(("ip_range", "ip_prefix"), frozenset({"ip"})),
    **dict.fromkeys(("geo_bounds", "geo_centroid", "geohash_grid", "geotile_grid", "geohex_grid",
                     "geo_distance"), GEO),
    **dict.fromkeys(("significant_text", "categorize_text"), TEXTLIKE | {"keyword"}),
}


def _known(registry: str) -> frozenset[str]:
    from elasticsearch.dsl import aggs, function, query

    classes = {"query": query.Query, "agg": aggs.Agg, "function": function.ScoreFunction}[registry]
    return frozenset(classes._classes)  # type: ignore[attr-defined]


def _query_params() -> dict[str, dict[str, dict[str, Any]]]:
    """Query type -> its sub-query parameters (``{"type": "query", "multi": ...}``) per elasticsearch.dsl."""
    from elasticsearch.dsl import query

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, cls in query.Query._classes.items():  # type: ignore[attr-defined]
        subs = {k: v for k, v in cls._param_defs.items() if v.get("type") == "query"}
        if subs:
            out[name] = subs
    return out


_VOCAB: dict[str, Any] = {}


def _vocab() -> dict[str, Any]:
    if not _VOCAB:
        _VOCAB.update(query=_known("query"), agg=_known("agg"), function=_known("function"),
                      subqueries=_query_params())
    return _VOCAB


# ---------------------------------------------------------------------------- mapping
@dataclass
class IndexMapping:
    """A flattened mapping: field path -> type, and text field -> its keyword multi-field."""

    name: str
    types: dict[str, str]
    keyword_of: dict[str, str] = field(default_factory=dict)


def flatten_mapping(name: str, body: Any) -> IndexMapping:
    """Flatten ``{"mappings": {"properties": ...}}`` (or bare ``properties``) into an :class:`IndexMapping`."""
    props: Any = body
    if isinstance(props, dict) and "mappings" in props:
        props = props["mappings"]
    if isinstance(props, dict) and "properties" in props:
        props = props["properties"]
    mapping = IndexMapping(name, {})
    aliases: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        if not isinstance(node, dict):
            return
        for key, spec in node.items():
            if not isinstance(spec, dict):
                continue
            path = prefix + key
            ftype = spec.get("type") or "object"
            mapping.types[path] = ftype
            if ftype == "alias" and isinstance(spec.get("path"), str):
                aliases[path] = spec["path"]
            if "properties" in spec:
                walk(spec["properties"], path + ".")
            for sub, subspec in (spec.get("fields") or {}).items():
                if isinstance(subspec, dict):
                    subtype = subspec.get("type") or "keyword"
                    mapping.types[f"{path}.{sub}"] = subtype
                    if subtype == "keyword" and ftype in TEXTLIKE:
                        mapping.keyword_of.setdefault(path, f"{path}.{sub}")

    walk(props, "")
    for path, target in aliases.items():
        mapping.types[path] = mapping.types.get(target, "alias")
    return mapping


# ---------------------------------------------------------------------------- parsing
class _BadJson(ValueError):
    pass


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _BadJson(f"duplicate key {key!r}")
            seen.add(key)
    return out


def _reject_constant(name: str) -> Any:
    raise _BadJson(f"{name} is not valid JSON")


def parse_body(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """``(body, error)``: the search body as a dict, or why it is not one."""
    if not isinstance(text, str):
        return None, "output is not text"
    problem = too_long(text)
    if problem:
        return None, problem
    try:
        value = json.loads(text, object_pairs_hook=_pairs_hook, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except _BadJson as exc:
        return None, f"not valid JSON: {exc}"
    except RecursionError:
        return None, "JSON nested too deeply"
    except (ValueError, TypeError) as exc:  # pragma: no cover - defensive
        return None, f"not valid JSON: {exc}"
    if not isinstance(value, dict):
        return None, f"the search body must be a JSON object, not {_jtype(value)}"
    return value, None


def _jtype(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _suggest(name: str, options: Any) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# ---------------------------------------------------------------------------- the walker
class _Checker:
    """Walks one body, collecting errors and warnings; ``mapping`` None skips field checks."""

    def __init__(self, mapping: IndexMapping | None) -> None:
        self.mapping = mapping
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.runtime: dict[str, str] = {}
        vocab = _vocab()
        self.query_types: frozenset[str] = vocab["query"]
        self.agg_types: frozenset[str] = vocab["agg"]
        self.subqueries: dict[str, dict[str, dict[str, Any]]] = vocab["subqueries"]

    def error(self, msg: str, at: str) -> None:
        self.errors.append(f"{msg} (at {at})")

    def warn(self, msg: str, at: str) -> None:
        self.warnings.append(f"{msg} (at {at})")

    # -------------------------------------------------------------- fields
    def ftype(self, name: Any, at: str, *, leaf: bool = True) -> str | None:
        """The type of a referenced field (reporting unknown ones); None when unknown or unchecked."""
        if not isinstance(name, str) or not name:
            self.error(f"field name must be a non-empty string, got {_short(name)}", at)
            return None
        if name in META_FIELDS:
            return META_FIELDS[name]
        if name in self.runtime:
            return self.runtime[name]
        if self.mapping is None:
            return None
        ftype = self.mapping.types.get(name)
        if ftype is None:
            self.error(f"field {name!r} is not in index {self.mapping.name}"
                       f"{_suggest(name, self.mapping.types)}", at)
            return None
        if leaf and ftype in OBJECTS:
            self.error(f"field {name!r} is an {ftype} field, not a leaf; name one of its fields", at)
            return None
        return ftype

    def pattern(self, name: Any, at: str) -> None:
        """A field name that may hold wildcards (``_source``, ``multi_match`` fields, ``fields``)."""
        if not isinstance(name, str) or not name:
            self.error(f"field name must be a non-empty string, got {_short(name)}", at)
            return
        if "*" not in name and "?" not in name:
            self.ftype(name, at, leaf=False)
            return
        if self.mapping is None or name == "*":
            return
        if not any(fnmatchcase(p, name) for p in self.mapping.types) and not any(
            fnmatchcase(p, name) for p in self.runtime
        ):
            self.error(f"pattern {name!r} matches no field of index {self.mapping.name}", at)

    def no_text(self, name: str, ftype: str | None, what: str, at: str) -> bool:
        """Error for doc-values uses (aggregations, sort, collapse) of a text field; True if it is one."""
        if ftype in TEXTLIKE:
            kw = self.mapping.keyword_of.get(name) if self.mapping else None
            hint = f"; use {kw!r}" if kw else ""
            self.error(f"{what} on text field {name!r} needs fielddata, which is off{hint}", at)
            return True
        return False

    # -------------------------------------------------------------- queries
    def query(self, q: Any, at: str) -> None:
        if not isinstance(q, dict):
            self.error(f"a query must be an object, not {_jtype(q)}", at)
            return
        if len(q) != 1:
            if not q:
                self.error("empty query object; name a query type", at)
            else:
                self.error(f"a query object holds exactly one query type, got {len(q)} "
                           f"({', '.join(map(repr, q))})", at)
            return
        qtype, body = next(iter(q.items()))
        at = f"{at}.{qtype}"
        if qtype not in self.query_types:
            self.error(f"unknown query type {qtype!r}{_suggest(qtype, self.query_types)}", at)
            return
        if qtype in FIELD_QUERIES:
            self.field_query(qtype, body, at)
            return
        handler = getattr(self, f"q_{qtype}", None)
        if handler is not None:
            handler(body, at)
            return
        if not isinstance(body, dict):
            self.error(f"{qtype} query body must be an object, not {_jtype(body)}", at)
            return
        if isinstance(body.get("field"), str):
            self.ftype(body["field"], f"{at}.field")
        self.subquery_params(qtype, body, at)

    def subquery_params(self, qtype: str, body: dict[str, Any], at: str) -> None:
        for param, spec in self.subqueries.get(qtype, {}).items():
            if param not in body:
                continue
            value = body[param]
            if spec.get("multi"):
                items = value if isinstance(value, list) else [value]
                for i, item in enumerate(items):
                    self.query(item, f"{at}.{param}[{i}]")
            else:
                self.query(value, f"{at}.{param}")

    def one_field(self, qtype: str, body: Any, at: str) -> tuple[str, Any] | None:
        """The single ``field: value`` pair of a field query (meta keys aside), or None after an error."""
        if not isinstance(body, dict):
            self.error(f"{qtype} query body must be an object, not {_jtype(body)}", at)
            return None
        names = [k for k in body if k not in META_KEYS]
        if not names:
            self.error(f"{qtype} query names no field", at)
            return None
        if len(names) > 1:
            self.error(f"{qtype} query takes one field, got {len(names)} ({', '.join(map(repr, names))}); "
                       f"combine several with bool", at)
            return None
        return names[0], body[names[0]]

    def field_query(self, qtype: str, body: Any, at: str) -> None:
        pair = self.one_field(qtype, body, at)
        if pair is None:
            return
        name, value = pair
        main, allowed = FIELD_QUERIES[qtype]
        where = f"{at}.{name}"
        if isinstance(value, dict):
            for key in value:
                if key not in allowed:
                    self.error(f"unknown {qtype} option {key!r}{_suggest(key, allowed)}", where)
            mains = [k for k in (main, "wildcard", "term") if k in value and k in allowed]
            if not mains:
                self.error(f"{qtype} on {name!r} has no {main!r}", where)
                return
            scalar = value[mains[0]]
        else:
            scalar = value
        if isinstance(scalar, list | dict):
            hint = "; use terms for a list of values" if qtype == "term" and isinstance(scalar, list) else ""
            self.error(f"{qtype} on {name!r} takes one value, not {_jtype(scalar)}{hint}", where)
        elif scalar is None:
            self.error(f"{qtype} on {name!r} has a null value", where)
        ftype = self.ftype(name, where)
        if ftype is None:
            return
        if qtype == "term":
            self.term_on_text(qtype, name, ftype, where)
        elif qtype in STRING_QUERIES and ftype not in STRINGS:
            self.error(f"{qtype} query needs a keyword or text field; {name!r} is {ftype}", where)

    def term_on_text(self, qtype: str, name: str, ftype: str, at: str) -> None:
        if ftype in TEXTLIKE:
            kw = self.mapping.keyword_of.get(name) if self.mapping else None
            hint = f"; use {kw!r} for exact values" if kw else ""
            self.warn(f"{qtype} on text field {name!r} matches analysed tokens, not the whole value{hint}", at)

    def q_terms(self, body: Any, at: str) -> None:
        pair = self.one_field("terms", body, at)
        if pair is None:
            return
        name, value = pair
        where = f"{at}.{name}"
        if isinstance(value, dict):
            if not {"index", "id", "path"} <= set(value):
                self.error(f"terms on {name!r} needs a list of values (or a lookup with index, id, path)",
                           where)
        elif not isinstance(value, list):
            self.error(f"terms on {name!r} needs a list of values, not {_jtype(value)}", where)
        elif any(isinstance(v, list | dict) or v is None for v in value):
            self.error(f"terms on {name!r} takes a list of plain values", where)
        ftype = self.ftype(name, where)
        if ftype is not None:
            self.term_on_text("terms", name, ftype, where)

    def q_range(self, body: Any, at: str) -> None:
        pair = self.one_field("range", body, at)
        if pair is None:
            return
        name, value = pair
        where = f"{at}.{name}"
        if not isinstance(value, dict):
            self.error(f"range on {name!r} needs an object of bounds (gt, gte, lt, lte), not {_jtype(value)}",
                       where)
            return
        for key in value:
            if key not in RANGE_OPS:
                self.error(f"unknown range operator {key!r} (allowed: gt, gte, lt, lte, format, time_zone, "
                           f"boost, relation)", where)
        relation = value.get("relation")
        if relation is not None and str(relation).upper() not in {"INTERSECTS", "CONTAINS", "WITHIN"}:
            self.error(f"range relation must be INTERSECTS, CONTAINS or WITHIN, not {_short(relation)}", where)
        ftype = self.ftype(name, where)
        if ftype is not None and ftype not in RANGE_OK:
            self.error(f"range query on {ftype} field {name!r}; use a numeric, date or ip field", where)

    def q_exists(self, body: Any, at: str) -> None:
        if not isinstance(body, dict) or "field" not in body:
            self.error("exists query needs a 'field'", at)
            return
        for key in body:
            if key not in {"field", "boost", "_name"}:
                self.error(f"unknown exists option {key!r}", at)
        self.ftype(body["field"], f"{at}.field", leaf=False)

    def q_bool(self, body: Any, at: str) -> None:
        if not isinstance(body, dict):
            self.error(f"bool query body must be an object, not {_jtype(body)}", at)
            return
        for key, value in body.items():
            if key in BOOL_CLAUSES:
                items = value if isinstance(value, list) else [value]
                for i, item in enumerate(items):
                    self.query(item, f"{at}.{key}[{i}]" if isinstance(value, list) else f"{at}.{key}")
            elif key not in BOOL_OTHER:
                self.error(f"unknown bool clause {key!r} (must, filter, should, must_not)"
                           f"{_suggest(key, BOOL_CLAUSES)}", at)

    def q_nested(self, body: Any, at: str) -> None:
        if not isinstance(body, dict):
            self.error(f"nested query body must be an object, not {_jtype(body)}", at)
            return
        for key in body:
            if key not in NESTED_OPTIONS:
                self.error(f"unknown nested option {key!r}", at)
        if "path" not in body:
            self.error("nested query needs a 'path'", at)
        else:
            self.nested_path(body["path"], "nested query", f"{at}.path")
        if "query" not in body:
            self.error("nested query needs a 'query'", at)
        else:
            self.query(body["query"], f"{at}.query")

    def nested_path(self, path: Any, what: str, at: str) -> None:
        ftype = self.ftype(path, at, leaf=False)
        if ftype is not None and ftype != "nested":
            self.error(f"{what} path {path!r} is not a nested field (it is {ftype})", at)

    def q_multi_match(self, body: Any, at: str) -> None:
        if not isinstance(body, dict):
            self.error(f"multi_match query body must be an object, not {_jtype(body)}", at)
            return
        if "query" not in body:
            self.error("multi_match query needs a 'query'", at)
        fields = body.get("fields", [])
        if isinstance(fields, str):
            fields = [fields]
        if not isinstance(fields, list):
            self.error("multi_match 'fields' must be a list of field names", at)
            return
        for f in fields:
            self.pattern(f.split("^", 1)[0] if isinstance(f, str) else f, f"{at}.fields")

    def q_query_string(self, body: Any, at: str) -> None:
        if not isinstance(body, dict) or "query" not in body:
            self.error("query_string needs a 'query'", at)
            return
        fields = body.get("fields", [])
        if isinstance(body.get("default_field"), str):
            fields = [*fields, body["default_field"]] if isinstance(fields, list) else fields
        if not isinstance(fields, list):
            self.error("'fields' must be a list of field names", at)
            return
        for f in fields:
            self.pattern(f.split("^", 1)[0] if isinstance(f, str) else f, f"{at}.fields")

    q_simple_query_string = q_query_string

    def q_match_all(self, body: Any, at: str) -> None:
        if not isinstance(body, dict):
            self.error(f"match_all body must be an object, not {_jtype(body)}", at)
            return
        for key in body:
            if key not in META_KEYS:
                self.error(f"unknown match_all option {key!r}", at)

    q_match_none = q_match_all

    def q_ids(self, body: Any, at: str) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("values"), list):
            self.error("ids query needs a list of 'values'", at)

    def geo_query(self, qtype: str, body: Any, at: str) -> None:
        if not isinstance(body, dict):
            self.error(f"{qtype} query body must be an object, not {_jtype(body)}", at)
            return
        names = [k for k in body if k not in GEO_QUERY_OPTIONS]
        if len(names) != 1:
            self.error(f"{qtype} query takes one geo field, got {len(names)}", at)
            return
        ftype = self.ftype(names[0], f"{at}.{names[0]}")
        if ftype is not None and ftype not in GEO:
            self.error(f"{qtype} query needs a geo_point or geo_shape field; {names[0]!r} is {ftype}", at)
        if qtype == "geo_distance" and "distance" not in body:
            self.error("geo_distance query needs a 'distance'", at)

    def q_geo_distance(self, body: Any, at: str) -> None:
        self.geo_query("geo_distance", body, at)

    def q_geo_bounding_box(self, body: Any, at: str) -> None:
        self.geo_query("geo_bounding_box", body, at)

    def q_geo_polygon(self, body: Any, at: str) -> None:
        self.geo_query("geo_polygon", body, at)

    def q_geo_shape(self, body: Any, at: str) -> None:
        self.geo_query("geo_shape", body, at)

    def q_function_score(self, body: Any, at: str) -> None:
        if not isinstance(body, dict):
            self.error(f"function_score body must be an object, not {_jtype(body)}", at)
            return
        self.subquery_params("function_score", body, at)
        functions = body.get("functions", [])
        if not isinstance(functions, list):
            self.error("function_score 'functions' must be a list", at)
            return
        known = _vocab()["function"] | {"weight", "filter"}
        for i, fn in enumerate(functions):
            where = f"{at}.functions[{i}]"
            if not isinstance(fn, dict):
                self.error("a score function must be an object", where)
                continue
            for key, value in fn.items():
                if key not in known:
                    self.error(f"unknown score function {key!r}", where)
                elif key == "filter":
                    self.query(value, f"{where}.filter")
                elif key in ("field_value_factor", "random_score") and isinstance(value, dict):
                    if "field" in value:
                        self.ftype(value["field"], f"{where}.{key}.field")
                elif key in ("gauss", "exp", "linear") and isinstance(value, dict):
                    for fname in value:
                        if fname not in {"multi_value_mode"}:
                            self.ftype(fname, f"{where}.{key}")

    # -------------------------------------------------------------- aggregations
    def aggs(self, aggs: Any, at: str) -> None:
        if not isinstance(aggs, dict):
            self.error(f"aggregations must be an object of named aggregations, not {_jtype(aggs)}", at)
            return
        for name, agg in aggs.items():
            self.agg(name, agg, f"{at}.{name}")

    def agg(self, name: str, agg: Any, at: str) -> None:
        if not isinstance(agg, dict):
            self.error(f"aggregation {name!r} must be an object, not {_jtype(agg)}", at)
            return
        types = [k for k in agg if k not in ("aggs", "aggregations", "meta")]
        if len(types) != 1:
            if not types:
                self.error(f"aggregation {name!r} names no aggregation type", at)
            else:
                self.error(f"aggregation {name!r} holds {len(types)} types ({', '.join(map(repr, types))}); "
                           f"put sub-aggregations under 'aggs'", at)
            return
        atype = types[0]
        where = f"{at}.{atype}"
        if atype not in self.agg_types:
            self.error(f"unknown aggregation type {atype!r}{_suggest(atype, self.agg_types)}", where)
        else:
            self.agg_body(atype, agg[atype], where)
        for key in ("aggs", "aggregations"):
            if key in agg:
                self.aggs(agg[key], f"{at}.{key}")

    def agg_body(self, atype: str, body: Any, at: str) -> None:
        if atype == "filter":
            self.query(body, at)
            return
        if not isinstance(body, dict):
            self.error(f"{atype} aggregation body must be an object, not {_jtype(body)}", at)
            return
        if atype == "filters":
            filters = body.get("filters")
            if isinstance(filters, dict):
                for key, q in filters.items():
                    self.query(q, f"{at}.filters.{key}")
            elif isinstance(filters, list):
                for i, q in enumerate(filters):
                    self.query(q, f"{at}.filters[{i}]")
            else:
                self.error("filters aggregation needs 'filters' (an object or list of queries)", at)
            return
        if atype in ("nested", "reverse_nested"):
            if "path" in body:
                self.nested_path(body["path"], f"{atype} aggregation", f"{at}.path")
            elif atype == "nested":
                self.error("nested aggregation needs a 'path'", at)
            return
        if atype == "top_hits":
            if "size" in body and not _is_count(body["size"]):
                self.error(f"size must be a non-negative integer, got {_short(body['size'])}", f"{at}.size")
            if "sort" in body:
                self.sort(body["sort"], f"{at}.sort")
            if "_source" in body:
                self.source(body["_source"], f"{at}._source")
            return
        if atype == "composite":
            sources = body.get("sources")
            if not isinstance(sources, list):
                self.error("composite aggregation needs a list of 'sources'", at)
                return
            for i, src in enumerate(sources):
                if not isinstance(src, dict) or len(src) != 1:
                    self.error("each composite source is an object with one named source", f"{at}.sources[{i}]")
                    continue
                (sname, sdef), = src.items()
                if not isinstance(sdef, dict) or len(sdef) != 1:
                    self.error("a composite source holds one type (terms, histogram, date_histogram, "
                               "geotile_grid)", f"{at}.sources[{i}].{sname}")
                    continue
                (stype, sbody), = sdef.items()
                if stype not in ("terms", "histogram", "date_histogram", "geotile_grid"):
                    self.error(f"unknown composite source type {stype!r}", f"{at}.sources[{i}].{sname}")
                    continue
                self.agg_body(stype, sbody, f"{at}.sources[{i}].{sname}.{stype}")
            return
        if atype == "multi_terms":
            terms = body.get("terms")
            if not isinstance(terms, list) or not terms:
                self.error("multi_terms aggregation needs a list of 'terms'", at)
                return
            for i, t in enumerate(terms):
                self.agg_body("terms", t, f"{at}.terms[{i}]")
            return
        if atype == "weighted_avg":
            for part in ("value", "weight"):
                sub = body.get(part)
                if not isinstance(sub, dict):
                    self.error(f"weighted_avg needs a '{part}' object", at)
                elif "field" in sub:
                    self.agg_field("avg", sub["field"], f"{at}.{part}.field")
            return
        if "field" in body:
            self.agg_field(atype, body["field"], f"{at}.field")
        if atype in ("terms", "histogram", "date_histogram") and "size" in body and not _is_count(body["size"]):
            self.error(f"size must be a non-negative integer, got {_short(body['size'])}", f"{at}.size")

    def agg_field(self, atype: str, name: Any, at: str) -> None:
        ftype = self.ftype(name, at)
        if ftype is None:
            return
        assert isinstance(name, str)
        allowed = AGG_FIELD_TYPES.get(atype)
        if allowed is None:
            self.no_text(name, ftype, f"{atype} aggregation", at)
        elif ftype not in allowed:
            if allowed is NUM_OR_DATE:
                need = "a numeric or date field"
            elif allowed is NUM_ONLY:
                need = "a numeric field"
            elif allowed <= DATES | {"date_range"}:
                need = "a date field"
            elif allowed == frozenset({"ip"}):
                need = "an ip field"
            elif allowed is GEO:
                need = "a geo_point field"
            elif "text" in allowed:
                need = "a text field"
            else:
                need = "a numeric or date field"
            self.error(f"{atype} aggregation needs {need}; {name!r} is {ftype}", at)

    # -------------------------------------------------------------- sort, _source, others
    def sort(self, sort: Any, at: str) -> None:
        items = sort if isinstance(sort, list) else [sort]
        for i, item in enumerate(items):
            where = f"{at}[{i}]" if isinstance(sort, list) else at
            if isinstance(item, str):
                self.sort_field(item, where)
            elif isinstance(item, dict) and len(item) == 1:
                (name, spec), = item.items()
                if name in ("_geo_distance", "_script"):
                    continue
                if isinstance(spec, str):
                    order = spec
                elif isinstance(spec, dict):
                    order = spec.get("order", "asc")
                else:
                    self.error(f"sort on {name!r} must be 'asc', 'desc' or an object", where)
                    continue
                if order not in ("asc", "desc"):
                    self.error(f"sort order must be 'asc' or 'desc', not {_short(order)}", where)
                self.sort_field(name, where)
            else:
                self.error("a sort entry is a field name or an object with one field", where)

    def sort_field(self, name: str, at: str) -> None:
        if name in ("_score", "_doc", "_shard_doc"):
            return
        ftype = self.ftype(name, at)
        if ftype is not None:
            self.no_text(name, ftype, "sort", at)

    def source(self, src: Any, at: str) -> None:
        if isinstance(src, bool):
            return
        if isinstance(src, str):
            self.pattern(src, at)
        elif isinstance(src, list):
            for item in src:
                self.pattern(item, at)
        elif isinstance(src, dict):
            for key, value in src.items():
                if key not in ("includes", "excludes", "include", "exclude"):
                    self.error(f"unknown _source option {key!r} (includes, excludes)", at)
                    continue
                for item in value if isinstance(value, list) else [value]:
                    self.pattern(item, f"{at}.{key}")
        else:
            self.error(f"_source must be true/false, a field list or includes/excludes, not {_jtype(src)}", at)

    def body(self, body: dict[str, Any]) -> None:
        for key in body:
            if key not in SEARCH_BODY_KEYS:
                self.errors.append(f"unknown top-level key {key!r}{_suggest(key, SEARCH_BODY_KEYS)}")
        if "aggs" in body and "aggregations" in body:
            self.errors.append("both 'aggs' and 'aggregations' given; use one")
        runtime = body.get("runtime_mappings")
        if isinstance(runtime, dict):
            for name, spec in runtime.items():
                self.runtime[name] = spec.get("type", "keyword") if isinstance(spec, dict) else "keyword"
        for key in ("size", "from", "terminate_after"):
            if key in body and not _is_count(body[key]):
                self.errors.append(f"{key} must be a non-negative integer, got {_short(body[key])}")
        tth = body.get("track_total_hits")
        if "track_total_hits" in body and not (isinstance(tth, bool) or _is_count(tth)):
            self.errors.append(f"track_total_hits must be true, false or a count, got {_short(tth)}")
        if "query" in body:
            self.query(body["query"], "query")
        if "post_filter" in body:
            self.query(body["post_filter"], "post_filter")
        for key in ("aggs", "aggregations"):
            if key in body:
                self.aggs(body[key], key)
        if "sort" in body:
            self.sort(body["sort"], "sort")
        if "_source" in body:
            self.source(body["_source"], "_source")
        collapse = body.get("collapse")
        if isinstance(collapse, dict) and "field" in collapse:
            ftype = self.ftype(collapse["field"], "collapse.field")
            if ftype is not None:
                self.no_text(collapse["field"], ftype, "collapse", "collapse.field")
        for key in ("fields", "docvalue_fields"):
            entries = body.get(key)
            if isinstance(entries, list):
                for item in entries:
                    name = item.get("field") if isinstance(item, dict) else item
                    self.pattern(name, key)
        highlight = body.get("highlight")
        if isinstance(highlight, dict):
            hfields = highlight.get("fields")
            if isinstance(hfields, dict):
                for name in hfields:
                    self.pattern(name, "highlight.fields")
            elif isinstance(hfields, list):
                for item in hfields:
                    for name in item if isinstance(item, dict) else []:
                        self.pattern(name, "highlight.fields")
            else:
                self.errors.append("highlight needs 'fields'")


def _aggs_key(aggs: Any) -> Any:
    """Sub-aggregations under ``aggs`` (elasticsearch.dsl does not read ``aggregations`` there)."""
    if not isinstance(aggs, dict):
        return aggs
    out: dict[str, Any] = {}
    for name, agg in aggs.items():
        if isinstance(agg, dict) and ("aggs" in agg or "aggregations" in agg):
            agg = {("aggs" if k == "aggregations" else k): (_aggs_key(v) if k in ("aggs", "aggregations") else v)
                   for k, v in agg.items()}
        out[name] = agg
    return out


def _dsl_check(body: dict[str, Any]) -> str | None:
    """What ``elasticsearch.dsl`` finds wrong with the body, if anything."""
    from elasticsearch.dsl import Search

    body = dict(body)
    for key in ("aggs", "aggregations"):
        if key in body:
            body[key] = _aggs_key(body[key])
    try:
        Search.from_dict(body)
    except RecursionError:
        return "body nested too deeply"
    except Exception as exc:
        text = " ".join(str(exc).split())
        return f"elasticsearch.dsl rejects the body: {text[:160]}"
    return None


# ---------------------------------------------------------------------------- equivalence
def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def canonical_query(q: Any) -> Any:
    """A query with shorthand expanded, ``bool`` clauses as sorted lists, ``terms`` values sorted."""
    if not isinstance(q, dict) or len(q) != 1:
        return q
    (qtype, body), = q.items()
    if not isinstance(body, dict):
        return q
    if qtype in FIELD_QUERIES:
        main = FIELD_QUERIES[qtype][0]
        out: dict[str, Any] = {}
        for name, value in body.items():
            if name in META_KEYS:
                out[name] = value
            elif isinstance(value, dict):
                value = dict(value)
                if qtype == "wildcard" and "wildcard" in value and "value" not in value:
                    value["value"] = value.pop("wildcard")
                out[name] = value
            else:
                out[name] = {main: value}
        return {qtype: out}
    if qtype == "terms":
        return {qtype: {k: sorted(v, key=_key) if isinstance(v, list) and k not in META_KEYS else v
                        for k, v in body.items()}}
    if qtype == "bool":
        out = {}
        for key, value in body.items():
            if key in BOOL_CLAUSES:
                items = value if isinstance(value, list) else [value]
                if items:
                    out[key] = sorted((canonical_query(i) for i in items), key=_key)
            else:
                out[key] = value
        return {qtype: out}
    subs = _vocab()["subqueries"].get(qtype)
    if subs:
        out = dict(body)
        for param, spec in subs.items():
            if param not in out:
                continue
            if spec.get("multi") and isinstance(out[param], list):
                items = [canonical_query(i) for i in out[param]]
                out[param] = sorted(items, key=_key) if qtype == "dis_max" else items
            else:
                out[param] = canonical_query(out[param])
        return {qtype: out}
    return q


def _canonical_aggs(aggs: Any) -> Any:
    if not isinstance(aggs, dict):
        return aggs
    out: dict[str, Any] = {}
    for name, agg in aggs.items():
        if not isinstance(agg, dict):
            out[name] = agg
            continue
        new: dict[str, Any] = {}
        for key, value in agg.items():
            if key in ("aggs", "aggregations"):
                new["aggs"] = _canonical_aggs(value)
            elif key == "filter":
                new[key] = canonical_query(value)
            elif key == "filters" and isinstance(value, dict) and isinstance(value.get("filters"), dict):
                new[key] = {**value, "filters": {k: canonical_query(v) for k, v in value["filters"].items()}}
            else:
                new[key] = value
        out[name] = new
    return out


def _canonical_sort(sort: Any) -> Any:
    items = sort if isinstance(sort, list) else [sort]
    out: list[Any] = []
    for item in items:
        if isinstance(item, str):
            item = {item: {}}
        if isinstance(item, dict) and len(item) == 1:
            (name, spec), = item.items()
            if isinstance(spec, str):
                spec = {"order": spec}
            if isinstance(spec, dict) and "order" not in spec and not name.startswith("_geo"):
                spec = {**spec, "order": "desc" if name == "_score" else "asc"}
            item = {name: spec}
        out.append(item)
    return out


def canonical_body(body: dict[str, Any]) -> dict[str, Any]:
    """The canonical form :meth:`ElasticDslValidator.equivalent` compares."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key in ("aggs", "aggregations"):
            out["aggs"] = _canonical_aggs(value)
        elif key in ("query", "post_filter"):
            out[key] = canonical_query(value)
        elif key == "sort":
            out[key] = _canonical_sort(value)
        elif key == "_source" and isinstance(value, str):
            out[key] = [value]
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------------------- the validator
class ElasticDslValidator(Validator):
    """Validates Elasticsearch search bodies against the expert's index mappings."""

    kind = "elastic_dsl"
    needs = ("Index",)

    def __init__(self, expert_root: Path, output: OutputSpec) -> None:
        super().__init__(expert_root, output)
        self._mappings: dict[str, IndexMapping | None] = {}

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
                from expertkit.errors import ExpertkitError

                try:
                    result = flatten_mapping(index, json.loads(path.read_text(encoding="utf-8")))
                except (OSError, ValueError) as exc:
                    raise ExpertkitError(f"cannot read mapping: {exc}", path=path) from None
        if len(self._mappings) < 1024:
            self._mappings[index] = result
        return result

    def validate(self, output: str, fields: Mapping[str, str]) -> ValidationResult:
        body, error = parse_body(output)
        if body is None:
            return ValidationResult(False, [error or "not a JSON object"])
        errors: list[str] = []
        mapping: IndexMapping | None = None
        index = fields.get("Index")
        if index and self.resource("mappings") is not None:
            mapping = self.mapping(index)
            if mapping is None:
                known = ", ".join(self.index_names()) or "none"
                errors.append(f"unknown index {index!r} (known: {known})")
        checker = _Checker(mapping)
        try:
            checker.body(body)
        except RecursionError:
            return ValidationResult(False, ["body nested too deeply"])
        except Exception as exc:  # never raise on an output; report instead
            return ValidationResult(False, [f"could not check the body ({type(exc).__name__}: {exc})"])
        errors.extend(checker.errors)
        if not errors:
            dsl_error = _dsl_check(body)
            if dsl_error:
                errors.append(dsl_error)
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
