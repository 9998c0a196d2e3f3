"""The walker of the ``elastic_dsl`` validator: one search body checked as Elasticsearch would.

Parameters, their types and enums come from :mod:`expertkit.kinds.elastic.spec` (the typed classes
of ``elasticsearch.dsl``); values are checked against the mapping type by
:mod:`expertkit.kinds.elastic.values`; the rules below are the server's (each message says why).
Errors are what Elasticsearch refuses; warnings what it runs but a careful user avoids.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

from expertkit.kinds.elastic import spec as es_spec
from expertkit.kinds.elastic import values as es_values
from expertkit.kinds.elastic.body import (
    DATES,
    GEO,
    META_FIELDS,
    NUMERIC,
    OBJECTS,
    RANGE_OK,
    STRINGS,
    TEXTLIKE,
    IndexMapping,
    _jtype,
    _short,
    _suggest,
)
from expertkit.kinds.elastic.spec import Alt, Params, Type

#: index.max_result_window and index.max_inner_result_window, the engine's defaults
MAX_RESULT_WINDOW = 10_000
MAX_INNER_RESULT_WINDOW = 100
DEFAULT_SIZE = 10
#: longest query_string query parsed (luqum takes ~0.1 ms a character); longer ones get a warning
MAX_QUERY_STRING = 4_096

#: queries whose value is a piece of text analysed for the field (value checked unless ``lenient``)
MATCH_QUERIES = frozenset({"match", "match_phrase", "match_phrase_prefix", "match_bool_prefix"})
#: term-level queries that only keyword/text-like fields support
STRING_QUERIES = frozenset({"prefix", "wildcard", "regexp", "fuzzy"})
GEO_POINT_QUERIES = frozenset({"geo_distance", "geo_bounding_box", "geo_polygon"})
#: pipeline aggregations that live inside a histogram / a multi-bucket parent
HISTOGRAM_PARENT = frozenset({"derivative", "cumulative_sum", "cumulative_cardinality", "moving_fn",
                              "moving_avg", "moving_percentiles", "serial_diff", "normalize"})
BUCKET_PARENT = frozenset({"bucket_script", "bucket_selector", "bucket_sort"})
HISTOGRAMS = frozenset({"histogram", "date_histogram", "auto_date_histogram"})
REMOVED_ORDER_KEYS = {"_term": "removed in 7.0; use _key", "_time": "removed in 7.0; use _key"}
#: aggregation -> field types allowed for its ``field`` (None: any leaf but text)
NUM_OR_DATE = NUMERIC | DATES | {"boolean", "histogram"}
NUM_ONLY = NUMERIC | {"boolean", "histogram"}
AGG_FIELD_TYPES: dict[str, frozenset[str]] = {
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
_NEEDS = {id(NUM_OR_DATE): "a numeric or date field", id(NUM_ONLY): "a numeric field"}


def _describe(typ: Type) -> str:
    words: list[str] = []
    for alt in typ:
        word = {"str": "a string", "field": "a field name", "int": "an integer", "float": "a number",
                "bool": "true or false", "null": "null", "query": "a query", "sort": "a sort",
                "seq": "a list", "map": "an object", "obj": "an object", "object": "an object",
                "range": "an object of bounds"}.get(alt.kind)
        if alt.kind == "enum":
            word = "one of " + ", ".join(repr(v) for v in alt.values)
        if word and word not in words:
            words.append(word)
    return " or ".join(words) or "a value"


def _scalar_ok(value: Any, alt: Alt) -> bool:
    kind = alt.kind
    if kind == "str":  # the server reads a number or boolean given for a string as its text
        return isinstance(value, str | int | float)
    if kind in ("field", "sort"):
        return isinstance(value, str)
    if kind == "int":
        if isinstance(value, bool):
            return False
        if isinstance(value, int):
            return True
        return es_values.is_number(value) and float(value) == int(float(value))
    if kind == "float":
        return es_values.is_number(value)
    if kind == "bool":
        return isinstance(value, bool) or value in ("true", "false")
    if kind == "null":
        return value is None
    if kind == "enum":
        return str(value).lower() in {v.lower() for v in alt.values}
    return kind == "any"


class Checker:
    """Walks one body, collecting errors and warnings; ``mapping`` None skips field checks."""

    def __init__(self, mapping: IndexMapping | None) -> None:
        self.mapping = mapping
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.runtime: dict[str, str] = {}

    def error(self, msg: str, at: str) -> None:
        text = f"{msg} (at {at})" if at else msg
        if text not in self.errors:
            self.errors.append(text)

    def warn(self, msg: str, at: str) -> None:
        text = f"{msg} (at {at})" if at else msg
        if text not in self.warnings:
            self.warnings.append(text)

    # -------------------------------------------------------------- fields
    def ftype(self, name: Any, at: str, *, leaf: bool = True, missing_ok: bool = False) -> str | None:
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
            msg = f"field {name!r} is not in index {self.mapping.name}{_suggest(name, self.mapping.types)}"
            if missing_ok:
                self.warn(msg + "; Elasticsearch returns nothing for it", at)
            else:
                self.error(msg, at)
            return None
        if leaf and ftype in OBJECTS:
            self.error(f"field {name!r} is an {ftype} field, not a leaf; name one of its fields", at)
            return None
        return ftype

    def pattern(self, name: Any, at: str, *, missing_ok: bool = False) -> None:
        """A field name that may hold wildcards (``_source``, ``multi_match`` fields, ``fields``)."""
        if not isinstance(name, str) or not name:
            self.error(f"field name must be a non-empty string, got {_short(name)}", at)
            return
        if "*" not in name and "?" not in name:
            self.ftype(name, at, leaf=False, missing_ok=missing_ok)
            return
        if self.mapping is None or name == "*":
            return
        if not any(fnmatchcase(p, name) for p in self.mapping.types) and not any(
            fnmatchcase(p, name) for p in self.runtime
        ):
            msg = f"pattern {name!r} matches no field of index {self.mapping.name}"
            if missing_ok:
                self.warn(msg, at)
            else:
                self.error(msg, at)

    def no_text(self, name: str, ftype: str | None, what: str, at: str) -> bool:
        """Error for doc-values uses (aggregations, sort, collapse) of a text field; True if it is one."""
        if ftype in TEXTLIKE:
            kw = self.mapping.keyword_of.get(name) if self.mapping else None
            hint = f"; use {kw!r}" if kw else ""
            self.error(f"{what} on text field {name!r} needs fielddata, which is off{hint}", at)
            return True
        return False

    def keyword_hint(self, name: str) -> str:
        kw = self.mapping.keyword_of.get(name) if self.mapping else None
        return f"; use {kw!r}" if kw else ""

    def date_format(self, name: str) -> str | None:
        return self.mapping.formats.get(name) if self.mapping else None

    # -------------------------------------------------------------- typed values (the specification)
    def typed(self, value: Any, typ: Type, what: str, at: str) -> None:
        """Check ``value`` against a parameter type of the specification."""
        if not typ or any(a.kind == "any" for a in typ):
            return
        kinds = {a.kind for a in typ}
        if isinstance(value, dict):
            if "query" in kinds:
                self.query(value, at)
                return
            if "sort" in kinds:
                self.sort(value, at)
                return
            objs = [a for a in typ if a.kind == "obj"]
            if objs:
                best = max(objs, key=lambda a: self._fit(value, a.name))
                spec = es_spec.type_params(best.name)
                if spec is not None:
                    self.params(value, spec, what, at, owner=best.name)
                return
            maps = [a for a in typ if a.kind == "map"]
            if maps:
                inner = tuple(i for m in maps for i in m.inner)
                for key, item in value.items():
                    self.typed(item, inner, what, f"{at}.{key}")
                return
            if kinds & {"object", "range"}:
                return
        elif isinstance(value, list):
            seqs = [a for a in typ if a.kind == "seq"]
            if seqs:
                inner = tuple(i for s in seqs for i in s.inner)
                for i, item in enumerate(value):
                    self.typed(item, inner, what, f"{at}[{i}]")
                return
        elif "query" in kinds:
            self.query(value, at)
            return
        else:
            for alt in typ:
                if _scalar_ok(value, alt):
                    if alt.kind == "field" or (alt.kind == "str" and "field" in kinds):
                        self.pattern(value.split("^", 1)[0] if isinstance(value, str) else value, at)
                    return
            for alt in typ:  # a single value where the server also takes a list of them
                if alt.kind == "seq" and any(_scalar_ok(value, i) for i in alt.inner):
                    return
            enums = [a for a in typ if a.kind == "enum"]
            if enums and isinstance(value, str):
                self.error(f"{what} must be {_describe(typ)}, not {_short(value)}", at)
                return
        got = _jtype(value) if isinstance(value, dict | list) else _short(value)
        self.error(f"{what} must be {_describe(typ)}, not {got}", at)

    @staticmethod
    def _fit(value: dict[str, Any], name: str) -> int:
        spec = es_spec.type_params(name)
        if spec is None:
            return -1
        return sum(1 for k in value if k in spec.params) - sum(1 for k in value if k not in spec.params)

    def params(self, body: dict[str, Any], spec: Params, what: str, at: str, *, owner: str,
               skip: Iterable[str] = (), required: bool = True) -> None:
        """Every key of ``body`` a parameter of ``spec`` (typed), required ones present."""
        skipped = set(skip)
        for key, value in body.items():
            if key in skipped:
                continue
            where = f"{at}.{key}"
            removed = es_spec.REMOVED.get((owner, key))
            if removed:
                self.error(f"{what} parameter {key!r} was {removed}", where)
                continue
            deprecated = es_spec.DEPRECATED.get((owner, key))
            if deprecated:
                self.warn(f"{what} parameter {key!r} is {deprecated}", where)
                continue
            typ = spec.params.get(key)
            if typ is None:
                self.error(f"unknown {what} parameter {key!r}{_suggest(key, spec.params)}", at)
                continue
            self.typed(value, typ, f"{what} {key!r}", where)
        for req in spec.required if required else ():
            if req not in body:
                self.error(f"{what} needs a {req!r}", at)

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
        spec = es_spec.query_params(qtype)
        if spec is None:
            self.error(f"unknown query type {qtype!r}{_suggest(qtype, es_spec.query_types())}", at)
            return
        removed = es_spec.REMOVED.get((qtype, ""))
        if removed:
            self.error(f"{qtype} query: {removed}", at)
            return
        if not isinstance(body, dict):
            self.error(f"{qtype} query body must be an object, not {_jtype(body)}", at)
            return
        if spec.field_keyed:
            self.field_keyed(qtype, spec, body, at)
            return
        handler = getattr(self, f"q_{qtype}", None)
        skip = getattr(handler, "handles", ())
        if qtype == "function_score":  # one score function may stand directly in the query
            skip = (*skip, *es_spec.function_types())
        self.params(body, spec, f"{qtype} query", at, owner=qtype, skip=skip)
        if handler is not None:
            handler(body, at)

    def field_keyed(self, qtype: str, spec: Params, body: dict[str, Any], at: str) -> None:
        names = [k for k in body if k not in spec.params]
        if not names:
            self.error(f"{qtype} query names no field", at)
            return
        if len(names) > 1:
            self.error(f"{qtype} query takes one field, got {len(names)} ({', '.join(map(repr, names))}); "
                       f"combine several with bool", at)
            return
        self.params({k: v for k, v in body.items() if k in spec.params}, spec, f"{qtype} query", at,
                    owner=qtype)
        if "distance" in body and (problem := es_values.distance_problem(body["distance"])):
            self.error(f"{qtype} query: {problem}", f"{at}.distance")
        name = names[0]
        value = body[name]
        where = f"{at}.{name}"
        handler = getattr(self, f"fq_{qtype}", None)
        if handler is not None:
            handler(name, value, where)
            return
        options: dict[str, Any] = {}
        objs = [a for a in spec.value if a.kind == "obj"]
        if isinstance(value, dict) and objs:
            inner = es_spec.type_params(objs[0].name)
            if inner is not None:
                self.params(value, inner, qtype, where, owner=qtype, required=False)
                mains = [k for k in (spec.main, "wildcard", "term") if k and k in value and k in inner.params]
                if spec.main and not mains:
                    self.error(f"{qtype} on {name!r} has no {spec.main!r}", where)
                    return
                options = value
                scalar = value[mains[0]] if mains else None
            else:  # pragma: no cover - the client changed
                scalar = None
        elif isinstance(value, dict):
            self.typed(value, spec.value, qtype, where)
            scalar = None
        else:
            scalar = value
        if isinstance(scalar, list | dict):
            hint = "; use terms for a list of values" if qtype == "term" and isinstance(scalar, list) else ""
            self.error(f"{qtype} on {name!r} takes one value, not {_jtype(scalar)}{hint}", where)
            return
        if scalar is None and spec.main:
            self.error(f"{qtype} on {name!r} has a null value", where)
            return
        ftype = self.ftype(name, where)
        if ftype is None:
            return
        self.field_value(qtype, name, ftype, scalar, options, where)

    def field_value(self, qtype: str, name: str, ftype: str, value: Any, options: dict[str, Any],
                    at: str) -> None:
        """A field query's value against the field's mapping type."""
        if qtype == "term":
            if ftype in GEO:
                self.error(f"term query on geo field {name!r}: geometry fields do not support exact searching; "
                           f"use a geo query", at)
                return
            self.term_on_text(qtype, name, ftype, at)
            problem = es_values.value_problem(value, ftype, fmt=self.date_format(name), cidr=True)
            if problem:
                self.error(f"term on {ftype} field {name!r}: {problem}", at)
        elif qtype in MATCH_QUERIES:
            if ftype in GEO:
                self.error(f"{qtype} query on geo field {name!r} is not supported; use a geo query", at)
                return
            if options.get("lenient") in (True, "true"):
                return
            problem = es_values.value_problem(value, ftype, fmt=self.date_format(name))
            if problem:
                self.error(f"{qtype} on {ftype} field {name!r}: {problem}", at)
        elif qtype in STRING_QUERIES:
            if ftype not in STRINGS:
                self.error(f"{qtype} query needs a keyword or text field; {name!r} is {ftype}", at)
            elif qtype in ("wildcard", "regexp") and ftype in TEXTLIKE:
                self.warn(f"{qtype} on text field {name!r} matches single analysed tokens, not the whole value"
                          f"{self.keyword_hint(name)}", at)

    def term_on_text(self, qtype: str, name: str, ftype: str, at: str) -> None:
        if ftype in TEXTLIKE:
            kw = self.mapping.keyword_of.get(name) if self.mapping else None
            hint = f"; use {kw!r} for exact values" if kw else ""
            self.warn(f"{qtype} on text field {name!r} matches analysed tokens, not the whole value{hint}", at)

    def fq_terms(self, name: str, value: Any, at: str) -> None:
        if isinstance(value, dict):
            lookup = es_spec.type_params("TermsLookup")
            if lookup is not None:
                self.params(value, lookup, "terms lookup", at, owner="TermsLookup")
            if not {"index", "id", "path"} <= set(value):
                self.error(f"terms on {name!r} needs a list of values (or a lookup with index, id, path)", at)
            return
        if not isinstance(value, list):
            self.error(f"terms on {name!r} needs a list of values, not {_jtype(value)}", at)
            return
        if any(isinstance(v, list | dict) or v is None for v in value):
            self.error(f"terms on {name!r} takes a list of plain values", at)
            return
        ftype = self.ftype(name, at)
        if ftype is None:
            return
        if ftype in GEO:
            self.error(f"terms query on geo field {name!r}: geometry fields do not support exact searching; "
                       f"use a geo query", at)
            return
        self.term_on_text("terms", name, ftype, at)
        for item in value:
            problem = es_values.value_problem(item, ftype, fmt=self.date_format(name), cidr=True)
            if problem:
                self.error(f"terms on {ftype} field {name!r}: {problem}", at)
                break

    def fq_range(self, name: str, value: Any, at: str) -> None:
        if not isinstance(value, dict):
            self.error(f"range on {name!r} needs an object of bounds (gt, gte, lt, lte), not {_jtype(value)}", at)
            return
        from elasticsearch.dsl import wrappers

        bounds = set(wrappers.Range.OPS)
        allowed = bounds | set(es_spec.RANGE_OPTIONS)
        for key in value:
            if (deprecated := es_spec.DEPRECATED.get(("range", key))) is not None:
                self.warn(f"range parameter {key!r} is {deprecated}", at)
            elif key not in allowed:
                self.error(f"unknown range operator {key!r} (allowed: gt, gte, lt, lte, format, time_zone, "
                           f"boost, relation)", at)
        relation = value.get("relation")
        if relation is not None and str(relation).upper() not in {"INTERSECTS", "CONTAINS", "WITHIN"}:
            self.error(f"range relation must be INTERSECTS, CONTAINS or WITHIN, not {_short(relation)}", at)
        if "time_zone" in value and (problem := es_values.time_zone_problem(value["time_zone"])):
            self.error(f"range time_zone: {problem}", at)
        if "format" in value and not isinstance(value["format"], str):
            self.error("range format must be a string", at)
        ftype = self.ftype(name, at)
        if ftype is None:
            return
        if ftype in STRINGS:
            self.warn(f"range on {ftype} field {name!r} compares strings, not numbers or dates (and is refused "
                      f"where search.allow_expensive_queries is false)", at)
            return
        if ftype not in RANGE_OK | {"boolean"}:
            self.error(f"range query on {ftype} field {name!r}; use a numeric, date or ip field", at)
            return
        fmt = value.get("format") if isinstance(value.get("format"), str) else self.date_format(name)
        for key in sorted(bounds | {"from", "to"}):
            if key in value and value[key] is not None:
                if isinstance(value[key], dict | list):
                    self.error(f"range bound {key!r} on {name!r} must be a value, not {_jtype(value[key])}", at)
                    continue
                problem = es_values.value_problem(value[key], ftype, fmt=fmt)
                if problem:
                    self.error(f"range on {ftype} field {name!r}: {problem}", at)

    def geo_point_field(self, qtype: str, name: str, at: str) -> None:
        ftype = self.ftype(name, at)
        if ftype is not None and ftype not in GEO:
            self.error(f"{qtype} query needs a geo_point or geo_shape field; {name!r} is {ftype}", at)

    def fq_geo_distance(self, name: str, value: Any, at: str) -> None:
        problem = es_values.geo_point_problem(value)
        if problem:
            self.error(f"geo_distance origin: {problem}", at)
        self.geo_point_field("geo_distance", name, at)

    def fq_geo_bounding_box(self, name: str, value: Any, at: str) -> None:
        spec = es_spec.query_params("geo_bounding_box")
        if spec is not None:
            self.typed(value, spec.value, "geo_bounding_box", at)
        corners = ("top_left", "bottom_right", "top_right", "bottom_left")
        for corner in corners if isinstance(value, dict) else ():
            if corner in value and (problem := es_values.geo_point_problem(value[corner])):
                self.error(f"geo_bounding_box {corner}: {problem}", at)
        self.geo_point_field("geo_bounding_box", name, at)

    def fq_geo_polygon(self, name: str, value: Any, at: str) -> None:
        points = value.get("points") if isinstance(value, dict) else None
        if not isinstance(points, list) or len(points) < 3:
            self.error("geo_polygon needs 'points' (at least three)", at)
        else:
            for point in points:
                if problem := es_values.geo_point_problem(point):
                    self.error(f"geo_polygon point: {problem}", at)
                    break
        self.geo_point_field("geo_polygon", name, at)

    def fq_geo_shape(self, name: str, value: Any, at: str) -> None:
        self.geo_point_field("geo_shape", name, at)

    # queries with their own rules beside their parameters
    def q_exists(self, body: dict[str, Any], at: str) -> None:
        if "field" in body:
            self.ftype(body["field"], f"{at}.field", leaf=False)

    q_exists.handles = ("field",)  # type: ignore[attr-defined]

    def q_nested(self, body: dict[str, Any], at: str) -> None:
        if "path" in body:
            self.nested_path(body["path"], "nested query", f"{at}.path")

    q_nested.handles = ("path",)  # type: ignore[attr-defined]

    def nested_path(self, path: Any, what: str, at: str) -> None:
        ftype = self.ftype(path, at, leaf=False)
        if ftype is not None and ftype != "nested":
            self.error(f"{what} path {path!r} is not a nested field (it is {ftype})", at)

    def field_list(self, fields: Any, at: str) -> None:
        if isinstance(fields, str):
            fields = [fields]
        if not isinstance(fields, list):
            self.error("'fields' must be a list of field names", at)
            return
        for f in fields:
            self.pattern(f.split("^", 1)[0] if isinstance(f, str) else f, f"{at}.fields")

    def q_multi_match(self, body: dict[str, Any], at: str) -> None:
        self.field_list(body.get("fields", []), at)

    q_multi_match.handles = ("fields",)  # type: ignore[attr-defined]
    q_combined_fields = q_multi_match

    def q_simple_query_string(self, body: dict[str, Any], at: str) -> None:
        self.field_list(body.get("fields", []), at)

    q_simple_query_string.handles = ("fields",)  # type: ignore[attr-defined]

    def q_query_string(self, body: dict[str, Any], at: str) -> None:
        fields = body.get("fields", [])
        if isinstance(body.get("default_field"), str):
            fields = [*fields, body["default_field"]] if isinstance(fields, list) else fields
        self.field_list(fields, at)
        text = body.get("query")
        if isinstance(text, str) and len(text) > MAX_QUERY_STRING:
            self.warn(f"query_string of {len(text)} characters not parsed (over {MAX_QUERY_STRING})", f"{at}.query")
        elif isinstance(text, str):
            from expertkit.kinds.elastic.query_string import field_terms

            terms, problem = field_terms(text)
            if problem:
                self.error(f"query_string does not parse: {problem}", f"{at}.query")
                return
            lenient = body.get("lenient") in (True, "true")
            for fname, value in terms:
                if fname == "_exists_":
                    if isinstance(value, str):
                        self.pattern(value, f"{at}.query")
                    continue
                self.pattern(fname, f"{at}.query")
                if lenient or value is None or "*" in fname or "?" in fname:
                    continue
                ftype = self.ftype(fname, f"{at}.query") if self.mapping and fname in self.mapping.types else None
                if ftype is None:
                    continue
                problem = es_values.value_problem(value, ftype, fmt=self.date_format(fname))
                if problem:
                    self.error(f"query_string on {ftype} field {fname!r}: {problem}", f"{at}.query")

    q_query_string.handles = ("fields", "default_field")  # type: ignore[attr-defined]

    def q_function_score(self, body: dict[str, Any], at: str) -> None:
        functions = body.get("functions", [])
        if not isinstance(functions, list):
            self.error("function_score 'functions' must be a list", at)
            return
        single = {k: v for k, v in body.items() if k in es_spec.function_types()}
        if single:
            functions = [*functions, single]
        known = es_spec.function_types() | {"weight", "filter"}
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

    q_function_score.handles = ("functions",)  # type: ignore[attr-defined]

    # -------------------------------------------------------------- aggregations
    def aggs(self, aggs: Any, at: str, parent: str | None = None) -> None:
        if not isinstance(aggs, dict):
            self.error(f"aggregations must be an object of named aggregations, not {_jtype(aggs)}", at)
            return
        for name, agg in aggs.items():
            self.agg(name, agg, f"{at}.{name}", aggs, parent)

    def agg(self, name: str, agg: Any, at: str, siblings: dict[str, Any], parent: str | None) -> None:
        if any(c in name for c in "[]>") or not name:
            self.error(f"Invalid aggregation name [{name}]. Aggregation names can contain any character "
                       f"except '[', ']', and '>'", at)
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
        if "aggs" in agg and "aggregations" in agg:
            self.error(f"aggregation {name!r} has both 'aggs' and 'aggregations'", at)
        atype = types[0]
        where = f"{at}.{atype}"
        spec = es_spec.agg_params(atype)
        subs = agg.get("aggs", agg.get("aggregations"))
        children = subs if isinstance(subs, dict) else {}
        if spec is None:
            self.error(f"unknown aggregation type {atype!r}{_suggest(atype, es_spec.agg_types())}", where)
        else:
            self.agg_body(atype, spec, agg[atype], where, name, siblings, children, parent)
        for key in ("aggs", "aggregations"):
            if key in agg:
                self.aggs(agg[key], f"{at}.{key}", atype)

    def agg_body(self, atype: str, spec: Params, body: Any, at: str, name: str, siblings: dict[str, Any],
                 children: dict[str, Any], parent: str | None) -> None:
        if atype == "filter":
            self.query(body, at)
            return
        if not isinstance(body, dict):
            self.error(f"{atype} aggregation body must be an object, not {_jtype(body)}", at)
            return
        handled = {"field", "filters", "path", "sources", "terms", "value", "weight", "buckets_path", "order",
                   "size", "percents", "calendar_interval", "fixed_interval", "sort", "_source", "from"}
        self.params(body, spec, f"{atype} aggregation", at, owner=atype, skip=handled & set(body))
        for key in ("size", "from", "shard_size", "min_doc_count"):
            if key in body and not _is_count(body[key]):
                self.error(f"{atype} {key} must be a non-negative integer, got {_short(body[key])}", f"{at}.{key}")
        if "field" in body:
            self.agg_field(atype, body["field"], f"{at}.field")
        if "buckets_path" in body or atype in HISTOGRAM_PARENT | BUCKET_PARENT:
            self.pipeline(atype, body, at, name, siblings, parent)
        if "order" in body:
            self.order(atype, body["order"], at, children)
        for key in ("percents", "size", "from"):
            if key in body and key in spec.params:
                self.typed(body[key], spec.params[key], f"{atype} aggregation {key!r}", f"{at}.{key}")
        rule = getattr(self, f"a_{atype}", None)
        if rule is not None:
            rule(body, at, name)

    def agg_field(self, atype: str, fname: Any, at: str) -> None:
        ftype = self.ftype(fname, at)
        if ftype is None:
            return
        assert isinstance(fname, str)
        allowed = AGG_FIELD_TYPES.get(atype)
        if allowed is None:
            self.no_text(fname, ftype, f"{atype} aggregation", at)
        elif ftype not in allowed:
            need = _NEEDS.get(id(allowed))
            if need is None:
                if allowed <= DATES | {"date_range"}:
                    need = "a date field"
                elif allowed == frozenset({"ip"}):
                    need = "an ip field"
                elif allowed is GEO:
                    need = "a geo_point field"
                elif "text" in allowed:
                    need = "a text field"
                else:
                    need = "a numeric or date field"
            self.error(f"{atype} aggregation needs {need}; {fname!r} is {ftype}", at)

    def a_terms(self, body: dict[str, Any], at: str, name: str) -> None:
        size = body.get("size")
        if _is_count(size) and size < 1:
            self.error(f"[size] must be greater than 0. Found [{size}] in [{name}]", f"{at}.size")

    def a_multi_terms(self, body: dict[str, Any], at: str, name: str) -> None:
        self.a_terms(body, at, name)
        terms = body.get("terms")
        if not isinstance(terms, list) or len(terms) < 2:
            self.error("multi_terms aggregation needs a list of at least two 'terms'", at)
            return
        for i, t in enumerate(terms):
            if isinstance(t, dict) and "field" in t:
                self.agg_field("terms", t["field"], f"{at}.terms[{i}].field")

    def a_top_hits(self, body: dict[str, Any], at: str, name: str) -> None:
        size = body.get("size", 3)
        start = body.get("from", 0)
        if _is_count(size) and _is_count(start) and size + start > MAX_INNER_RESULT_WINDOW:
            self.error(f"Top hits result window is too large, the top hits aggregator [{name}]'s from + size must "
                       f"be less than or equal to: [{MAX_INNER_RESULT_WINDOW}] but was [{size + start}]", at)
        if "sort" in body:
            self.sort(body["sort"], f"{at}.sort")
        if "_source" in body:
            self.source(body["_source"], f"{at}._source")

    def a_percentiles(self, body: dict[str, Any], at: str, name: str) -> None:
        percents = body.get("percents")
        items = percents if isinstance(percents, list) else [percents] if percents is not None else []
        for p in items:
            if es_values.is_number(p) and not 0 <= float(p) <= 100:
                self.error(f"percent must be in [0,100], got [{p}]: in [{name}]", f"{at}.percents")

    def a_date_histogram(self, body: dict[str, Any], at: str, name: str) -> None:
        has_cal, has_fixed = "calendar_interval" in body, "fixed_interval" in body
        if has_cal and has_fixed:
            self.error("Cannot use [fixed_interval] with [calendar_interval] configuration option", at)
        elif not has_cal and not has_fixed and "interval" not in body:
            self.error("date_histogram needs calendar_interval or fixed_interval", at)
        if has_cal and (problem := es_values.calendar_interval_problem(body["calendar_interval"])):
            self.error(problem, f"{at}.calendar_interval")
        if has_fixed and (problem := es_values.fixed_interval_problem(body["fixed_interval"])):
            self.error(problem, f"{at}.fixed_interval")
        if "time_zone" in body and (problem := es_values.time_zone_problem(body["time_zone"])):
            self.error(f"date_histogram time_zone: {problem}", f"{at}.time_zone")

    def a_histogram(self, body: dict[str, Any], at: str, name: str) -> None:
        interval = body.get("interval")
        if interval is None:
            self.error("histogram aggregation needs an 'interval'", at)
        elif es_values.is_number(interval) and float(interval) <= 0:
            self.error(f"[interval] must be >0 for histogram aggregation [{name}]", f"{at}.interval")

    def a_filters(self, body: dict[str, Any], at: str, name: str) -> None:
        filters = body.get("filters")
        if isinstance(filters, dict):
            for key, q in filters.items():
                self.query(q, f"{at}.filters.{key}")
        elif isinstance(filters, list):
            for i, q in enumerate(filters):
                self.query(q, f"{at}.filters[{i}]")
        else:
            self.error("filters aggregation needs 'filters' (an object or list of queries)", at)

    def a_nested(self, body: dict[str, Any], at: str, name: str) -> None:
        if "path" in body:
            self.nested_path(body["path"], "nested aggregation", f"{at}.path")
        else:
            self.error("nested aggregation needs a 'path'", at)

    def a_reverse_nested(self, body: dict[str, Any], at: str, name: str) -> None:
        if "path" in body:
            self.nested_path(body["path"], "reverse_nested aggregation", f"{at}.path")

    def a_composite(self, body: dict[str, Any], at: str, name: str) -> None:
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
            where = f"{at}.sources[{i}].{sname}.{stype}"
            if not isinstance(sbody, dict):
                self.error(f"{stype} source must be an object", where)
                continue
            if "field" in sbody:
                self.agg_field(stype, sbody["field"], f"{where}.field")
            rule = getattr(self, f"a_{stype}", None)
            if rule is not None and stype != "terms":
                rule(sbody, where, sname)

    def a_weighted_avg(self, body: dict[str, Any], at: str, name: str) -> None:
        for part in ("value", "weight"):
            sub = body.get(part)
            if not isinstance(sub, dict):
                self.error(f"weighted_avg needs a '{part}' object", at)
            elif "field" in sub:
                self.agg_field("avg", sub["field"], f"{at}.{part}.field")

    def a_top_metrics(self, body: dict[str, Any], at: str, name: str) -> None:
        metrics = body.get("metrics")
        for i, m in enumerate(metrics if isinstance(metrics, list) else [metrics]):
            if isinstance(m, dict) and "field" in m:
                self.agg_field("top_metrics", m["field"], f"{at}.metrics[{i}].field")
        if "sort" in body:
            self.sort(body["sort"], f"{at}.sort")

    def order(self, atype: str, order: Any, at: str, children: dict[str, Any]) -> None:
        items = order if isinstance(order, list) else [order]
        for item in items:
            if not isinstance(item, dict):
                self.error(f"{atype} order must be an object like {{\"_count\": \"desc\"}}", f"{at}.order")
                continue
            for key, direction in item.items():
                if not isinstance(direction, str) or direction.lower() not in ("asc", "desc"):
                    self.error(f"order direction must be 'asc' or 'desc', not {_short(direction)}", f"{at}.order")
                if key in REMOVED_ORDER_KEYS:
                    self.error(f"order key [{key}] was {REMOVED_ORDER_KEYS[key]}", f"{at}.order")
                elif key not in ("_key", "_count"):
                    first = _path_head(key)
                    if first not in children:
                        self.error(f"Invalid aggregation order path [{key}]. The provided aggregation [{first}] "
                                   f"either does not exist, or is a pipeline aggregation and cannot be used to "
                                   f"sort the buckets", f"{at}.order")

    def pipeline(self, atype: str, body: dict[str, Any], at: str, name: str, siblings: dict[str, Any],
                 parent: str | None) -> None:
        if atype in HISTOGRAM_PARENT and parent not in HISTOGRAMS:
            self.error(f"{atype} aggregation [{name}] must have a histogram, date_histogram or "
                       f"auto_date_histogram as parent", at)
        elif atype in BUCKET_PARENT and parent is None:
            self.error(f"{atype} aggregation [{name}] must be declared inside of another aggregation", at)
        paths = body.get("buckets_path")
        if paths is None:
            if atype not in ("bucket_sort",) and "buckets_path" in (es_spec.agg_params(atype) or Params({})).params:
                self.error(f"{atype} aggregation [{name}] needs a 'buckets_path'", at)
            return
        if isinstance(paths, str):
            items = [paths]
        elif isinstance(paths, list):
            items = paths
        elif isinstance(paths, dict):
            items = list(paths.values())
        else:
            self.error(f"buckets_path must be a string, list or object, not {_jtype(paths)}", f"{at}.buckets_path")
            return
        for path in items:
            if not isinstance(path, str) or not path:
                self.error(f"a buckets_path must be a non-empty string, got {_short(path)}", f"{at}.buckets_path")
                continue
            problem = _resolve_path(path, siblings, name, allow_special=atype in HISTOGRAM_PARENT | BUCKET_PARENT)
            if problem:
                self.error(f"No aggregation found for path [{path}]: {problem}", f"{at}.buckets_path")

    # -------------------------------------------------------------- sort, _source, body
    def sort(self, sort: Any, at: str) -> None:
        items = sort if isinstance(sort, list) else [sort]
        for i, item in enumerate(items):
            where = f"{at}[{i}]" if isinstance(sort, list) else at
            if isinstance(item, str):
                self.sort_field(item, where, {})
            elif isinstance(item, dict) and len(item) == 1:
                (fname, spec), = item.items()
                if fname in ("_geo_distance", "_script"):
                    continue
                if isinstance(spec, str):
                    order, options = spec, {}
                elif isinstance(spec, dict):
                    order, options = spec.get("order", "asc"), spec
                    field_sort = es_spec.type_params("FieldSort")
                    if field_sort is not None:
                        self.params(spec, field_sort, "sort", where, owner="FieldSort")
                else:
                    self.error(f"sort on {fname!r} must be 'asc', 'desc' or an object", where)
                    continue
                if not isinstance(order, str) or order.lower() not in ("asc", "desc"):
                    self.error(f"sort order must be 'asc' or 'desc', not {_short(order)}", where)
                self.sort_field(fname, where, options)
            else:
                self.error("a sort entry is a field name or an object with one field", where)

    def sort_field(self, name: str, at: str, options: dict[str, Any]) -> None:
        if name in ("_score", "_doc", "_shard_doc"):
            return
        if "unmapped_type" in options and self.mapping is not None and name not in self.mapping.types:
            return
        ftype = self.ftype(name, at)
        if ftype is not None:
            self.no_text(name, ftype, "sort", at)
            if ftype in GEO:
                self.error(f"sort on geo field {name!r} needs _geo_distance", at)

    def source(self, src: Any, at: str) -> None:
        if isinstance(src, bool):
            return
        if isinstance(src, str):
            self.pattern(src, at, missing_ok=True)
        elif isinstance(src, list):
            for item in src:
                self.pattern(item, at, missing_ok=True)
        elif isinstance(src, dict):
            for key, value in src.items():
                if key not in ("includes", "excludes", "include", "exclude"):
                    self.error(f"unknown _source option {key!r} (includes, excludes)", at)
                    continue
                for item in value if isinstance(value, list) else [value]:
                    self.pattern(item, f"{at}.{key}", missing_ok=True)
        else:
            self.error(f"_source must be true/false, a field list or includes/excludes, not {_jtype(src)}", at)

    HANDLED = frozenset({"query", "post_filter", "aggs", "aggregations", "sort", "_source", "collapse", "fields",
                         "docvalue_fields", "highlight", "runtime_mappings", "size", "from", "terminate_after",
                         "track_total_hits"})

    def body(self, body: dict[str, Any]) -> None:
        keys = es_spec.search_body_keys()
        typed = es_spec.search_body_types()
        for key in body:
            if key not in keys:
                self.errors.append(f"unknown top-level key {key!r}{_suggest(key, keys)}")
            elif key not in self.HANDLED and key in typed:
                self.typed(body[key], typed[key], key, key)
        if "aggs" in body and "aggregations" in body:
            self.errors.append("both 'aggs' and 'aggregations' given; use one")
        runtime = body.get("runtime_mappings")
        if isinstance(runtime, dict):
            for name, spec in runtime.items():
                self.runtime[name] = spec.get("type", "keyword") if isinstance(spec, dict) else "keyword"
        for key in ("size", "from", "terminate_after"):
            if key in body and not _is_count(body[key]):
                self.errors.append(f"{key} must be a non-negative integer, got {_short(body[key])}")
        size, start = body.get("size", DEFAULT_SIZE), body.get("from", 0)
        if _is_count(size) and _is_count(start) and int(size) + int(start) > MAX_RESULT_WINDOW:
            self.errors.append(f"Result window is too large, from + size must be less than or equal to: "
                               f"[{MAX_RESULT_WINDOW}] but was [{int(size) + int(start)}]")
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
                    fname = item.get("field") if isinstance(item, dict) else item
                    self.pattern(fname, key, missing_ok=True)
        highlight = body.get("highlight")
        if isinstance(highlight, dict):
            hfields = highlight.get("fields")
            if isinstance(hfields, dict):
                for fname in hfields:
                    self.pattern(fname, "highlight.fields", missing_ok=True)
            elif isinstance(hfields, list):
                for item in hfields:
                    for fname in item if isinstance(item, dict) else []:
                        self.pattern(fname, "highlight.fields", missing_ok=True)
            else:
                self.errors.append("highlight needs 'fields'")
        elif "highlight" in body:
            self.errors.append(f"highlight must be an object, not {_jtype(highlight)}")


def _is_count(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return isinstance(value, str) and value.isdigit()


def _path_head(path: str) -> str:
    """The first aggregation named by an order or buckets path (``a>b.metric`` -> ``a``)."""
    head = path.split(">", 1)[0]
    head = head.split("[", 1)[0]
    return head.split(".", 1)[0] if "." in head else head


def _resolve_path(path: str, siblings: dict[str, Any], own: str, *, allow_special: bool) -> str | None:
    """Why ``path`` names no aggregation among ``siblings`` (and their sub-aggregations), or None."""
    if path in ("_count", "_key") and allow_special:
        return None
    special = ("_count", "_key", "_bucket_count")
    parts = path.split(">")
    level = siblings
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        name = part.split("[", 1)[0]
        if last and i > 0 and name in special:
            return None
        if name not in level and last and "." in name:
            if name.rsplit(".", 1)[0] in level and name.rsplit(".", 1)[1] in special:
                return None
            name = name.rsplit(".", 1)[0] if name.rsplit(".", 1)[0] in level else name.split(".", 1)[0]
        if name not in level:
            known = ", ".join(sorted(k for k in level if k != own)) or "none"
            return f"no aggregation [{name}] here (known: {known})"
        if i == 0 and name == own:
            return "a pipeline aggregation cannot point at itself"
        agg = level[name]
        if last:
            return None
        subs = agg.get("aggs", agg.get("aggregations")) if isinstance(agg, dict) else None
        level = subs if isinstance(subs, dict) else {}
    return None
