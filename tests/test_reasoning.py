"""Reasoning detection and answer extraction: think blocks, unclosed think, prose, fences, clean answers."""

from __future__ import annotations

import pytest

from expertkit.core.data import read_examples
from expertkit.core.reasoning import analyze_output, is_prose
from expertkit.expert import Expert
from expertkit.kinds import kind_class
from expertkit.models.base import shipped_experts_dir

Q = '{"query":{"term":{"FlightDelay":true}}}'
CUT = '{"query":{"bool":{"should":[{"term":{"Dest":"Cape Town"}}'  # a truncated answer, words and all


@pytest.mark.parametrize(
    ("raw", "kind", "answer"),
    [
        (Q, None, Q),
        (f"<think>\n\n</think>\n\n{Q}", None, Q),  # the empty block of non-thinking mode
        (f"<think>\nThe user wants delayed flights.\n</think>\n\n{Q}", "think_block", Q),
        (f"The user wants delayed flights.\n</think>\n\n{Q}", "think_block", Q),  # opening tag was in the prompt
        (f"Sure.<think></think>{Q}", "think_block", Q),
        ("<think>\nThe user wants delayed flights, so I will use a term", "unclosed_think", ""),
        (f"<think>\nI will answer {Q}", "unclosed_think", ""),
        (f"Let me work out which field holds the delay. {Q}", "prose", Q),
        ("Okay, so the user is asking about flights that were delayed", "prose", ""),
        (f"```json\n{Q}\n```", None, Q),
        (f"Answer:\n```json\n{Q}\n```", None, Q),  # a label is not prose
        (f"Here is the query you need:\n```json\n{Q}\n```\nIt filters delayed flights.", "prose", Q),
        (f"{Q} This query filters the delayed flights.", None, Q),  # trailing prose is dropped
        (Q + "}", None, Q + "}"),  # trailing junk stays, for the validator to reject
        (CUT, None, CUT),
        ("", None, ""),
        ("}}}", None, "}}}"),
    ],
)
def test_json_outputs(raw: str, kind: str | None, answer: str) -> None:
    a = analyze_output(raw, kind_class("elastic_dsl"))
    assert (a.kind, a.answer) == (kind, answer)
    assert a.has_reasoning == (kind is not None)
    assert a.raw == raw


def test_reasoning_text_is_kept() -> None:
    a = analyze_output(f"<think>\nstep one\n</think>\nSo the answer is: {Q}", kind_class("elastic_dsl"))
    assert a.kind == "think_block"
    assert "step one" in a.reasoning and "So the answer is:" in a.reasoning
    assert analyze_output("<think>half a thought", kind_class("sql")).reasoning == "half a thought"


def test_json_kind_takes_top_level_arrays() -> None:
    assert analyze_output('[{"a": 1}, {"b": 2}]', kind_class("json")).answer == '[{"a": 1}, {"b": 2}]'
    assert analyze_output('Here it is, as you asked: [1, 2]', kind_class("json")).answer == "[1, 2]"
    # an elastic body is an object: a bracket in prose is not the answer
    assert analyze_output('see [1] and {"size": 0}', kind_class("elastic_dsl")).answer == '{"size": 0}'


@pytest.mark.parametrize(
    ("raw", "kind", "answer"),
    [
        ("SELECT name FROM customers", None, "SELECT name FROM customers"),
        ("select name from customers", None, "select name from customers"),
        ("WITH t AS (SELECT 1 AS x) SELECT x FROM t", None, "WITH t AS (SELECT 1 AS x) SELECT x FROM t"),
        ("Okay, let me select the right rows first.\nSELECT name FROM customers;\nThat is all.", "prose",
         "SELECT name FROM customers;"),
        ("With the schema above, the query is: SELECT id FROM orders", "prose", "SELECT id FROM orders"),
        ("I would select the rows with a filter on the city", "prose", ""),
        ("```sql\nSELECT 1\n```", None, "SELECT 1"),
        ("<think>\nneed a count\n</think>\n\nSELECT COUNT(*) FROM t", "think_block", "SELECT COUNT(*) FROM t"),
        ("SELECT a FROM t\n\nThis returns a.", None, "SELECT a FROM t"),
        ("name FROM t", None, "name FROM t"),  # no statement: returned whole for the validator to reject
    ],
)
def test_sql_outputs(raw: str, kind: str | None, answer: str) -> None:
    a = analyze_output(raw, kind_class("sql"))
    assert (a.kind, a.answer) == (kind, answer)


def test_prose_needs_words_outside_json() -> None:
    assert is_prose("Let me think about it")
    assert not is_prose("Answer:")
    assert not is_prose('{"query":{"bool":{"should":[')
    assert not is_prose('"customer full name"')


@pytest.mark.parametrize("name", ["elastic", "sql"])
def test_no_gold_answer_of_the_shipped_experts_looks_like_reasoning(name: str) -> None:
    expert = Expert.load(shipped_experts_dir() / name)
    examples, _ = read_examples(expert.eval_path)
    for ex in examples:
        assert ex.answer is not None
        a = analyze_output(ex.answer, expert.kind)
        assert not a.has_reasoning, ex.answer
        assert a.answer == ex.answer.strip()
