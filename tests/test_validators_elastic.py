"""The elastic_dsl validator: structure, fields against the Kibana sample mappings, equivalence."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expertkit.core.manifest import OutputSpec
from expertkit.kinds import bind_kind
from expertkit.kinds.elastic.validator import ElasticDslValidator, flatten_mapping

EXPERT = Path(__file__).resolve().parents[1] / "experts" / "elastic"
ECOM = {"Dialect": "elastic", "Task": "query_dsl", "Index": "kibana_sample_data_ecommerce"}
FLIGHTS = {**ECOM, "Index": "kibana_sample_data_flights"}
LOGS = {**ECOM, "Index": "kibana_sample_data_logs"}


@pytest.fixture(scope="module")
def v() -> ElasticDslValidator:
    validator = bind_kind(EXPERT, OutputSpec(kind="elastic_dsl", resources={"mappings": "mappings"}))
    assert isinstance(validator, ElasticDslValidator)
    return validator


def check(v: ElasticDslValidator, body: Any, fields: dict[str, str] = ECOM) -> tuple[list[str], list[str]]:
    text = body if isinstance(body, str) else json.dumps(body)
    result = v.validate(text, fields)
    assert result.valid == (not result.errors)
    return result.errors, result.warnings


def one_error(v: ElasticDslValidator, body: Any, fields: dict[str, str] = ECOM) -> str:
    errors, _ = check(v, body, fields)
    assert len(errors) == 1, errors
    return errors[0]


def test_mappings_are_the_shared_kibana_ones() -> None:
    shared = Path(__file__).resolve().parents[2] / "shared" / "mappings"
    names = sorted(p.name for p in (EXPERT / "mappings").glob("*.json"))
    assert names == ["kibana_sample_data_ecommerce.json", "kibana_sample_data_flights.json",
                     "kibana_sample_data_logs.json"]
    if shared.is_dir():
        for name in names:
            assert (EXPERT / "mappings" / name).read_bytes() == (shared / name).read_bytes()


def test_flatten_mapping_has_multi_fields_and_object_paths() -> None:
    body = json.loads((EXPERT / "mappings" / "kibana_sample_data_ecommerce.json").read_text())
    m = flatten_mapping("ecom", body)
    assert m.types["customer_full_name"] == "text"
    assert m.types["customer_full_name.keyword"] == "keyword"
    assert m.types["geoip"] == "object"
    assert m.types["geoip.city_name"] == "keyword"
    assert m.types["products.price"] == "half_float"
    assert m.keyword_of["customer_full_name"] == "customer_full_name.keyword"


# ------------------------------------------------------------------------------- valid bodies
VALID = [
    {"query": {"match_all": {}}},
    {"query": {"match": {"customer_full_name": "Eddie"}}, "size": 5},
    {"query": {"match": {"customer_full_name": {"query": "Eddie", "operator": "and"}}}},
    {"query": {"term": {"customer_full_name.keyword": "Eddie Underwood"}}},
    {"query": {"terms": {"geoip.city_name": ["Cairo", "Dubai"]}}},
    {"query": {"range": {"order_date": {"gte": "now-7d/d", "lt": "now/d", "time_zone": "+01:00"}}}},
    {"query": {"range": {"taxful_total_price": {"gt": 100, "lte": 200}}}},
    {"query": {"exists": {"field": "geoip"}}},
    {"query": {"prefix": {"sku": "ZO"}}},
    {"query": {"wildcard": {"email": {"value": "*@acme.com"}}}},
    {"query": {"multi_match": {"query": "shirt", "fields": ["products.product_name^2", "category"]}}},
    {"query": {"bool": {"must": {"match": {"category": "clothing"}},
                        "filter": [{"term": {"currency": "EUR"}}, {"range": {"total_quantity": {"gte": 2}}}],
                        "must_not": [{"term": {"customer_gender": "MALE"}}],
                        "should": [], "minimum_should_match": 0}}},
    {"query": {"constant_score": {"filter": {"term": {"day_of_week": "Monday"}}}}},
    {"query": {"match_all": {}}, "sort": [{"order_date": {"order": "desc"}}, "_score", {"customer_id": "asc"}],
     "_source": ["customer_*", "geoip.city_name", "products"], "from": 0, "size": 20,
     "track_total_hits": True},
    {"size": 0, "aggs": {"per_day": {"date_histogram": {"field": "order_date", "calendar_interval": "day"},
                                     "aggs": {"revenue": {"sum": {"field": "taxful_total_price"}}}}}},
    {"size": 0, "aggregations": {"cities": {"terms": {"field": "geoip.city_name", "size": 5},
                                            "aggregations": {"avg_qty": {"avg": {"field": "total_quantity"}}}}}},
    {"size": 0, "aggs": {"latest": {"max": {"field": "order_date"}},
                         "price": {"stats": {"field": "products.base_price"}},
                         "p": {"percentiles": {"field": "taxless_total_price", "percents": [50, 99]}},
                         "n": {"cardinality": {"field": "customer_id"}},
                         "eur": {"filter": {"term": {"currency": "EUR"}}},
                         "geo": {"geo_centroid": {"field": "geoip.location"}}}},
    {"query": {"bool": {"filter": [{"geo_distance": {"distance": "200km",
                                                     "geoip.location": {"lat": 40, "lon": -70}}}]}}},
    {"post_filter": {"term": {"currency": "EUR"}}, "highlight": {"fields": {"customer_full_name": {}}}},
    {"query": {"match_phrase": {"products.product_name": "basic shirt"}}, "collapse": {"field": "customer_id"}},
    {"runtime_mappings": {"day": {"type": "keyword", "script": "emit('x')"}},
     "query": {"term": {"day": "x"}}},
]


@pytest.mark.parametrize("body", VALID, ids=range(len(VALID)))
def test_valid_bodies(v: ElasticDslValidator, body: dict[str, Any]) -> None:
    errors, _ = check(v, body)
    assert errors == []


def test_valid_bodies_on_other_indices(v: ElasticDslValidator) -> None:
    assert check(v, {"query": {"range": {"AvgTicketPrice": {"gte": 500}}},
                     "aggs": {"c": {"terms": {"field": "Carrier"}}}}, FLIGHTS) == ([], [])
    assert check(v, {"query": {"term": {"Cancelled": True}}}, FLIGHTS) == ([], [])
    assert check(v, {"query": {"range": {"clientip": {"gte": "10.0.0.0", "lte": "10.255.255.255"}}},
                     "aggs": {"os": {"terms": {"field": "machine.os.keyword"}}}}, LOGS) == ([], [])


def test_validate_does_not_change_the_body(v: ElasticDslValidator) -> None:
    body = {"query": {"bool": {"must": {"match": {"category": "x"}}}}, "aggs": {"a": {"terms": {"field": "sku"}}}}
    before = copy.deepcopy(body)
    v._mappings.clear()
    check(v, body)
    assert body == before


# ------------------------------------------------------------------------------- fields and index
def test_field_the_index_lacks(v: ElasticDslValidator) -> None:
    error = one_error(v, {"query": {"match": {"customer_nme": "Eddie"}}})
    assert "field 'customer_nme' is not in index kibana_sample_data_ecommerce" in error
    assert "query.match" in error


def test_unknown_fields_everywhere(v: ElasticDslValidator) -> None:
    assert "'order_dat'" in one_error(v, {"sort": [{"order_dat": "desc"}]})
    assert "'prices'" in one_error(v, {"aggs": {"a": {"avg": {"field": "prices"}}}})
    # source filtering of an unmapped field returns nothing: a warning, not an error
    assert check(v, {"_source": ["geoip.town"]})[0] == []
    assert "'geoip.town'" in check(v, {"_source": ["geoip.town"]})[1][0]
    assert "'nope*'" in check(v, {"_source": {"includes": ["nope*"]}})[1][0]
    assert "'FlightNum'" in one_error(v, {"query": {"term": {"FlightNum": "X"}}})  # a flights field
    assert "'geoip.city_name.keyword'" in one_error(v, {"query": {"term": {"geoip.city_name.keyword": "X"}}})
    error = one_error(v, {"query": {"bool": {"filter": {"constant_score": {"filter": {"term": {"custmer_id": 1}}}}}}})
    assert "'custmer_id'" in error and "query.bool.filter.constant_score.filter.term" in error


def test_object_field_is_not_a_leaf(v: ElasticDslValidator) -> None:
    assert "'geoip' is an object field" in one_error(v, {"query": {"match": {"geoip": "Cairo"}}})
    assert check(v, {"query": {"exists": {"field": "geoip"}}}) == ([], [])


def test_unknown_index(v: ElasticDslValidator) -> None:
    errors, _ = check(v, {"query": {"match_all": {}}}, {**ECOM, "Index": "kibana_sample_data_books"})
    assert errors == ["unknown index 'kibana_sample_data_books' (known: kibana_sample_data_ecommerce, "
                      "kibana_sample_data_flights, kibana_sample_data_logs)"]
    errors, _ = check(v, {"query": {"match_all": {}}}, {**ECOM, "Index": "../../etc/passwd"})
    assert errors and errors[0].startswith("unknown index")


def test_no_index_field_skips_field_checks(v: ElasticDslValidator) -> None:
    assert check(v, {"query": {"match": {"anything": "x"}}}, {"Dialect": "elastic"}) == ([], [])
    # structure is still checked
    assert "unknown query type" in one_error(v, {"query": {"matchh": {"a": 1}}}, {"Dialect": "elastic"})


# ------------------------------------------------------------------------------- structure
def test_not_json_or_not_an_object(v: ElasticDslValidator) -> None:
    assert one_error(v, "{'query': {}}").startswith("not valid JSON")
    assert one_error(v, "[1, 2]") == "the search body must be a JSON object, not an array"
    assert one_error(v, '{"size": NaN}') == "not valid JSON: NaN is not valid JSON"
    assert one_error(v, '{"size": 1, "size": 2}') == "not valid JSON: duplicate key 'size'"
    assert one_error(v, "").startswith("not valid JSON")


def test_unknown_top_level_key(v: ElasticDslValidator) -> None:
    assert one_error(v, {"qurey": {"match_all": {}}}) == "unknown top-level key 'qurey'; did you mean 'query'?"


def test_unknown_query_and_aggregation_types(v: ElasticDslValidator) -> None:
    assert "unknown query type 'matchx'" in one_error(v, {"query": {"matchx": {"category": "x"}}})
    error = one_error(v, {"query": {"bool": {"must": [{"trem": {"currency": "EUR"}}]}}})
    assert "unknown query type 'trem'" in error and "query.bool.must[0].trem" in error
    assert "unknown aggregation type 'termz'" in one_error(v, {"aggs": {"a": {"termz": {"field": "sku"}}}})


# the cases elasticsearch.dsl accepts but Elasticsearch refuses or misreads
DSL_ACCEPTS = [
    ({"query": {"term": {}}}, "term query names no field"),
    ({"query": {"terms": {"currency": "EUR"}}}, "terms on 'currency' needs a list of values, not a string"),
    ({"query": {"exists": {}}}, "exists query needs a 'field'"),
    ({"query": {"match": {"category": "a", "customer_full_name": "b"}}}, "match query takes one field, got 2"),
    ({"query": {"bool": {"shoud": [{"match": {"category": "x"}}]}}}, "unknown bool query parameter 'shoud'"),
    ({"query": {"range": {"taxful_total_price": {"gtx": 10}}}}, "unknown range operator 'gtx'"),
    ({"query": {"range": {"taxful_total_price": {"lte": 10, "form": 10}}}}, "unknown range operator 'form'"),
    ({"size": "ten"}, "size must be a non-negative integer, got 'ten'"),
    ({"from": -1}, "from must be a non-negative integer, got -1"),
    ({"size": True}, "size must be a non-negative integer, got true"),
    ({"query": {"match": {"category": {"qurey": "x"}}}}, "unknown match parameter 'qurey'"),
    ({"query": {"term": {"currency": ["EUR", "USD"]}}}, "use terms for a list of values"),
    ({"query": {"range": {"order_date": "2024-01-01"}}}, "range on 'order_date' needs an object of bounds"),
    ({"sort": [{"order_date": "down"}]}, "sort order must be 'asc' or 'desc'"),
    ({"aggs": {"a": {"terms": {"field": "sku"}, "avg": {"field": "total_quantity"}}}}, "holds 2 types"),
    ({"query": {"match_all": {}, "term": {"sku": "x"}}}, "exactly one query type"),
    ({"query": {}}, "empty query object"),
    ({"query": {"nested": {"query": {"match_all": {}}}}}, "nested query needs a 'path'"),
    ({"track_total_hits": "yes"}, "track_total_hits must be true, false or a count"),
]


@pytest.mark.parametrize(("body", "expected"), DSL_ACCEPTS, ids=[e for _, e in DSL_ACCEPTS])
def test_broken_bodies_elasticsearch_dsl_lets_through(v: ElasticDslValidator, body: dict[str, Any],
                                                      expected: str) -> None:
    errors, _ = check(v, body)
    assert any(expected in e for e in errors), errors


def test_elasticsearch_dsl_alone_accepts_them() -> None:
    from elasticsearch.dsl import Search

    for body, _ in DSL_ACCEPTS[:14]:
        Search.from_dict(copy.deepcopy(body))  # no error: the walker is what catches these


def test_dsl_library_errors_are_reported(v: ElasticDslValidator) -> None:
    # a score function elasticsearch.dsl does not know
    error = one_error(v, {"query": {"function_score": {"query": {"match_all": {}},
                                                       "functions": [{"gaus": {"order_date": {}}}]}}})
    assert "unknown score function 'gaus'" in error


# ------------------------------------------------------------------------------- type rules
def test_range_on_strings_is_a_warning_on_geo_an_error(v: ElasticDslValidator) -> None:
    # Elasticsearch runs a range on keyword/text (refused only without search.allow_expensive_queries)
    for name, ftype in (("customer_full_name", "text"), ("currency", "keyword")):
        errors, warnings = check(v, {"query": {"range": {name: {"gte": "A"}}}})
        assert errors == []
        assert f"range on {ftype} field {name!r} compares strings" in warnings[0]
    logs = {"query": {"range": {"response.keyword": {"gte": "400", "lt": "500"}}}}
    assert check(v, logs, LOGS)[0] == []
    assert "range query on geo_point field 'geoip.location'" in one_error(
        v, {"query": {"range": {"geoip.location": {"gte": 0}}}})
    # a boolean field takes a range of booleans, not numbers
    assert "Can't parse boolean value [0]" in one_error(v, {"query": {"range": {"Cancelled": {"gte": 0}}}}, FLIGHTS)
    assert check(v, {"query": {"range": {"Cancelled": {"gte": False}}}}, FLIGHTS) == ([], [])


def test_term_on_text_is_a_warning_with_the_keyword_hint(v: ElasticDslValidator) -> None:
    errors, warnings = check(v, {"query": {"term": {"customer_full_name": "Eddie Underwood"}}})
    assert errors == []
    assert len(warnings) == 1
    assert "text field 'customer_full_name'" in warnings[0]
    assert "'customer_full_name.keyword'" in warnings[0]
    _, warnings = check(v, {"query": {"terms": {"category": ["Men's Clothing"]}}})
    assert "'category.keyword'" in warnings[0]


def test_numeric_aggregations_need_numeric_fields(v: ElasticDslValidator) -> None:
    for agg in ("avg", "sum", "min", "max", "stats", "percentiles"):
        error = one_error(v, {"aggs": {"a": {agg: {"field": "currency"}}}})
        assert f"{agg} aggregation needs a numeric" in error and "'currency' is keyword" in error
    assert "sum aggregation needs a numeric field" in one_error(
        v, {"aggs": {"a": {"sum": {"field": "order_date"}}}})
    assert check(v, {"aggs": {"a": {"min": {"field": "order_date"}}}}) == ([], [])


def test_date_histogram_needs_a_date(v: ElasticDslValidator) -> None:
    error = one_error(v, {"aggs": {"a": {"date_histogram": {"field": "taxful_total_price",
                                                            "calendar_interval": "month"}}}})
    assert "date_histogram aggregation needs a date field; 'taxful_total_price' is half_float" in error


def test_nested_needs_a_nested_path(v: ElasticDslValidator) -> None:
    error = one_error(v, {"query": {"nested": {"path": "products", "query": {"match_all": {}}}}})
    assert "nested query path 'products' is not a nested field (it is object)" in error
    error = one_error(v, {"aggs": {"p": {"nested": {"path": "geoip"}}}})
    assert "nested aggregation path 'geoip' is not a nested field" in error


def test_terms_aggregation_and_sort_on_text(v: ElasticDslValidator) -> None:
    error = one_error(v, {"aggs": {"a": {"terms": {"field": "customer_full_name"}}}})
    assert "terms aggregation on text field 'customer_full_name' needs fielddata" in error
    assert "use 'customer_full_name.keyword'" in error
    assert "sort on text field" in one_error(v, {"sort": ["manufacturer"]})


def test_string_and_geo_queries_check_types(v: ElasticDslValidator) -> None:
    assert "prefix query needs a keyword or text field; 'total_quantity' is integer" in one_error(
        v, {"query": {"prefix": {"total_quantity": "1"}}})
    assert "needs a geo_point or geo_shape field" in one_error(
        v, {"query": {"geo_distance": {"distance": "1km", "currency": [0, 0]}}})


def test_several_errors_are_all_reported(v: ElasticDslValidator) -> None:
    errors, _ = check(v, {"qurey": {}, "size": -1, "aggs": {"a": {"avg": {"field": "nope"}}}})
    assert len(errors) == 3


# ------------------------------------------------------------------------------- never raises
def test_deprecated_range_bounds_warn(v: ElasticDslValidator) -> None:
    errors, warnings = check(v, {"query": {"range": {"taxful_total_price": {"from": 10, "to": 20}}}})
    assert errors == []
    assert any("'from' is deprecated" in w for w in warnings)


def test_hostile_inputs(v: ElasticDslValidator) -> None:
    deep = '{"query":' * 100_000 + "1" + "}" * 100_000
    assert one_error(v, deep) == "JSON nested too deeply"
    deep_bool = '{"query":' + '{"bool":{"must":[' * 300 + '{"match_all":{}}' + "]}}" * 300 + "}"
    assert one_error(v, deep_bool) in ("body nested too deeply", "JSON nested too deeply")
    v.equivalent(deep_bool, deep_bool, ECOM)  # must not raise
    assert check(v, "\x00\xff\ud800 junk")[0][0].startswith("not valid JSON")
    huge = json.dumps({"query": {"terms": {"sku": [f"s{i}" for i in range(200_000)]}}})
    assert check(v, huge) == ([], [])
    assert one_error(v, "null") == "the search body must be a JSON object, not null"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.sampled_from(["match", "term", "bool", "range", "field", "aggs", "query", "sort", "nested",
                       "category", "geoip", "terms", "filters", "composite", "sources"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["query", "bool", "must", "should", "match", "term", "terms", "range", "aggs",
                         "field", "size", "sort", "_source", "nested", "path", "filter", "filters",
                         "exists", "gte", "order", "currency", "geoip", "products", "date_histogram",
                         "avg", "multi_match", "fields", "composite", "sources", "function_score",
                         "functions", "top_hits", "highlight", "collapse", "x"]),
        children, max_size=3),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_VALUES)
def test_never_raises_on_random_json(v: ElasticDslValidator, value: Any) -> None:
    result = v.validate(json.dumps(value), ECOM)
    assert not any(e.startswith("could not check") for e in result.errors), result.errors
    v.equivalent(json.dumps(value), json.dumps(value), ECOM)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_never_raises_on_random_text(v: ElasticDslValidator, text: str) -> None:
    assert isinstance(v.validate(text, ECOM).valid, bool)


# ------------------------------------------------------------------------------- equivalence
EQUIVALENT = [
    ({"query": {"match": {"category": "x"}}}, {"query": {"match": {"category": {"query": "x"}}}}),
    ({"query": {"term": {"sku": "x"}}}, {"query": {"term": {"sku": {"value": "x"}}}}),
    ({"query": {"match_phrase": {"category": "a b"}}}, {"query": {"match_phrase": {"category": {"query": "a b"}}}}),
    ({"query": {"prefix": {"sku": "ZO"}}}, {"query": {"prefix": {"sku": {"value": "ZO"}}}}),
    ({"query": {"wildcard": {"sku": "ZO*"}}}, {"query": {"wildcard": {"sku": {"wildcard": "ZO*"}}}}),
    ({"size": 1, "query": {"match_all": {}}}, {"query": {"match_all": {}}, "size": 1}),
    ({"aggs": {"a": {"terms": {"field": "sku"}, "aggs": {"b": {"avg": {"field": "total_quantity"}}}}}},
     {"aggregations": {"a": {"aggregations": {"b": {"avg": {"field": "total_quantity"}}}, "terms": {"field": "sku"}}}}),
    ({"query": {"bool": {"filter": [{"term": {"a": 1}}, {"term": {"b": 2}}]}}},
     {"query": {"bool": {"filter": [{"term": {"b": {"value": 2}}}, {"term": {"a": 1}}]}}}),
    ({"query": {"bool": {"must": {"match": {"category": "x"}}}}},
     {"query": {"bool": {"must": [{"match": {"category": "x"}}]}}}),
    ({"query": {"bool": {"must": [{"match": {"a": "x"}}], "should": []}}},
     {"query": {"bool": {"must": [{"match": {"a": "x"}}]}}}),
    ({"query": {"nested": {"path": "p", "query": {"bool": {"filter": [{"term": {"x": 1}}, {"term": {"y": 2}}]}}}}},
     {"query": {"nested": {"path": "p", "query": {"bool": {"filter": [{"term": {"y": 2}}, {"term": {"x": 1}}]}}}}}),
    ({"query": {"terms": {"sku": ["b", "a"]}}}, {"query": {"terms": {"sku": ["a", "b"]}}}),
    ({"sort": "order_date"}, {"sort": [{"order_date": {"order": "asc"}}]}),
    ({"sort": [{"order_date": "desc"}, "_score"]}, {"sort": [{"order_date": {"order": "desc"}}, {"_score": "desc"}]}),
    ({"aggs": {"f": {"filter": {"term": {"a": "x"}}}}}, {"aggs": {"f": {"filter": {"term": {"a": {"value": "x"}}}}}}),
]
NOT_EQUIVALENT = [
    ({"query": {"match": {"category": "x"}}}, {"query": {"match": {"category": "y"}}}),
    ({"query": {"match": {"category": "x"}}}, {"query": {"match_phrase": {"category": "x"}}}),
    ({"query": {"bool": {"must": [{"term": {"a": 1}}]}}}, {"query": {"bool": {"filter": [{"term": {"a": 1}}]}}}),
    ({"sort": [{"a": "asc"}, {"b": "asc"}]}, {"sort": [{"b": "asc"}, {"a": "asc"}]}),
    ({"sort": "order_date"}, {"sort": [{"order_date": "desc"}]}),
    ({"query": {"term": {"a": True}}}, {"query": {"term": {"a": "true"}}}),
    ({"size": 10}, {"size": 11}),
]


@pytest.mark.parametrize(("a", "b"), EQUIVALENT, ids=range(len(EQUIVALENT)))
def test_equivalent(v: ElasticDslValidator, a: dict[str, Any], b: dict[str, Any]) -> None:
    assert v.equivalent(json.dumps(a), json.dumps(b), ECOM)
    assert v.equivalent(json.dumps(b), json.dumps(a), ECOM)


@pytest.mark.parametrize(("a", "b"), NOT_EQUIVALENT, ids=range(len(NOT_EQUIVALENT)))
def test_not_equivalent(v: ElasticDslValidator, a: dict[str, Any], b: dict[str, Any]) -> None:
    assert not v.equivalent(json.dumps(a), json.dumps(b), ECOM)


def test_equivalent_needs_two_bodies(v: ElasticDslValidator) -> None:
    assert not v.equivalent("not json", "not json", ECOM)
    assert not v.equivalent("[]", "[]", ECOM)
    assert v.execution_match("{}", "{}", ECOM) is None


# ------------------------------------------------------------------------------- speed
def test_validate_is_fast(v: ElasticDslValidator) -> None:
    body = json.dumps({
        "query": {"bool": {"must": [{"match": {"customer_full_name": "Eddie"}}],
                           "filter": [{"range": {"order_date": {"gte": "now-7d"}}}, {"term": {"currency": "EUR"}}]}},
        "aggs": {"by_day": {"date_histogram": {"field": "order_date", "calendar_interval": "day"},
                            "aggs": {"revenue": {"sum": {"field": "taxful_total_price"}}}}},
        "size": 0,
    })
    assert v.validate(body, ECOM).valid
    n = 500
    start = time.perf_counter()
    for _ in range(n):
        v.validate(body, ECOM)
    per_call = (time.perf_counter() - start) / n
    assert per_call < 0.002  # ~85 µs measured; generous for loaded CI machines
