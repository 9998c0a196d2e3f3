"""The elastic_dsl validator judged as Elasticsearch would: the specification of the client, values
against the mapping type, engine limits, a probe set with the reference's reasons, and real requests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import test_validators_elastic as base

from expertkit.kinds.elastic import spec as es_spec
from expertkit.kinds.elastic import values as es_values
from expertkit.kinds.elastic.query_string import field_terms
from expertkit.kinds.elastic.validator import ElasticDslValidator

v = base.v  # the module-scoped validator over the shipped expert's mappings
PROBES = json.loads((Path(__file__).parent / "fixtures" / "elastic" / "probes.json").read_text(encoding="utf-8"))
ECOM = {"Index": "kibana_sample_data_ecommerce"}
FLIGHTS = {"Index": "kibana_sample_data_flights"}
LOGS = {"Index": "kibana_sample_data_logs"}


def run(v: ElasticDslValidator, body: Any, fields: dict[str, str] = ECOM) -> tuple[list[str], list[str]]:
    result = v.validate(body if isinstance(body, str) else json.dumps(body), fields)
    assert result.valid == (not result.errors)
    return result.errors, result.warnings


# ------------------------------------------------------------------------------- the specification
def test_parameters_come_from_the_client_classes() -> None:
    from elasticsearch.dsl import aggs, types

    match = es_spec.type_params("MatchQuery")
    assert match is not None and set(match.params) == set(types.MatchQuery.__annotations__)
    assert match.main == "query"
    terms = es_spec.agg_params("terms")
    assert terms is not None
    assert set(terms.params) == {n for n in aggs.Terms.__init__.__code__.co_varnames
                                 if n not in ("self", "kwargs")} & set(terms.params)
    assert "size" in terms.params and "order" in terms.params
    (enum,) = es_spec.agg_params("date_histogram").params["calendar_interval"]  # type: ignore[union-attr]
    assert enum.kind == "enum" and "month" in enum.values
    assert es_spec.query_params("match").field_keyed  # type: ignore[union-attr]
    assert not es_spec.query_params("bool").field_keyed  # type: ignore[union-attr]
    assert {"query", "aggs", "size", "from", "_source", "knn"} <= es_spec.search_body_keys()


def test_a_parameter_the_client_declares_passes_and_a_misspelled_one_fails(v: ElasticDslValidator) -> None:
    # every parameter of the terms aggregation the client declares is accepted by name
    body = {"size": 0, "aggs": {"t": {"terms": {"field": "currency", "size": 5, "shard_size": 10,
                                                "min_doc_count": 1, "show_term_doc_count_error": True,
                                                "execution_hint": "map", "collect_mode": "breadth_first",
                                                "missing": "N/A", "include": "E.*"}}}}
    assert run(v, body) == ([], [])
    errors, _ = run(v, {"size": 0, "aggs": {"t": {"terms": {"field": "currency", "shard_sise": 10}}}})
    assert errors == ["unknown terms aggregation parameter 'shard_sise'; did you mean 'shard_size'? (at aggs.t.terms)"]
    errors, _ = run(v, {"size": 0, "aggs": {"t": {"terms": {"field": "currency", "execution_hint": "fast"}}}})
    assert "terms aggregation 'execution_hint' must be one of 'map', 'global_ordinals'" in errors[0]
    errors, _ = run(v, {"query": {"match_phrase": {"category": {"query": "a b", "slop": "two"}}}})
    assert errors and "'slop' must be an integer" in errors[0]


def test_removed_parameters_fail_with_the_reason(v: ElasticDslValidator) -> None:
    errors, _ = run(v, {"aggs": {"d": {"date_histogram": {"field": "order_date", "interval": "day"}}}})
    assert errors == ["date_histogram aggregation parameter 'interval' was removed in 8.0; use calendar_interval "
                      "or fixed_interval (at aggs.d.date_histogram.interval)"]


def test_typed_values_inside_nested_parameters(v: ElasticDslValidator) -> None:
    errors, _ = run(v, {"size": 0, "aggs": {"d": {"date_histogram": {
        "field": "order_date", "calendar_interval": "day", "extended_bounds": {"min": 1, "maxx": 2}}}}})
    assert any("unknown date_histogram aggregation 'extended_bounds' parameter 'maxx'" in e for e in errors), errors
    errors, _ = run(v, {"query": {"nested": {"path": "geoip", "query": {"match_all": {}}, "score_mode": "median"}}})
    assert any("'score_mode' must be one of 'none', 'avg', 'sum', 'max', 'min'" in e for e in errors), errors


# ------------------------------------------------------------------------------- values and limits
@pytest.mark.parametrize(("value", "ok"), [
    ("2024-03-05", True), ("2024-03-05T10:11:12.123Z", True), ("2024-03-05T10:11+01:00", True), ("2024", True),
    (1_700_000_000_000, True), ("1700000000000", True), ("now", True), ("now-7d/d", True),
    ("2024-01-01||+1M/M", True), ("yesterday", False), ("2024-02-30", False), ("2024-03-05 10:11", False),
    ("now-1x", False), (True, False), ("05/03/2024", False),
])
def test_dates_as_the_default_format_reads_them(value: Any, ok: bool) -> None:
    assert (es_values.date_problem(value) is None) is ok


def test_values_of_other_field_types() -> None:
    assert es_values.value_problem("maybe", "boolean") == (
        "Can't parse boolean value [maybe], expected [true] or [false]")
    assert es_values.value_problem("true", "boolean") is None
    assert es_values.value_problem("1.5e3", "double") is None
    assert es_values.value_problem("12abc", "integer")
    assert es_values.value_problem("10.1.2.3", "ip") is None
    assert es_values.value_problem("10.1.0.0/16", "ip", cidr=True) is None
    assert es_values.value_problem("10.1.0.0/16", "ip")
    assert es_values.value_problem("anything", "keyword") is None
    assert es_values.calendar_interval_problem("1w") is None
    assert es_values.calendar_interval_problem("2w")
    assert es_values.fixed_interval_problem("90m") is None
    assert es_values.fixed_interval_problem("1y")
    assert es_values.geo_point_problem([-70, 40]) is None
    assert es_values.geo_point_problem({"lat": 40}) == "field [lat] and [lon] must be set"
    assert es_values.geo_point_problem("POINT (-70 40)") is None
    assert es_values.geo_point_problem("drm3btev3e86") is None


def test_result_window(v: ElasticDslValidator) -> None:
    assert run(v, {"size": 10_000})[0] == []
    assert run(v, {"from": 9_991})[0] == ["Result window is too large, from + size must be less than or equal to: "
                                          "[10000] but was [10001]"]


def test_query_string_is_parsed_and_its_fields_checked(v: ElasticDslValidator) -> None:
    terms, problem = field_terms(r"machine.os:win* AND bytes:[1000 TO *] AND NOT geo\.src:US AND _exists_:tags")
    assert problem is None
    assert ("bytes", "1000") in terms and ("machine.os", None) in terms and ("geo.src", "US") in terms
    assert ("_exists_", "tags") in terms
    assert field_terms("a AND (b OR")[1]
    errors, _ = run(v, {"query": {"query_string": {"query": "bytes:many"}}}, LOGS)
    assert errors == ["query_string on long field 'bytes': failed to parse [many] as a number for the long field "
                      "(at query.query_string.query)"]
    assert run(v, {"query": {"query_string": {"query": "bytes:many", "lenient": True}}}, LOGS)[0] == []
    errors, _ = run(v, {"query": {"query_string": {"query": "_exists_:tagz"}}}, LOGS)
    assert errors and "'tagz'" in errors[0]
    # a huge query is not parsed (time), and says so
    errors, warnings = run(v, {"query": {"query_string": {"query": "a OR " * 2000 + "("}}}, LOGS)
    assert errors == [] and "not parsed" in warnings[0]


def test_warnings_for_what_elasticsearch_runs_but_a_careful_user_avoids(v: ElasticDslValidator) -> None:
    errors, warnings = run(v, {"query": {"wildcard": {"message": "*error*"}}}, LOGS)
    assert errors == [] and "wildcard on text field 'message'" in warnings[0] and "'message.keyword'" in warnings[0]
    errors, warnings = run(v, {"fields": [{"field": "@timestamp"}], "docvalue_fields": ["nope"]})
    assert errors == [] and len(warnings) == 2 and "Elasticsearch returns nothing" in warnings[0]


# ------------------------------------------------------------------------------- the probe set
def test_probe_set_is_large_enough_and_documented() -> None:
    assert len(PROBES["invalid"]) >= 40 and len(PROBES["valid"]) >= 40
    assert all(p["reason"] and p["expect"] for p in PROBES["invalid"])


@pytest.mark.parametrize("probe", PROBES["invalid"], ids=[p["expect"][:40] for p in PROBES["invalid"]])
def test_bodies_elasticsearch_refuses_are_rejected(v: ElasticDslValidator, probe: dict[str, Any]) -> None:
    errors, _ = run(v, probe["body"], {"Index": probe["index"]})
    assert any(probe["expect"] in e for e in errors), (probe["reason"], errors)


@pytest.mark.parametrize("probe", PROBES["valid"], ids=[p["feature"][:40] for p in PROBES["valid"]])
def test_valid_bodies_with_the_same_features_are_accepted(v: ElasticDslValidator, probe: dict[str, Any]) -> None:
    errors, _ = run(v, probe["body"], {"Index": probe["index"]})
    assert errors == [], (probe["feature"], errors)


# ------------------------------------------------------------------------------- real requests
def test_kibana_dashboard_requests_are_accepted(v: ElasticDslValidator, realdata: Path) -> None:
    rows = [json.loads(line) for line in (realdata / "es" / "kibana_dashboard_requests.jsonl").open()]
    assert len(rows) == 44
    rejected = {}
    for row in rows:
        errors, _ = run(v, row["query"], {"Index": row["index"]})
        if errors:
            rejected[row["test_name"]] = errors
    # the one body of the source that mixes flights fields into an ecommerce request, for that reason only
    assert list(rejected) == ["weird"]
    assert all("is not in index kibana_sample_data_ecommerce" in e for e in rejected["weird"])
    assert any("'OriginLocation'" in e for e in rejected["weird"])


def test_seed_system_hand_written_bodies(v: ElasticDslValidator, realdata: Path) -> None:
    path = realdata / "seed-system" / "expert-elastic" / "kibana_samples__kibana_samples.jsonl"
    rows = [r for r in map(json.loads, path.open()) if r["task"] == "query_dsl"]
    assert len(rows) == 37
    rejected = [(r["output"], run(v, r["output"], {"Index": r["index"]})[0]) for r in rows]
    rejected = [(body, errors) for body, errors in rejected if errors]
    # its terms aggregation on the text field `extension` is refused by Elasticsearch (fielddata is off)
    assert len(rejected) == 1
    assert "terms aggregation on text field 'extension' needs fielddata" in rejected[0][1][0]
