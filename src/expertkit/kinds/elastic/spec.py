"""The Elasticsearch request specification as the official Python client encodes it.

``elasticsearch.dsl`` is generated from elastic/elasticsearch-specification: every query class
(``elasticsearch.dsl.query``), aggregation class (``elasticsearch.dsl.aggs``) and value type
(``elasticsearch.dsl.types``) carries its parameters as typed signatures or annotations, with enums
as ``Literal``. This module turns those annotations into :class:`Param` specs the ``elastic_dsl``
validator walks, so that a parameter the specification does not know fails, and one it gained passes,
without a hand-kept list.

Two things the Python classes do not carry are added here, each from the Elasticsearch reference:

* the parameters the server removed although the specification still lists them as deprecated
  (:data:`REMOVED`), e.g. ``date_histogram.interval`` (removed in 8.0);
* the scalar shorthands the server accepts (``{"match": {"f": "text"}}``, ``"script": "source"``).
"""

from __future__ import annotations

import inspect
import re
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any

#: Parameters the specification still lists (deprecated) but the server refuses, with the reason.
#: key: (query or aggregation type, parameter); "*" as type: any of them.
REMOVED: dict[tuple[str, str], str] = {
    ("date_histogram", "interval"): "removed in 8.0; use calendar_interval or fixed_interval",
    ("match", "cutoff_frequency"): "removed in 8.0",
    ("multi_match", "cutoff_frequency"): "removed in 8.0",
    ("common", ""): "the common terms query was removed in 8.0; use match",
    ("type", ""): "the type query was removed in 8.0 with mapping types",
}
#: Parameters still accepted by the server but deprecated by the specification (a warning).
DEPRECATED: dict[tuple[str, str], str] = {
    ("range", "from"): "deprecated; use gte (or gt)",
    ("range", "to"): "deprecated; use lte (or lt)",
    ("range", "include_lower"): "deprecated; use gt/gte",
    ("range", "include_upper"): "deprecated; use lt/lte",
}
#: Options of a ``range`` query beside its bounds (``wrappers.Range`` types only the bounds).
RANGE_OPTIONS = ("format", "time_zone", "relation", "boost", "_name")


@dataclass(frozen=True)
class Alt:
    """One alternative of a parameter's type.

    kind: ``str``, ``int``, ``float``, ``bool``, ``null``, ``enum`` (``values``), ``field`` (a field
    name), ``query``, ``sort``, ``seq`` / ``map`` (of ``inner``), ``obj`` (a ``types`` class,
    ``name``), ``range`` (range bounds), ``object`` (any object) or ``any``.
    """

    kind: str
    values: tuple[str, ...] = ()
    inner: tuple[Alt, ...] = ()
    name: str = ""


Type = tuple[Alt, ...]
ANY: Type = (Alt("any"),)


@dataclass(frozen=True)
class Params:
    """The parameters of a query, aggregation or value type.

    ``field_keyed``: the object is ``{<field>: <value>}`` plus ``params`` (``{"match": {"f": ...}}``),
    the field's value typed ``value``. ``main``: the parameter a scalar shorthand stands for.
    """

    params: dict[str, Type]
    field_keyed: bool = False
    value: Type = ()
    main: str = ""
    required: tuple[str, ...] = ()


def _modules() -> dict[str, Any]:
    from elasticsearch.dsl import aggs, query, types, wrappers

    return {"query": query, "aggs": aggs, "types": types, "wrappers": wrappers}


def _ref(name: str) -> Type:
    """A forward reference of the client (``'types.MatchQuery'``, ``'Query'``, ``'DefaultType'``...)."""
    name = name.strip()
    base = name.split("[", 1)[0]
    if base in ("DefaultType", "None"):
        return ()
    if base == "InstrumentedField":
        return (Alt("field"),)
    if base in ("Query", "query.Query"):
        return (Alt("query"),)
    if base == "wrappers.Range":
        return (Alt("range"),)
    short = base.removeprefix("types.")
    if short in ("SortOptions", "SortCombinations"):
        return (Alt("sort"),)
    if short == "Script":
        return (Alt("obj", name="Script"), Alt("str"))
    types = _modules()["types"]
    if isinstance(getattr(types, short, None), type):
        return (Alt("obj", name=short),)
    return ANY


def convert(annotation: Any) -> Type:
    """An annotation of the client as a tuple of :class:`Alt` (empty: only the DEFAULT sentinel)."""
    from elastic_transport.client_utils import DefaultType
    from elasticsearch.dsl import document_base, query

    if isinstance(annotation, typing.ForwardRef):
        return _ref(annotation.__forward_arg__)
    if isinstance(annotation, str):
        return _ref(annotation)
    if annotation is Any or annotation is inspect.Parameter.empty:
        return ANY
    if annotation is DefaultType:
        return ()
    if annotation is type(None):
        return (Alt("null"),)
    if annotation is bool:
        return (Alt("bool"),)
    if annotation is int:
        return (Alt("int"),)
    if annotation is float:
        return (Alt("float"),)
    if annotation is str:
        return (Alt("str"),)
    if annotation is document_base.InstrumentedField:
        return (Alt("field"),)
    if isinstance(annotation, type) and issubclass(annotation, query.Query):
        return (Alt("query"),)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union:
        out: list[Alt] = []
        for arg in args:
            out.extend(a for a in convert(arg) if a not in out)
        return tuple(out)
    if origin is typing.Literal:
        return (Alt("enum", values=tuple(str(a) for a in args)),)
    if origin in (list, tuple, typing.Sequence, __import__("collections.abc").abc.Sequence):
        return (Alt("seq", inner=convert(args[0]) if args else ANY),)
    if origin in (dict, typing.Mapping, __import__("collections.abc").abc.Mapping):
        value = args[1] if len(args) == 2 else Any
        if value is Any:
            return (Alt("object"),)
        return (Alt("map", inner=convert(value)),)
    if isinstance(annotation, type):
        if issubclass(annotation, dict):
            return (Alt("object"),)
        types = _modules()["types"]
        if getattr(types, annotation.__name__, None) is annotation:
            return _ref(annotation.__name__)
    return ANY


_REQUIRED = re.compile(r":arg (\w+): \(required\)")


def _from_signature(cls: type) -> Params:
    params: dict[str, Type] = {}
    value: Type = ()
    field_keyed = False
    for name, p in inspect.signature(cls.__init__).parameters.items():  # type: ignore[misc]
        if name == "self" or p.kind is inspect.Parameter.VAR_KEYWORD:
            continue
        if name == "_field":
            field_keyed = True
        elif name == "_value":
            value = convert(p.annotation)
        else:
            params["from" if name == "from_" else name] = convert(p.annotation)
    return Params(params, field_keyed, value, required=tuple(_REQUIRED.findall(cls.__doc__ or "")))


def _from_annotations(cls: type) -> Params:
    params: dict[str, Type] = {}
    value: Type = ()
    field_keyed = False
    for klass in reversed(cls.__mro__):
        for name, ann in getattr(klass, "__annotations__", {}).items():
            if klass.__module__.startswith("elasticsearch.dsl.types") or klass is cls:
                if name == "_field":
                    field_keyed = True
                elif name == "_value":
                    value = convert(ann)
                else:
                    params["from" if name == "from_" else name] = convert(ann)
    required = tuple(_REQUIRED.findall(cls.__doc__ or ""))
    return Params(params, field_keyed, value, main=required[0] if required else "", required=required)


@cache
def query_types() -> frozenset[str]:
    return frozenset(_modules()["query"].Query._classes)


@cache
def agg_types() -> frozenset[str]:
    return frozenset(_modules()["aggs"].Agg._classes)


@cache
def function_types() -> frozenset[str]:
    from elasticsearch.dsl import function

    return frozenset(function.ScoreFunction._classes)  # type: ignore[attr-defined]


@cache
def query_params(qtype: str) -> Params | None:
    """The parameters of query ``qtype``; for field-keyed ones, the typed value of the field too."""
    cls = _modules()["query"].Query._classes.get(qtype)
    if cls is None:
        return None
    spec = _from_signature(cls)
    if spec.field_keyed:
        objs = [a for a in spec.value if a.kind == "obj" and a.name.endswith("Query")]
        main = ""
        if objs:
            inner = type_params(objs[0].name)
            main = inner.main if inner else ""
            if not main and inner and "value" in inner.params:
                main = "value"
        spec = Params(spec.params, True, spec.value, main, spec.required)
    return spec


@cache
def shorthand_main(qtype: str) -> str:
    """The parameter a scalar stands for in a field query (``{"term": {"f": 1}}``: ``value``), or ""."""
    spec = query_params(qtype)
    if spec is None or not spec.field_keyed:
        return ""
    return spec.main if spec.main in ("query", "value") else ""


@cache
def agg_params(atype: str) -> Params | None:
    cls = _modules()["aggs"].Agg._classes.get(atype)
    return None if cls is None else _from_signature(cls)


@cache
def type_params(name: str) -> Params | None:
    """The parameters of ``elasticsearch.dsl.types.<name>``."""
    cls = getattr(_modules()["types"], name, None)
    if not isinstance(cls, type):
        return None
    return _from_annotations(cls)


@cache
def subquery_params(qtype: str) -> dict[str, dict[str, Any]]:
    """Query type -> its sub-query parameters (``{"type": "query", "multi": ...}``) per elasticsearch.dsl."""
    cls = _modules()["query"].Query._classes.get(qtype)
    if cls is None:
        return {}
    return {k: v for k, v in cls._param_defs.items() if v.get("type") == "query"}


_FALLBACK_BODY_KEYS = frozenset({
    "query", "aggs", "aggregations", "size", "from", "sort", "_source", "track_total_hits",
    "post_filter", "highlight", "collapse", "explain", "fields", "docvalue_fields", "stored_fields",
    "script_fields", "min_score", "timeout", "terminate_after", "track_scores", "version",
    "seq_no_primary_term", "search_after", "suggest", "rescore", "pit", "runtime_mappings",
    "indices_boost", "knn", "rank", "retriever", "stats", "profile", "ext", "slice",
})


@cache
def search_body_keys() -> frozenset[str]:
    """The keys of a ``_search`` body, as the client's ``Elasticsearch.search`` declares its body fields."""
    from elasticsearch import Elasticsearch

    fn = Elasticsearch.search
    cells = dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__ or ()), strict=False))
    fields, aliases = cells.get("body_fields"), cells.get("parameter_aliases")
    if not isinstance(fields, tuple) or not isinstance(aliases, dict):  # pragma: no cover - client changed
        return _FALLBACK_BODY_KEYS
    back = {python: wire for wire, python in aliases.items()}
    return frozenset(back.get(f, f) for f in fields)


@cache
def search_body_types() -> dict[str, Type]:
    """The typed body parameters of ``Elasticsearch.search`` (``from`` and ``_source`` by their wire names)."""
    from elasticsearch import Elasticsearch

    keys = search_body_keys()
    out: dict[str, Type] = {}
    for name, p in inspect.signature(Elasticsearch.search).parameters.items():
        wire = {"from_": "from", "source": "_source"}.get(name, name)
        if wire in keys:
            out[wire] = tuple(a for a in convert(p.annotation) if a.kind != "null")
    return out
