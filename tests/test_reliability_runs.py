"""Silent bad runs: what used to train, score or serve wrongly without a word.

Numeric options are checked before anything is loaded or written, naming the option; a non-finite loss stops
training and keeps the last good checkpoint; a resume refuses changed data, base or method; a key given twice
in a manifest is an error; whitespace drift in a field block is a ``field_format`` finding; truncated weights are
refused when a checkpoint is served, packaged, installed or compared; ``compare --cases`` lints the cases first.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from _reliability import (
    BADINPUT,
    WEIGHTS,
    assert_one_line_error,
    copy_expert,
    run_main,
    snapshot,
    tiny_base,
    write_checkpoint,
)
from transformers import TrainerCallback

import expertkit.evaluation.compare
from expertkit.authoring.lint import check_messages
from expertkit.core.checkpoints import Run, load_checkpoint, sha256_file
from expertkit.core.errors import ExpertkitError
from expertkit.core.manifest import parse_manifest
from expertkit.expert import Expert
from expertkit.packaging.package import package_expert
from expertkit.training.train import TrainOptions, train_expert


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_base(tmp_path_factory)


# ---------------------------------------------------------------------- numeric options, up front
NUMERIC_CASES: dict[str, tuple[list[str], list[str]]] = {
    "train --lr inf": (["train", "{expert}", "--out", "{run}", "--lr", "inf"], ["--lr", "finite"]),
    "train --lr nan": (["train", "{expert}", "--out", "{run}", "--lr", "nan"], ["--lr", "finite"]),
    "train --lr -1": (["train", "{expert}", "--out", "{run}", "--lr", "-1"], ["--lr", "greater than 0"]),
    "train --batch-size 0": (["train", "{expert}", "--out", "{run}", "--batch-size", "0"], ["--batch-size"]),
    "train --batch-size -4": (["train", "{expert}", "--out", "{run}", "--batch-size", "-4"], ["--batch-size"]),
    "train --seed -1": (["train", "{expert}", "--out", "{run}", "--seed", "-1"], ["--seed", "at least 0"]),
    "train --max-examples -1": (["train", "{expert}", "--out", "{run}", "--max-examples", "-1"], ["--max-examples"]),
    "train --save-every 0": (["train", "{expert}", "--out", "{run}", "--save-every", "0"], ["--save-every"]),
    "train --epochs -1": (["train", "{expert}", "--out", "{run}", "--epochs", "-1"], ["--epochs"]),
    "train --steps 0": (["train", "{expert}", "--out", "{run}", "--steps", "0"], ["--steps", "at least 1"]),
    "train --steps 10^30 (an overflow)": (["train", "{expert}", "--out", "{run}", "--steps", "1" + "0" * 30],
                                          ["--steps", "at most"]),
    "train --eval-every 0": (["train", "{expert}", "--out", "{run}", "--eval-every", "0"], ["--eval-every"]),
    "train --early-stop -1": (["train", "{expert}", "--out", "{run}", "--early-stop", "-1"], ["--early-stop"]),
    "train --min-delta nan": (["train", "{expert}", "--out", "{run}", "--min-delta", "nan"], ["--min-delta", "finite"]),
    "score --variants -1": (["score", "{expert}", "--cases", "{expert}/data/eval.jsonl", "--outputs",
                             "{expert}/data/eval.jsonl", "--variants", "-1"], ["--variants", "at least 0"]),
    "compare --max-cases -1": (["compare", "{expert}", "--run", "{done}", "--max-cases", "-1"], ["--max-cases"]),
    "compare --max-cases 0": (["compare", "{expert}", "--run", "{done}", "--max-cases", "0"], ["--max-cases"]),
    "data generate --eval-size 0": (["data", "generate", "{expert}", "--eval-size", "0"], ["--eval-size"]),
    "data generate --train-size -1": (["data", "generate", "{expert}", "--train-size", "-1"], ["--train-size"]),
    "data generate --seed -1": (["data", "generate", "{expert}", "--seed", "-1"], ["--seed"]),
}


@pytest.mark.parametrize("case", sorted(NUMERIC_CASES))
def test_numeric_options_are_checked_up_front(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    expert = copy_expert(tmp_path / "expert")
    done = tmp_path / "done"
    write_checkpoint(done / "checkpoint-1", Expert.load(expert))
    values = {"expert": str(expert), "run": str(tmp_path / "run"), "done": str(done)}
    args, needles = NUMERIC_CASES[case]
    before = snapshot(tmp_path)
    result = run_main([a.format(**values) for a in args], capsys, monkeypatch)
    assert_one_line_error(result, *needles)
    assert snapshot(tmp_path) == before  # no run folder, no run.json: nothing to delete by hand


# ---------------------------------------------------------------------- a non-finite loss
class _PoisonWeights(TrainerCallback):
    """Fault injection: every weight NaN at the end of step ``at`` (as an infinite learning rate does)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if state.global_step == self.at:
            with torch.no_grad():
                for p in model.parameters():
                    p.fill_(math.nan)


def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path: Path, base: Path) -> None:
    expert = Expert.load(copy_expert(tmp_path / "expert"))
    run = tmp_path / "run"
    options = TrainOptions(base=str(base), out_dir=run, steps=6, save_every=2, batch_size=2,
                           callbacks=[_PoisonWeights(3)])
    with pytest.raises(ExpertkitError, match=r"step 4: the (loss|grad norm) is nan.*checkpoint-2") as caught:
        train_expert(expert, options)
    assert str(run) in str(caught.value)
    assert [c.step for c in Run(run).checkpoints()] == [2]  # no checkpoint of spoiled weights
    assert not (run / "checkpoint-4").exists() and not (run / "tmp-checkpoint-4").exists()


# ---------------------------------------------------------------------- resuming with changed inputs
@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, base: Path) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("finished-run")
    expert_dir = copy_expert(root / "expert")
    train_expert(Expert.load(expert_dir), TrainOptions(base=str(base), out_dir=root / "run", steps=2, save_every=2,
                                                       batch_size=2))
    return expert_dir, root / "run"


def _change_data(expert: Path) -> None:
    train = expert / "data" / "train.jsonl"
    lines = train.read_text().splitlines()
    train.write_text("\n".join(lines[:-1]) + "\n")


RESUME_CASES: dict[str, tuple[list[str], list[str]]] = {
    "the training data changed": (["--continue-to", "4"], ["train.jsonl changed", "--continue-to", "--force"]),
    "--base another model": (["--continue-to", "4", "--base", "{other}"], ["--base", "not the run's base"]),
    "--method another method": (["--resume", "--method", "lora"], ["--method", "keeps its settings"]),
    # the plan is resolved from the manifest as it is now: an edit is refused, naming the file and line
    "the manifest's seed edited": (["--continue-to", "4"], ["expert.yaml:13: training.seed", "seed 42, not 7",
                                                             "from the manifest", "restore the manifest"]),
}


@pytest.mark.parametrize("case", sorted(RESUME_CASES))
def test_a_resume_refuses_changed_inputs(case: str, finished: tuple[Path, Path], tmp_path: Path, base: Path,
                                         capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    expert = Path(shutil.copytree(finished[0], tmp_path / "expert"))
    run = Path(shutil.copytree(finished[1], tmp_path / "run"))
    if "data" in case:
        _change_data(expert)
    if "manifest" in case:
        manifest = expert / "expert.yaml"
        manifest.write_text(manifest.read_text().replace("training:\n", "training:\n  seed: 7\n"))
    other = Path(shutil.copytree(base, tmp_path / "other-base"))
    extra, needles = RESUME_CASES[case]
    before = snapshot(run)
    result = run_main(["train", expert, "--out", run, *(a.format(other=other) for a in extra)], capsys, monkeypatch)
    assert_one_line_error(result, *needles)
    assert snapshot(run) == before


# ---------------------------------------------------------------------- duplicate keys in a manifest
MANIFEST = (BADINPUT / "expert" / "expert.yaml").read_text()
DUPLICATE_KEYS = {
    "a second contract block": (MANIFEST + "contract:\n  wrapper: tags\n  fields:\n    - name: Task\n",
                                ["contract", "duplicate key", "first given on line 5"]),
    "a second name": (MANIFEST + "name: renamed\n", ["expert.yaml:", "name", "duplicate key", "line 2"]),
    "a nested key twice": (MANIFEST + "  max_length: 512\n", ["max_length", "duplicate key"]),
}


@pytest.mark.parametrize("case", sorted(DUPLICATE_KEYS))
def test_a_key_given_twice_in_a_manifest_is_an_error(case: str) -> None:
    text, needles = DUPLICATE_KEYS[case]
    with pytest.raises(ExpertkitError) as caught:
        parse_manifest(text, "expert.yaml")
    for needle in needles:
        assert needle in str(caught.value), (needle, str(caught.value))


# ---------------------------------------------------------------------- whitespace drift
DRIFT = {
    "value on the next line": "Dialect:\njson\nTask: extract",
    "space before the colon": "Dialect : json\nTask: extract",
    "no space after the colon": "Dialect:json\nTask: extract",
    "a tab after the colon": "Dialect:\tjson\nTask: extract",
    "a no-break space": "Dialect:\u00a0json\nTask: extract",
    "CRLF line ends": "Dialect: json\r\nTask: extract",
    "a leading blank line": "\nDialect: json\nTask: extract",
}


@pytest.mark.parametrize("case", sorted(DRIFT))
def test_whitespace_drift_is_a_field_format_finding(case: str) -> None:
    expert = Expert.load(BADINPUT / "expert")
    system = DRIFT[case]
    chat = check_messages(expert, [{"role": "system", "content": system}, {"role": "user", "content": "q"}])
    prompt = expert.render({"Dialect": "json", "Task": "extract"}, "q").replace("Dialect: json\nTask: extract", system)
    for findings in (chat, expert.check_prompt(prompt)):
        errors = [f for f in findings if f.severity == "error"]
        assert errors, (case, findings)
        if case != "value on the next line":  # there the block also loses its Task field
            assert [f.code for f in errors] == ["field_format"], errors
            assert errors[0].suggestion in ("Dialect: json", "Task: extract")
    exact = check_messages(expert, [{"role": "system", "content": "Dialect: json\nTask: extract"},
                                    {"role": "user", "content": "q"}])
    assert not [f for f in exact if f.severity == "error"]


# ---------------------------------------------------------------------- truncated weights
TRUNCATED = ("serve", "package", "install", "compare")


@pytest.mark.parametrize("command", TRUNCATED)
def test_truncated_weights_are_refused_naming_the_file(command: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from test_reliability_package import _files, _resummed

    import expertkit.serving.serve

    def nothing_loaded(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the model was loaded before the weights were checked")

    monkeypatch.setattr(expertkit.serving.serve, "build_engine", nothing_loaded)
    monkeypatch.setattr(expertkit.evaluation.compare, "create_engine", nothing_loaded)
    monkeypatch.setenv("EXPERTKIT_HOME", str(tmp_path / "home"))
    expert = copy_expert(tmp_path / "expert")
    checkpoint = write_checkpoint(tmp_path / "run" / "checkpoint-1", Expert.load(expert))
    weights = checkpoint / "adapter_model.safetensors"
    cut = WEIGHTS[: len(WEIGHTS) - 5]
    if command == "install":
        files = _files(package_expert(Expert.load(expert), checkpoint, tmp_path / "whole.expert"))
        (tmp_path / "cut.expert").write_bytes(_resummed({**files, "checkpoint/adapter_model.safetensors": cut}))
    weights.write_bytes(cut)
    args = {
        "serve": ["serve", f"{expert}:{checkpoint}", "--base", "/nonexistent"],
        "package": ["package", expert, "--checkpoint", checkpoint, "--out", tmp_path / "x.expert"],
        "install": ["install", tmp_path / "cut.expert"],
        "compare": ["compare", expert, "--run", tmp_path / "run", "--base", "/nonexistent"],
    }[command]
    result = run_main(args, capsys, monkeypatch)
    needle = "checkpoint/adapter_model.safetensors" if command == "install" else str(weights)
    assert_one_line_error(result, needle, "truncated or damaged")
    assert not (tmp_path / "x.expert").exists() and not (tmp_path / "home" / "experts").exists()


CHANGED_BYTES = ("serve", "package")


@pytest.mark.parametrize("command", CHANGED_BYTES)
def test_weights_that_do_not_match_their_recorded_checksum_are_refused(
        command: str, finished: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A save records each weights file's sha256; a file damaged in place (same size, whole header) is refused
    where it is served or packaged."""
    import expertkit.serving.serve

    monkeypatch.setattr(expertkit.serving.serve, "build_engine", lambda *a, **k: pytest.fail("the model was loaded"))
    expert = Path(shutil.copytree(finished[0], tmp_path / "expert"))
    checkpoint = Path(shutil.copytree(finished[1] / "checkpoint-2", tmp_path / "run" / "checkpoint-2"))
    weights = checkpoint / "model.safetensors"
    recorded = load_checkpoint(checkpoint).record.weights_sha256
    assert recorded == {"model.safetensors": sha256_file(weights)}
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF  # a flipped bit in the last tensor: size and header unchanged
    weights.write_bytes(bytes(data))
    args = {"serve": ["serve", f"{expert}:{checkpoint}", "--base", "/nonexistent"],
            "package": ["package", expert, "--checkpoint", checkpoint, "--out", tmp_path / "x.expert"]}[command]
    result = run_main(args, capsys, monkeypatch)
    assert_one_line_error(result, str(weights), "does not match the sha256")
    assert not (tmp_path / "x.expert").exists()


# ---------------------------------------------------------------------- compare lints its cases first
GOOD_CASE = json.loads((BADINPUT / "expert" / "data" / "train.jsonl").read_text().splitlines()[0])


def _case(answer: str) -> str:
    record = json.loads(json.dumps(GOOD_CASE))
    record["messages"][2]["content"] = answer
    return json.dumps(record)


BAD_CASES = {
    "an invalid gold answer": (_case('{"total": '), "invalid_answer"),
    "an empty gold answer": (_case(""), "missing_answer"),
    "a think block in the gold answer": (_case('<think>let me see</think>{"total": 1}'), "reasoning_in_answer"),
    "a control token in the gold answer": (_case('{"total": "<|im_end|>"}'), "control_token"),
    "longer than the context": (_case(json.dumps({"total": " ".join(["word"] * 3000)})), "too_long"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_compare_lints_its_cases_before_scoring(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def no_scoring(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("scoring started on unchecked cases")

    monkeypatch.setattr(expertkit.evaluation.compare, "create_engine", no_scoring)
    expert = copy_expert(tmp_path / "expert")
    write_checkpoint(tmp_path / "run" / "checkpoint-1", Expert.load(expert))
    line, code = BAD_CASES[case]
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps(GOOD_CASE) + "\n" + line + "\n")
    result = run_main(["compare", expert, "--run", tmp_path / "run", "--cases", cases], capsys, monkeypatch)
    assert_one_line_error(result, f"{cases}:2:", "--cases", code)
