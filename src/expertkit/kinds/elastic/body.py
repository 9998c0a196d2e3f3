"""An Elasticsearch search body as data: the mapping types, an index's flattened mapping, the strict JSON
reading of a body and its canonical form (shared by the validator, its checker and the matcher).

``canonical_body`` is what ``equivalent`` compares: key order, ``aggs``/``aggregations``, field-query shorthand
(``{"match": {"f": "x"}}`` == ``{"match": {"f": {"query": "x"}}}``; likewise term, match_phrase, prefix,
wildcard, regexp, fuzzy), ``bool`` clause order and single-clause-vs-list, ``terms`` value order,
``dis_max`` query order, and sort shorthand (``"f"`` == ``{"f": {"order": "asc"}}``).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from expertkit.kinds.elastic.spec import shorthand_main, subquery_params
from expertkit.kinds.validation import too_long

# ---------------------------------------------------------------------------- vocabulary
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


# ---------------------------------------------------------------------------- mapping
@dataclass
class IndexMapping:
    """A flattened mapping: field path -> type, and text field -> its keyword multi-field."""

    name: str
    types: dict[str, str]
    keyword_of: dict[str, str] = field(default_factory=dict)
    #: date field -> its mapping ``format`` (absent: the default, strict_date_optional_time||epoch_millis)
    formats: dict[str, str] = field(default_factory=dict)


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
            if isinstance(spec.get("format"), str):
                mapping.formats[path] = spec["format"]
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
    main = shorthand_main(qtype)
    if main:
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
    subs = subquery_params(qtype)
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
