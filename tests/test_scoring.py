"""The one scoring function: strict verdicts (text around an answer is not a direct answer), the seed
system's real raw outputs judged as a reader would judge them, ``validate`` on raw output, and lint on
the seed system's real training file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from expertkit.authoring.lint import lint_file
from expertkit.cli import app
from expertkit.expert import Expert
from expertkit.kinds.scoring import VERDICTS, score_output, summarize
from expertkit.models.base import shipped_experts_dir

SHIPPED = shipped_experts_dir()
FIELDS = {"Dialect": "elastic", "Task": "query_dsl", "Index": "kibana_sample_data_flights"}
GOLD = '{"query":{"term":{"FlightDelay":true}}}'




# ---------------------------------------------------------------------- strict verdicts
@pytest.mark.parametrize(
    ("raw", "verdict", "text"),
    [
        (GOLD, "direct_valid", []),
        (f"  {GOLD}\n", "direct_valid", []),
        (f"```json\n{GOLD}\n```", "answer_with_text", ["the answer is wrapped in a code fence"]),
        (f"```\n{GOLD}\n```", "answer_with_text", ["the answer is wrapped in a code fence"]),
        (f"{GOLD}\nThis query returns the delayed flights.", "answer_with_text",
         ["text after the answer: 'This query returns the delayed flights.'"]),
        (f"Answer: {GOLD}", "answer_with_text", ["text before the answer: 'Answer:'"]),
        (f"I will filter on FlightDelay, which holds the delay. {GOLD}", "reasoning_and_valid", []),
        (f"<think>\nA term on FlightDelay.\n</think>\n\n```json\n{GOLD}\n```", "reasoning_and_valid",
         ["the answer is wrapped in a code fence"]),
        (f"```json\n{GOLD[:-3]}\n```", "invalid", []),
    ],
)
def test_text_around_a_valid_answer_is_not_a_direct_answer(elastic: Expert, raw: str, verdict: str,
                                                            text: list[str]) -> None:
    s = score_output(elastic, raw, FIELDS, GOLD)
    assert s.verdict == verdict
    if verdict != "invalid":
        assert s.valid and s.equivalent and s.answer == GOLD and s.text == text


def test_direct_valid_rate_counts_only_clean_answers(elastic: Expert) -> None:
    raws = (GOLD, f"```json\n{GOLD}\n```", f"{GOLD} It finds the delayed flights.")
    scores = [score_output(elastic, raw, FIELDS, GOLD) for raw in raws]
    m = summarize(scores)
    assert m["valid"] == 1.0 and m["direct_valid"] == pytest.approx(1 / 3)
    assert m["answer_with_text"] == pytest.approx(2 / 3) and list(m["verdicts"]) == list(VERDICTS)


def test_sql_trailing_prose_is_text(sql_expert: Expert) -> None:
    fields = {"Schema": "CREATE TABLE t (a INT);"}
    assert score_output(sql_expert, "SELECT a FROM t", fields).verdict == "direct_valid"
    s = score_output(sql_expert, "SELECT a FROM t;\n\nThis returns every a.", fields)
    assert s.verdict == "answer_with_text" and s.answer == "SELECT a FROM t;"
    assert score_output(sql_expert, "```sql\nSELECT a FROM t\n```", fields).verdict == "answer_with_text"


# ---------------------------------------------------------------------- the seed system's real outputs
def _seed(realdata: Path, expert: str) -> list[dict[str, Any]]:
    path = realdata / "seed-system" / expert / "model_outputs_from_checkpoint_comparison.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


#: (test id, model) → what a reader sees in the elastic expert's outputs that are not "reasoning, cut off".
ELASTIC_READ = {
    ("dsl_001", "checkpoint-150"): ("reasoning_and_valid", False),  # think block, then the bare answer
    ("dsl_001", "checkpoint-200"): ("reasoning_and_valid", True),  # think block, then a ```json fence
    ("dsl_001", "checkpoint-202"): ("reasoning_and_valid", True),  # … a pretty-printed body in a fence
    ("dsl_002", "checkpoint-150"): ("reasoning_and_valid", True),  # … in a ```ts fence
    ("dsl_002", "checkpoint-200"): ("reasoning_and_valid", True),
}
#: The KQL answers after a closed think block: a reader sees reasoning and a KQL (not Query DSL) answer.
ELASTIC_KQL_AFTER_THINKING = {("kql_002", "checkpoint-150"), ("kql_002", "checkpoint-200"),
                              ("kql_002", "checkpoint-202")}


def test_seed_elastic_outputs_get_a_readers_verdict(realdata: Path, elastic: Expert) -> None:
    rows = _seed(realdata, "expert-elastic")
    assert len(rows) == 56
    for r in rows:
        fields = dict(line.split(": ", 1) for line in r["system_prompt"].splitlines())
        s = score_output(elastic, r["output"], fields)
        key = (r["test_id"], r["model"])
        if key in ELASTIC_READ:
            verdict, fenced = ELASTIC_READ[key]
            assert (s.verdict, s.reasoning_kind) == (verdict, "think_block"), key
            assert ("the answer is wrapped in a code fence" in s.text) == fenced, key
        elif key in ELASTIC_KQL_AFTER_THINKING:
            assert (s.verdict, s.reasoning_kind) == ("reasoning_only", "think_block"), key
            assert "process" in s.answer and not s.valid, key
        else:  # thinking cut off by the token limit: no answer at all
            assert (s.verdict, s.reasoning_kind, s.answer) == ("reasoning_only", "unclosed_think", ""), key
            assert s.errors == ["no answer: the think block never closes"]


#: checkpoint-250 outputs of the SQL expert that are not "the answer drafted in a think block, then given".
SQL_READ = {
    "join_001": ("unclosed_think", None),  # thinking cut off
    "window_001": ("unclosed_think", None),
    "join_002": ("think_block", "product_id"),  # answered, with a column the schema lacks
    "date_002": ("think_block", "SELECT"),  # answered with a bare SELECT, cut off by the limit
}


def test_seed_sql_outputs_get_a_readers_verdict(realdata: Path, sql_expert: Expert) -> None:
    rows = _seed(realdata, "expert-sql")
    assert len(rows) == 34
    verdicts = {}
    for r in rows:
        schema = r["system_prompt"].split("Schema:\n", 1)[1]
        s = score_output(sql_expert, r["output"], {"Schema": schema})
        verdicts[r["test_id"], r["model"]] = s.verdict
        if r["model"] == "base":  # every base output thinks until the token limit
            assert (s.verdict, s.reasoning_kind) == ("reasoning_only", "unclosed_think"), r["test_id"]
        elif r["test_id"] in SQL_READ:
            kind, clue = SQL_READ[r["test_id"]]
            assert (s.verdict, s.reasoning_kind) == ("reasoning_only", kind), r["test_id"]
            if clue:
                assert clue in " ".join(s.errors) + s.answer, (r["test_id"], s.errors)
        else:  # thinking (often just the answer drafted in the think block), then a valid answer
            assert (s.verdict, s.reasoning_kind, s.text) == ("reasoning_and_valid", "think_block", []), r["test_id"]
            assert s.answer.startswith("SELECT") and s.answer.endswith(";")
    assert sum(v == "reasoning_and_valid" for v in verdicts.values()) == 13


# ---------------------------------------------------------------------- validate on raw output
def test_validate_judges_raw_output_like_compare(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["validate", str(SHIPPED / "elastic"), "--field", "Dialect=es", "--field", "Task=query_dsl",
            "--field", "Index=kibana_sample_data_flights"]
    raw = f"<think>\nA term on FlightDelay.\n</think>\n\n```json\n{GOLD}\n```\nThat is all."
    r = runner.invoke(app, [*args, "--output", raw, "--gold", GOLD, "--json"])
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert body["verdict"] == "reasoning_and_valid" and body["valid"] and body["answer"] == GOLD
    assert body["reasoning_kind"] == "think_block" and body["equivalent"] is True
    assert body["text"] == ["the answer is wrapped in a code fence", "text after the answer: 'That is all.'"]
    r = runner.invoke(app, [*args, "--output", f"```json\n{GOLD}\n```"])
    assert r.exit_code == 0 and "answer_with_text" in r.stdout and "code fence" in r.stdout
    r = runner.invoke(app, [*args, "--output", "<think>\nhmm, delayed flights"])
    assert r.exit_code == 1 and "reasoning_only" in r.stdout and "never closes" in r.stdout


# ---------------------------------------------------------------------- lint on the seed system's file
def test_lint_of_the_seed_training_file(realdata: Path, elastic: Expert) -> None:
    report = lint_file(elastic, realdata / "seed-system" / "expert-elastic" / "train.jsonl")
    assert report.records == 10_023
    # 1,012 EQL/KQL answers are queries in another language, not reasoning
    assert "reasoning_in_answer" not in report.counts
    # every answer whose Index is present is validated although its record has other findings
    # (the tags wrapper, unknown values); the others are counted, not silently skipped
    assert (report.validated, report.not_validated) == (25, 9_998)
    assert report.counts["invalid_answer"] == 1
    skipped = [f for f in report.findings if f.code == "not_validated"]
    assert len(skipped) == 1 and "9998" in skipped[0].message and "Index" in skipped[0].message


def test_lint_validates_answers_whose_needed_fields_are_present(tmp_path: Path, elastic: Expert) -> None:
    flights = "kibana_sample_data_flights"
    records = [
        # an unknown extra field and a value outside the contract: the answer is still judged (Index is there)
        {"fields": {"Dialect": "elastic", "Task": "eql", "Index": flights, "Domain": "x"}, "question": "late ones",
         "answer": '{"query":{"term":{"NoSuchField":true}}}'},
        {"fields": {"Dialect": "es", "Task": "query_dsl", "Index": flights}, "question": "late flights",
         "answer": f"```json\n{GOLD}\n```"},
        # no Index: not judged, counted
        {"fields": {"Dialect": "elastic", "Task": "eql"}, "question": "processes",
         "answer": 'process where process.name == "cmd.exe"'},
        {"fields": {"Dialect": "elastic", "Task": "query_dsl", "Index": flights}, "question": "delayed",
         "answer": GOLD},
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    report = lint_file(elastic, path)
    by_line = {(f.line, f.code) for f in report.findings}
    assert (1, "unknown_field") in by_line or (1, "unknown_value") in by_line
    assert (1, "invalid_answer") in by_line  # judged despite the record's field findings
    assert (2, "text_in_answer") in by_line and (2, "invalid_answer") not in by_line
    assert not any(line == 3 for line, code in by_line if code in ("invalid_answer", "reasoning_in_answer"))
    assert not any(line == 4 for line, _ in by_line)
    assert (report.validated, report.not_validated) == (3, 1)
