"""Task-scored checkpoints while training, early stopping, --keep, and compare reusing the recorded scores."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import test_train

from expertkit.core.checkpoints import Run, load_checkpoint
from expertkit.core.errors import ExpertkitError
from expertkit.core.manifest import TrainingSpec
from expertkit.evaluation.compare import CompareOptions, EngineBackend, compare_run
from expertkit.expert import Expert
from expertkit.training.train import TrainOptions, train_expert
from expertkit.training.train_eval import EarlyStopping, EvalSettings, eval_cases

expert_dir = test_train.expert_dir  # the tiny expert and its tiny base (module-scoped fixtures)
base = test_train.base


# ---------------------------------------------------------------------- early stopping, scripted
def _run_sequence(stopper: EarlyStopping, values: list[float | None]) -> int | None:
    """The evaluation (1-based) at which the stopper says stop, or ``None``."""
    for n, value in enumerate(values, 1):
        if stopper.update(n * 10, value):
            return n
    return None


def test_early_stopping_on_a_plateau() -> None:
    stopper = EarlyStopping(patience=3)
    assert _run_sequence(stopper, [0.5, 0.7, 0.7, 0.7, 0.7, 0.9]) == 5
    assert (stopper.best, stopper.best_step) == (0.7, 20)


def test_early_stopping_improvement_resets_the_patience() -> None:
    stopper = EarlyStopping(patience=2)
    assert _run_sequence(stopper, [0.1, 0.1, 0.2, 0.2, 0.3, 0.3, 0.4]) is None
    assert (stopper.best, stopper.since) == (0.4, 0)
    assert _run_sequence(EarlyStopping(patience=2), [0.4, 0.3, 0.2]) == 3  # falling is no improvement


def test_early_stopping_noise_within_min_delta_is_no_improvement() -> None:
    stopper = EarlyStopping(patience=3, min_delta=0.05)
    # +0.03, +0.04, +0.02 above the best: noise, not progress; the reference stays 0.50
    assert _run_sequence(stopper, [0.50, 0.53, 0.54, 0.52]) == 4
    assert stopper.best == 0.50
    assert "has not risen by more than 0.05 above 0.5000 for 3 evaluation(s)" in stopper.reason("valid", 40)
    # a rise above min_delta counts
    assert _run_sequence(EarlyStopping(patience=2, min_delta=0.05), [0.50, 0.53, 0.60, 0.62, 0.64]) == 5
    # unknown values count as no improvement
    assert _run_sequence(EarlyStopping(patience=2), [None, None]) == 2


def test_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(ExpertkitError, match="needs scored checkpoints"):
        EvalSettings(TrainingSpec(early_stop=2)).check()
    with pytest.raises(ExpertkitError, match="best needs scored checkpoints"):
        EvalSettings(TrainingSpec(keep="best")).check()
    with pytest.raises(ExpertkitError, match="--keep: unknown value 'some'"):
        TrainOptions(eval_every=2, keep="some").check()
    EvalSettings(TrainingSpec(keep="last")).check()


def test_eval_cases_subset_is_fixed_by_the_seed(expert_dir: Path) -> None:
    expert = Expert.load(expert_dir)
    every = eval_cases(expert, None, 0)
    some = eval_cases(expert, 3, 5)
    assert len(every) == 8 and len(some) == 3
    assert [c.line for c in some] == [c.line for c in eval_cases(expert, 3, 5)] == sorted(c.line for c in some)
    assert {c.line for c in some} <= {c.line for c in every}


# ---------------------------------------------------------------------- early stopping in a real run
def _scripted(values: dict[int, float]) -> Any:
    def score(model: Any, step: int) -> tuple[dict[str, Any], list[Any], list[Any], float]:
        return {"valid": values[step], "equivalent": values[step] / 2, "reasoning": 0.0}, [], [], 0.01
    return score


def test_scripted_metric_stops_training_keeps_the_best_and_continues(expert_dir: Path, base: str,
                                                                      tmp_path: Path) -> None:
    expert = Expert.load(expert_dir)
    out = tmp_path / "run"
    # evaluations at 2, 4, 6, 8: a rise, then noise within min-delta twice -> stop at 8 (patience 2)
    values = {2: 0.20, 4: 0.50, 6: 0.53, 8: 0.52, 10: 0.9, 12: 0.97, 14: 0.95}
    result = train_expert(expert, TrainOptions(base=base, out_dir=out, steps=14, save_every=100, eval_every=2,
                                               early_stop=2, min_delta=0.05, keep="best",
                                               score_fn=_scripted(values)))
    assert result.steps == 8 and result.stop_reason is not None
    assert "early stop at step 8" in result.stop_reason and "best checkpoint-6 (valid 0.5300)" in result.stop_reason
    assert result.best is not None
    assert (result.best["name"], result.best["step"], result.best["value"]) == ("checkpoint-6", 6, 0.53)
    # --keep best: the best and the latest stay; what is removed leaves no tmp- folder behind
    assert [c.step for c in Run(out).checkpoints()] == [6, 8]
    assert not list(out.glob("tmp-*"))
    run = Run(out).record
    assert run is not None and run.stopped is not None and run.best is not None
    assert run.stopped.step == 8 and run.best["name"] == "checkpoint-6"
    assert [e["step"] for e in run.evaluations] == [2, 4, 6, 8]
    lines = [json.loads(x) for x in (out / "eval.jsonl").read_text().splitlines()]
    assert [(x["step"], x["valid"]) for x in lines] == [(2, 0.2), (4, 0.5), (6, 0.53), (8, 0.52)]
    record = load_checkpoint(out / "checkpoint-8").record.eval
    assert record is not None and record["valid"] == 0.52
    assert "early stop at step 8" in str(result)

    with pytest.raises(ExpertkitError, match=r"stopped early at step 8.*--continue-to"):
        train_expert(expert, TrainOptions(out_dir=out, resume=True, score_fn=_scripted(values)))
    more = train_expert(expert, TrainOptions(out_dir=out, continue_to=14, early_stop=1,
                                             score_fn=_scripted(values)))
    # patience 1 now: 14 does not rise, but it is the last step anyway, so no early stop is reported
    assert more.start_step == 8 and more.steps == 14 and more.stop_reason is None
    assert more.best is not None and more.best["name"] == "checkpoint-12"
    assert [c.step for c in Run(out).checkpoints()] == [12, 14]
    run = Run(out).record
    assert run is not None and run.stopped is None and [e["step"] for e in run.evaluations] == [2, 4, 6, 8, 10, 12, 14]
    assert "stopped" not in json.loads((out / "run.json").read_text())


# ---------------------------------------------------------------------- real scores, reused by compare
@pytest.fixture(scope="module")
def scored_run(tmp_path_factory: pytest.TempPathFactory, expert_dir: Path, base: str) -> Path:
    out = tmp_path_factory.mktemp("scored") / "run"
    train_expert(Expert.load(expert_dir), TrainOptions(base=base, out_dir=out, steps=4, save_every=100,
                                                       eval_every=2))
    return out


def test_checkpoints_are_scored_while_training(scored_run: Path) -> None:
    lines = [json.loads(x) for x in (scored_run / "eval.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2, 4]
    for x in lines:
        assert x["cases"] == 8 and 0 <= x["valid"] <= 1 and x["seconds"] > 0 and x["scorer"] >= 1
    ck = load_checkpoint(scored_run / "checkpoint-4")
    assert ck.record.eval is not None and ck.record.eval["valid"] == lines[1]["valid"]
    recorded = json.loads((scored_run / "checkpoint-4" / "eval.json").read_text())
    assert len(recorded["cases"]) == 8 and all("output" in c and "verdict" in c for c in recorded["cases"])
    run = Run(scored_run).record
    assert run is not None and run.best is not None and run.best["metric"] == "valid"


def test_compare_reuses_recorded_scores_without_generating(scored_run: Path, expert_dir: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    expert = Expert.load(expert_dir)
    generated: list[tuple[str | None, int]] = []
    real = EngineBackend.generate

    def counting(self: EngineBackend, name: str | None, prompts: Any, advance: Any, fields: Any) -> Any:
        generated.append((name, len(prompts)))
        return real(self, name, prompts, advance, fields)

    monkeypatch.setattr(EngineBackend, "generate", counting)
    reused = compare_run(expert, CompareOptions(run_dir=scored_run, out_dir=tmp_path / "a"))
    assert generated == [(None, 8)]  # the base only: no second generation pass for the checkpoints
    assert [m["reused"] for m in reused.report["models"]] == [0, 8, 8]
    generated.clear()
    fresh = compare_run(expert, CompareOptions(run_dir=scored_run, out_dir=tmp_path / "b", rescore=True))
    assert generated == [(None, 8), ("checkpoint-2", 8), ("checkpoint-4", 8)]
    # the scores recorded on the weights in memory are the scores compare gets from the saved weights
    for name in ("checkpoint-2", "checkpoint-4"):
        assert [c["outputs"][name] for c in reused.report["cases"]] == [c["outputs"][name]
                                                                         for c in fresh.report["cases"]]
    assert reused.report["best"] == fresh.report["best"]

    # a changed decoding is not the recorded one: generated again
    generated.clear()
    monkeypatch.setattr(expert.manifest.decoding, "max_new_tokens", 7)
    compare_run(expert, CompareOptions(run_dir=scored_run, out_dir=tmp_path / "c", max_cases=3))
    assert generated == [(None, 3), ("checkpoint-2", 3), ("checkpoint-4", 3)]


def test_cli_options_reach_the_run(expert_dir: Path, base: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "expertkit.cli", "train", str(expert_dir), "--base", base, "--out",
                           str(out), "--steps", "2", "--eval-every", "2", "--eval-cases", "3", "--keep", "last",
                           "--set", "training.weight_decay=0.01"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "eval checkpoint-2: valid" in proc.stderr and "(3 cases," in proc.stderr
    assert "best checkpoint: checkpoint-2" in proc.stdout
    run = Run(out).record
    assert run is not None
    options = run.options
    assert (options["eval_every"], options["eval_cases"], options["keep"], options["weight_decay"]) == (
        2, 3, "last", 0.01)
    bad = subprocess.run([sys.executable, "-m", "expertkit.cli", "train", str(expert_dir), "--base", base, "--out",
                          str(tmp_path / "other"), "--early-stop", "2"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "--early-stop: needs scored checkpoints: give --eval-every N too" in bad.stderr


def test_early_stop_end_to_end_with_real_scores(expert_dir: Path, base: str, tmp_path: Path) -> None:
    # min-delta 1: no rate can rise by more than that, so the second evaluation stops the run
    out = tmp_path / "run"
    result = train_expert(Expert.load(expert_dir), TrainOptions(base=base, out_dir=out, steps=8, save_every=100,
                                                                eval_every=2, eval_cases=2, early_stop=1,
                                                                min_delta=1.0, keep="last"))
    assert result.steps == 4 and result.stop_reason is not None and "early stop at step 4" in result.stop_reason
    assert result.evaluations == 2 and result.eval_seconds > 0
    assert [c.step for c in Run(out).checkpoints()] == [4]  # --keep last
    run = Run(out).record
    assert run is not None and run.stopped is not None and run.stopped.step == 4
