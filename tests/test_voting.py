"""Validator-guided decoding: execution voting (SQL), canonical-form voting (ES/JSON), greedy fallback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import test_evaluate

from expertkit.console import print_compared
from expertkit.core.data import load_examples
from expertkit.engines.inference import Stops
from expertkit.engines.inference.generation import Engine, Generation, Sampling
from expertkit.engines.inference.voting import vote
from expertkit.evaluation.compare import CompareOptions, compare_run
from expertkit.expert import Expert
from expertkit.models.base import shipped_experts_dir

small_expert = test_evaluate.small_expert  # the shipped elastic expert, 6 cases, and a run on a tiny base
run_dir = test_evaluate.run_dir


def _g(text: str, logprob: float = -1.0) -> Generation:
    return Generation(text=text, new_tokens=len(text), finished=True, latency_s=0.0, logprob=logprob)


@pytest.fixture(scope="module")
def sql() -> tuple[Expert, dict[str, str]]:
    expert = Expert.load(shipped_experts_dir() / "sql")
    case = next(ex for ex in load_examples(expert.eval_path) if "FROM customers" in (ex.answer or ""))
    return expert, expert.contract.normalize(dict(case.fields))


def test_a_majority_of_equivalent_sql_spellings_beats_one_different_answer(sql: tuple[Expert, dict[str, str]]) -> None:
    expert, fields = sql
    result = vote(expert, fields, [
        _g("SELECT email FROM customers ORDER BY id", logprob=-0.1),  # alone, though the most likely
        _g("SELECT name FROM customers ORDER BY id", logprob=-0.9),
        _g("SELECT c.name AS who FROM customers AS c ORDER BY c.id", logprob=-0.5),
        _g("select name\nfrom customers\norder by id asc", logprob=-0.7),
    ])
    assert result.agreement == "execution"
    assert sorted(result.votes) == [1, 3]
    assert result.chosen == 2  # in the winning group, the most likely spelling
    assert result.candidates[0].group != result.candidates[2].group
    assert result.to_dict()["fallback"] is None


def test_invalid_candidates_never_win(sql: tuple[Expert, dict[str, str]]) -> None:
    expert, fields = sql
    bad = "SELECT nickname FROM customers"  # no such column: the validator rejects it
    result = vote(expert, fields, [_g(bad, -0.01), _g(bad, -0.01), _g(bad, -0.01),
                                   _g("SELECT email FROM customers", -3.0)])
    assert [c.valid for c in result.candidates] == [False, False, False, True]
    assert result.votes == [1] and result.chosen == 3
    assert all(c.group is None for c in result.candidates[:3])
    none_valid = vote(expert, fields, [_g(bad), _g("not sql at all")])
    assert none_valid.chosen is None and none_valid.groups == [] and none_valid.agreement is None
    assert none_valid.to_dict()["fallback"] == "greedy"


def test_ties_go_to_the_more_likely_group(sql: tuple[Expert, dict[str, str]]) -> None:
    expert, fields = sql
    result = vote(expert, fields, [_g("SELECT email FROM customers ORDER BY id", -2.0),
                                   _g("SELECT name FROM customers ORDER BY id", -0.2)])
    assert result.votes == [1, 1] and result.chosen == 1


def test_canonical_form_voting_for_elasticsearch(elastic: Expert) -> None:
    case = load_examples(elastic.eval_path)[0]
    fields = elastic.contract.normalize(dict(case.fields))
    body = json.loads(case.answer or "{}")
    spaced = json.dumps(body, indent=2)  # the same query, another layout
    reordered = json.dumps(dict(reversed(list(body.items()))))  # the same query, keys in another order
    other = json.dumps({"query": {"match_all": {}}, "size": 3})
    result = vote(elastic, fields, [_g(other, -0.1), _g(spaced, -0.8), _g(reordered, -0.6), _g("{", -0.01)])
    assert result.agreement == "canonical"
    assert result.candidates[3].valid is False
    assert sorted(result.votes) == [1, 2] and result.chosen == 2


def test_sampling_is_seeded_and_gives_log_probabilities(run_dir: Path) -> None:
    base = json.loads((run_dir / "run.json").read_text())["options"]["base_path"]
    engine = Engine(base)
    stops = Stops((engine.tokenizer.convert_tokens_to_ids("<|im_end|>"),))
    prompts = [[1, 2, 3, 4], [5, 6, 7]]
    sampling = Sampling(n=3, temperature=1.0, top_p=0.9, seed=11)
    first = engine.sample(prompts, sampling, max_new_tokens=6, stops=stops, batch_size=8)
    again = engine.sample(prompts, sampling, max_new_tokens=6, stops=stops, batch_size=8)
    assert [len(c) for c in first] == [3, 3]

    def drawn(cands: list[list[Generation]]) -> list[list[tuple[str, float | None]]]:
        return [[(g.text, g.logprob) for g in c] for c in cands]

    assert drawn(first) == drawn(again)
    assert all(g.logprob is not None and g.logprob <= 0 for c in first for g in c)
    other = engine.sample(prompts, Sampling(n=3, temperature=1.0, top_p=0.9, seed=12), max_new_tokens=6, stops=stops,
                          batch_size=8)
    assert drawn(other) != drawn(first)
    assert len({g.text for g in first[0]}) > 1  # candidates of one prompt differ


def test_compare_with_samples_records_the_vote(tmp_path: Path, run_dir: Path, small_expert: Expert,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    result = compare_run(small_expert, CompareOptions(run_dir=run_dir, out_dir=tmp_path / "cmp", checkpoints="4",
                                                      max_cases=3, samples=3))
    print_compared(result, as_json=True)
    printed = json.loads(capsys.readouterr().out)
    assert printed == result.report and printed["samples"] == 3
    assert printed["sampling"] == {"temperature": small_expert.manifest.decoding.temperature,
                                   "top_p": small_expert.manifest.decoding.top_p, "seed": 0}
    for case in printed["cases"]:
        for name in ("base", "checkpoint-4"):
            out: dict[str, Any] = case["outputs"][name]
            v = out["vote"]
            assert v["samples"] == 3 and len(v["candidates"]) == 3
            if v["chosen"] is None:  # no valid candidate: the greedy answer, with its own verdict
                assert v["fallback"] == "greedy" and v["valid"] == 0
            else:
                assert out["output"] == v["candidates"][v["chosen"]]["output"] and out["valid"]
    assert [m["samples"] for m in printed["models"]] == [3, 3]
