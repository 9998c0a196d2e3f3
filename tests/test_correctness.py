"""Correctness beyond validity: Query DSL component match (parts, precision/recall/F1, differences),
grounding against the question and the shipped known values, and the generator that ships them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from expertkit.authoring.generators import generate_dataset
from expertkit.core.data import load_examples
from expertkit.expert import Expert
from expertkit.kinds.correctness import match_parts
from expertkit.kinds.scoring import score_output
from expertkit.models.base import shipped_experts_dir
from expertkit_experts.elastic.generator import known_values

SHIPPED = shipped_experts_dir()
FLIGHTS = {"Dialect": "elastic", "Task": "query_dsl", "Index": "kibana_sample_data_flights"}



def test_parts_follow_the_canonical_form(elastic: Expert) -> None:
    m = elastic.matcher
    assert m is not None
    body = ('{"query":{"bool":{"filter":[{"term":{"Carrier":"JetBeats"}},{"range":{"AvgTicketPrice":{"gte":100,'
            '"lt":500}}}],"must_not":[{"terms":{"DestCountry":["IT","FR"]}}]}},"aggs":{"by":{"terms":{"field":'
            '"Dest","size":5},"aggs":{"avg":{"avg":{"field":"FlightTimeMin"}}}}},"sort":[{"timestamp":"desc"}],'
            '"size":0}')
    assert sorted(m.parts(body) or []) == sorted([
        ("query/and", "Carrier", "term", '"JetBeats"'),
        ("query/and", "AvgTicketPrice", "range.gte", "100"),
        ("query/and", "AvgTicketPrice", "range.lt", "500"),
        ("query/and/not", "DestCountry", "terms", '"FR"'),
        ("query/and/not", "DestCountry", "terms", '"IT"'),
        ("aggs", "Dest", "terms", '""'),
        ("aggs", "Dest", "terms.size", "5"),
        ("aggs/terms:Dest", "FlightTimeMin", "avg", '""'),
        ("sort", "timestamp", "sort", '"desc"'),
        ("size", "", "=", "0"),
    ])
    # shorthand, key order, agg names and must-vs-filter do not change the parts
    a = '{"query":{"term":{"Carrier":"JetBeats"}}}'
    b = '{"query":{"bool":{"must":{"term":{"Carrier":{"value":"JetBeats"}}}}}}'
    assert m.parts(a) == m.parts(b)
    assert m.parts("{not json") is None


@pytest.mark.parametrize(
    ("answer", "f1", "differences"),
    [
        ('{"query":{"range":{"FlightTimeMin":{"lt":180}}}}', 1.0, []),
        ('{"query":{"range":{"FlightTimeMin":{"lte":180}}}}', 0.0, ["wrong_operator"]),
        ('{"query":{"range":{"FlightTimeMin":{"lt":120}}}}', 0.0, ["wrong_value"]),
        ('{"query":{"range":{"FlightDelayMin":{"lt":180}}}}', 0.0, ["wrong_field"]),
        ('{"query":{"range":{"dayOfWeek":{"gte":11000}}}}', 0.0, ["missing_clause", "extra_clause"]),
        ('{"query":{"range":{"FlightTimeMin":{"lt":180}}},"size":5}', 2 / 3, ["extra_clause"]),
        ('{"size":5}', 0.0, ["missing_clause", "extra_clause"]),
        ('{"query":', 0.0, []),  # does not parse: broken, not a difference
    ],
)
def test_component_match(elastic: Expert, answer: str, f1: float, differences: list[str]) -> None:
    gold = '{"query":{"range":{"FlightTimeMin":{"lt":180}}}}'
    found = elastic.matcher.compare(answer, gold)  # type: ignore[union-attr]
    assert found is not None and found.f1 == pytest.approx(f1) and found.differences == differences


def test_partial_credit_is_precision_and_recall_of_parts() -> None:
    gold = [("q", "a", "term", "1"), ("q", "b", "term", "2"), ("size", "", "=", "10")]
    found = match_parts([("q", "a", "term", "1"), ("q", "c", "term", "3")], gold)
    assert (found.precision, found.recall) == (0.5, pytest.approx(1 / 3)) and found.f1 == pytest.approx(0.4)
    assert found.differences == ["missing_clause", "extra_clause"]
    assert match_parts([], []).f1 == 1.0 and match_parts([], gold).f1 == 0.0


@pytest.mark.parametrize(
    ("answer", "question", "ungrounded"),
    [
        ('{"query":{"term":{"DestWeather":"Heco"}}}', "flights landing in rain", ["DestWeather='Heco'"]),
        ('{"query":{"term":{"DestWeather":"Rain"}}}', "flights landing in the wet", []),  # a known value
        ('{"query":{"term":{"Carrier":"Acme Air"}}}', "flights of acme air", []),  # in the question
        ('{"query":{"match":{"Dest":"Narita airport"}}}', "airport called Narita", []),  # its words are
        ('{"query":{"wildcard":{"Dest":{"value":"*Zork*"}}}}', "airports with zork", []),
        ('{"query":{"wildcard":{"Dest":{"value":"*Zork*"}}}}', "airports with a k", ["Dest='*Zork*'"]),
        ('{"query":{"range":{"timestamp":{"gte":"now-7d/d"}}}}', "last week", []),  # date math
        ('{"query":{"range":{"dayOfWeek":{"gte":11000}}}}', "flight duration in minutes lower than 180",
         ["dayOfWeek=11000"]),
        ('{"query":{"range":{"FlightTimeMin":{"lt":180}}}}', "flight duration in minutes lower than 180", []),
        ('{"query":{"range":{"DistanceKilometers":{"gte":1000}}}}', "at least 1,000 km", []),
        ('{"query":{"range":{"DistanceKilometers":{"gte":1000}}}}', "at least 10000 km", ["DistanceKilometers=1000"]),
        ('{"size":11000,"query":{"term":{"Cancelled":true}}}', "cancelled ones", []),  # size, booleans: not judged
        ('{"query":{"terms":{"OriginCountry":["IT","ZZ"]}}}', "from italy", ["OriginCountry='ZZ'"]),
    ],
)
def test_grounding(elastic: Expert, answer: str, question: str, ungrounded: list[str]) -> None:
    assert elastic.matcher.ungrounded(answer, FLIGHTS, question) == ungrounded  # type: ignore[union-attr]


def test_no_shipped_gold_answer_is_ungrounded_or_partial(elastic: Expert) -> None:
    m = elastic.matcher
    assert m is not None
    for path in (elastic.eval_path, elastic.train_path):
        for ex in load_examples(path):
            assert ex.answer is not None
            assert m.ungrounded(ex.answer, dict(ex.fields), ex.question) == [], (ex.line, ex.answer)
            assert m.compare(ex.answer, ex.answer).f1 == 1.0  # type: ignore[union-attr]


def test_score_gives_correctness_and_error_kinds(elastic: Expert) -> None:
    gold = '{"query":{"range":{"FlightTimeMin":{"lt":180}}}}'
    q = "flight duration in minutes lower than 180"
    wrong = score_output(elastic, '{"query":{"range":{"dayOfWeek":{"gte":11000}}}}', FLIGHTS, gold, q)
    assert wrong.verdict == "direct_valid" and wrong.valid and wrong.correct is False  # valid is not correct
    assert wrong.component == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert wrong.error_kinds == ["ungrounded_value", "missing_clause", "extra_clause"]
    assert wrong.ungrounded == ["dayOfWeek=11000"]  # nothing in the question says 11000
    made_up = score_output(elastic, '{"query":{"term":{"DestWeather":"Heco"}}}', FLIGHTS, gold, q)
    assert made_up.ungrounded == ["DestWeather='Heco'"] and "ungrounded_value" in made_up.error_kinds
    right = score_output(elastic, f"```json\n{gold}\n```", FLIGHTS, gold, q)
    assert right.correct and right.error_kinds == ["trailing_text"] and right.component["f1"] == 1.0  # type: ignore[index]
    broken = score_output(elastic, '<think>\nhmm\n</think>\n{"query":', FLIGHTS, gold, q)
    assert broken.error_kinds == ["broken_json", "reasoning"]
    arranged = score_output(elastic, '{"query":{"bool":{"must":[{"range":{"FlightTimeMin":{"lt":180}}}]}}}',
                            FLIGHTS, '{"query":{"bool":{"filter":[{"range":{"FlightTimeMin":{"lt":180}}}]}}}', q)
    assert arranged.correct is False and arranged.component["f1"] == 1.0  # type: ignore[index]
    assert arranged.error_kinds == ["wrong_structure"]
    unknown = score_output(elastic, '{"query":{"term":{"NoSuchField":1}}}', FLIGHTS, gold, q)
    assert "invalid" in unknown.error_kinds and "broken_json" not in unknown.error_kinds



def test_sql_parts(sql_expert: Expert) -> None:
    m = sql_expert.matcher
    assert m is not None
    sql = ("SELECT c.name, COUNT(DISTINCT o.id) AS n FROM customers AS c JOIN orders AS o ON o.customer_id = c.id "
           "WHERE c.city = 'Paris' AND (o.status IN ('a', 'b') OR NOT o.total > 5) "
           "GROUP BY c.name HAVING COUNT(*) > 2 ORDER BY n DESC LIMIT 5")
    assert sorted(m.parts(sql) or []) == sorted([
        ("select", "name", "", ""), ("select", "id", "count.distinct", ""),
        ("from", "customers", "from", ""), ("from", "orders", "join", ""),
        ("where", "city", "eq", "'paris'"), ("where/or", "status", "in", "'a'"), ("where/or", "status", "in", "'b'"),
        ("where/or", "total", "not_gt", "5"), ("group", "name", "", ""), ("having", "count(*)", "gt", "2"),
        ("order", "n", "desc", ""), ("limit", "", "=", "5"),
    ])
    # aliases and qualifiers do not change the parts; a subquery's are its own
    assert m.parts("SELECT x.name FROM customers x") == m.parts("SELECT name FROM customers")
    sub = m.parts("SELECT name FROM t WHERE id IN (SELECT tid FROM u WHERE k = 1)") or []
    assert ("sub/where", "k", "eq", "1") in sub and ("sub/from", "u", "from", "") in sub
    assert m.parts("SELEC name FRM t") is None


def test_sql_correctness_is_execution_match(sql_expert: Expert) -> None:
    expert = sql_expert
    case = next(ex for ex in load_examples(expert.eval_path) if "FROM customers" in (ex.answer or ""))
    fields = expert.contract.normalize(dict(case.fields))
    gold = "SELECT name FROM customers ORDER BY id"
    s = score_output(expert, "SELECT email FROM customers ORDER BY id", fields, gold, case.question)
    assert s.valid and s.execution_match is False and s.correct is False
    assert s.error_kinds == ["wrong_field", "wrong_result"]  # select, from, order: the select differs
    assert s.component == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3})
    right = score_output(expert, "SELECT c.name FROM customers AS c ORDER BY c.id", fields, gold)
    assert right.correct is True and right.error_kinds == []
    made_up = score_output(expert, "SELECT name FROM customers WHERE city = 'Atlantis'", fields, gold, "customers")
    assert made_up.ungrounded == ["city='Atlantis'"] and "ungrounded_value" in made_up.error_kinds
    m = expert.matcher
    assert m is not None
    assert m.ungrounded("SELECT id FROM orders WHERE total > 500", fields, "orders over 50") == ["total=500"]
    assert m.ungrounded("SELECT id FROM orders WHERE total > 5000 LIMIT 3", fields, "orders over 5,000") == []
    assert m.ungrounded("SELECT id FROM customers WHERE name LIKE 'Ann%'", fields, "names starting with ann") == []
    broken = score_output(expert, "SELECT name FROM customers WHERE (", fields, gold)
    assert "broken_sql" in broken.error_kinds and "broken_json" not in broken.error_kinds


def test_no_shipped_sql_gold_answer_is_ungrounded(sql_expert: Expert) -> None:
    m = sql_expert.matcher
    assert m is not None
    for ex in load_examples(sql_expert.eval_path):
        assert ex.answer is not None and m.parts(ex.answer)
        assert m.ungrounded(ex.answer, dict(ex.fields), ex.question) == [], (ex.line, ex.answer)


def test_known_values_are_shipped_and_reproducible(tmp_path: Path, elastic: Expert) -> None:
    folder = SHIPPED / "elastic" / "values"
    values = known_values()
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{index}.json" for index in values)
    for index, fields in values.items():
        shipped = (folder / f"{index}.json").read_text(encoding="utf-8")
        assert shipped == json.dumps(fields, indent=2, ensure_ascii=False) + "\n"  # the generator's bytes
    assert "Rain" in values["kibana_sample_data_flights"]["DestWeather"]
    # data generate writes them; twice gives the same bytes, and a missing file comes back
    copy = tmp_path / "elastic"
    shutil.copytree(SHIPPED / "elastic", copy, ignore=shutil.ignore_patterns("data", "values"))
    generate_dataset(_loaded(copy), train_size=5, eval_size=2)
    first = {p.name: p.read_bytes() for p in (copy / "values").iterdir()}
    (copy / "values" / "kibana_sample_data_logs.json").unlink()
    generate_dataset(_loaded(copy), train_size=5, eval_size=2)
    assert {p.name: p.read_bytes() for p in (copy / "values").iterdir()} == first
    assert first == {p.name: p.read_bytes() for p in folder.iterdir()}


def _loaded(root: Path) -> Expert:
    """The expert at ``root``, whose ``values`` folder may not exist yet (the generator makes it)."""
    from expertkit.core.manifest import load_manifest

    return Expert(root, load_manifest(root))


def test_a_kind_without_a_matcher_has_none(tmp_path: Path) -> None:
    from expertkit.core.manifest import OutputSpec
    from expertkit.kinds import bind_kind

    assert bind_kind(tmp_path, OutputSpec(kind="json")).matcher is None


def test_matchers_never_raise_on_outputs(elastic: Expert, sql_expert: Expert) -> None:
    import random

    rng = random.Random(7)
    atoms: list[object] = [1, -2.5, "x", "now-1d", True, None, [], {}, [1, "a"], {"a": 1}]
    keys = ["query", "aggs", "sort", "size", "bool", "must", "filter", "should", "must_not", "term", "terms",
            "range", "match", "multi_match", "query_string", "exists", "field", "fields", "gte", "value",
            "nested", "dis_max", "queries", "constant_score", "avg", "date_histogram"]

    def body(depth: int = 0) -> object:
        if depth > 4 or rng.random() < 0.3:
            return rng.choice(atoms)
        if rng.random() < 0.7:
            return {rng.choice(keys): body(depth + 1) for _ in range(rng.randint(1, 3))}
        return [body(depth + 1) for _ in range(rng.randint(0, 3))]

    fields = {**FLIGHTS, "Index": "../../etc/passwd"}  # an Index is a name, never a path to read
    for _ in range(300):
        text = json.dumps({"query": body(), "aggs": body(), "sort": body()})
        s = score_output(elastic, text, fields, text, "q 1")
        assert s.component is None or 0.0 <= s.component["f1"] <= 1.0
    for raw in ["SELECT", "WITH a AS (SELECT 1) SELECT * FROM a", "SELECT * FROM t UNION SELECT * FROM u LIMIT ALL",
                "SELECT CASE WHEN a THEN 1 END FROM t WHERE NOT (a OR b)", "DROP TABLE t", "((("]:
        s = score_output(sql_expert, raw, {"Schema": "CREATE TABLE t (a INT);"}, "SELECT a FROM t", "q")
        assert s.correct is not True and s.error_kinds
