"""Settings declared once: manifest < profile < command line, ``--set``, and resume comparing plans."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from _reliability import BADINPUT, assert_one_line_error, run_main

from expertkit.core.checkpoints import RunRecord
from expertkit.core.errors import ExpertkitError
from expertkit.core.log import logger
from expertkit.core.manifest import Manifest, parse_manifest
from expertkit.core.settings import PROFILES, parse_set, resolve_settings
from expertkit.training.train import TrainOptions, TrainPlan, _resumed_plan, resolve_plan

MANIFEST = parse_manifest(
    (BADINPUT / "expert" / "expert.yaml").read_text()
    + "  learning_rate: 0.01\n  batch_size: 4\n  lora_r: 8\n  steps: 30\n  warmup_ratio: 0.1\n"
    + "decoding:\n  max_new_tokens: 40\n")


def test_resolve_order_manifest_then_profile_then_overrides() -> None:
    assert resolve_settings(MANIFEST).training.learning_rate == 0.01  # the manifest over the defaults
    tiny = resolve_settings(MANIFEST, "tiny").training
    assert (tiny.learning_rate, tiny.batch_size, tiny.lora_r) == (PROFILES["tiny"]["training"]["learning_rate"],
                                                                 16, 8)  # the profile over the manifest
    given = resolve_settings(MANIFEST, "tiny", {"training.learning_rate": 5e-4, "decoding.max_new_tokens": 9})
    assert (given.training.learning_rate, given.training.batch_size, given.decoding.max_new_tokens) == (5e-4, 16, 9)
    # --epochs over a profile's (or manifest's) steps: the steps are counted from the epochs
    plan = resolve_plan(MANIFEST, "tiny", {"training.epochs": 2}, base="b", base_path="b", examples=64)
    assert (plan.steps, plan.method, plan.warmup_steps) == (8, "full", 8)
    plan = resolve_plan(MANIFEST, None, {}, base="b", base_path="b", examples=64)
    assert (plan.steps, plan.method, plan.warmup_steps, plan.lora["r"]) == (30, "lora", 3, 8)


def test_a_profile_over_the_manifest_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    monkeypatch.setattr(logger, "handlers", [handler])
    monkeypatch.setattr(logger, "level", logging.INFO)
    monkeypatch.setattr(logger, "_cache", {})  # what isEnabledFor remembered from the level before
    resolve_plan(MANIFEST, "tiny", {"training.batch_size": 4}, base="b", base_path="b", examples=64)
    assert lines == ["profile tiny over the manifest's training settings: learning_rate 0.01 -> 0.003, "
                     "steps 30 -> 1200 (--profile none keeps the manifest's)"]
    lines.clear()
    resolve_plan(parse_manifest((BADINPUT / "expert" / "expert.yaml").read_text()), "tiny", {}, base="b",
                 base_path="b", examples=64)
    assert lines == []  # the manifest sets none of the profile's settings: nothing to say


def test_set_parses_values_and_refuses_unknown_keys() -> None:
    assert parse_set(["training.target_modules=[q_proj, v_proj]", "training.steps=null",
                      "decoding.constrain=none"]) == {"training.target_modules": ["q_proj", "v_proj"],
                                                      "training.steps": None, "decoding.constrain": "none"}
    with pytest.raises(ExpertkitError, match=r"did you mean training\.learning_rate"):
        parse_set(["training.learning_rat=1"])
    with pytest.raises(ExpertkitError, match=r"unknown setting 'training\.lr' \(settings: decoding\.\*\)$"):
        parse_set(["training.lr=1"], ["decoding"])
    with pytest.raises(ExpertkitError, match=r"unknown setting 'evaluation\.nope' \(evaluation\.\*: metric, "):
        parse_set(["evaluation.nope=1"])  # no far-fetched "did you mean"
    with pytest.raises(ExpertkitError, match=r"SECTION\.KEY=VALUE"):
        parse_set(["training.steps"])


@pytest.mark.parametrize(("setting", "needles"), [
    ("training.lora_dropout=1.5", ["training.lora_dropout", "less than 1"]),
    ("training.method=sgd", ["training.method", "unknown value 'sgd' (lora, dora or full)"]),
    ("training.warmup_ratio=nan", ["training.warmup_ratio", "finite"]),
    ("training.nope=1", ["--set", "unknown setting 'training.nope' (training.*: method,"]),
    ("data.train=other.jsonl", ["--set", "'data.train' is not a setting this command takes (it takes only "
                                "training.*, decoding.*, evaluation.*)"]),  # not train's
    ("decoding.max_new_tokens=0", ["decoding.max_new_tokens", "at least 1"]),  # the scoring while training
])
def test_set_errors_are_one_line_naming_the_key(setting: str, needles: list[str], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    expert = shutil.copytree(BADINPUT / "expert", tmp_path / "expert")
    result = run_main(["train", expert, "--out", tmp_path / "run", "--set", setting], capsys, monkeypatch)
    assert_one_line_error(result, *needles)
    assert not (tmp_path / "run").exists()


def test_resume_compares_plans_setting_by_setting(tmp_path: Path) -> None:
    plan = resolve_plan(MANIFEST, None, {}, base="b", base_path=str(tmp_path), examples=64)
    run = RunRecord(options=plan.to_record())
    with pytest.raises(ExpertkitError, match=r"^training.lora_r: the run was trained with lora_r 8, not 4 \(given by "
                                             r"training.lora_r\); a resumed run keeps its settings \(leave out"):
        _resumed_plan(run, TrainOptions(resume=True, settings={"training.lora_r": 4}), tmp_path, MANIFEST)
    with pytest.raises(ExpertkitError, match=r"--lr: the run was trained with learning_rate 0.01, not 0.02"):
        _resumed_plan(run, TrainOptions(resume=True, learning_rate=0.02), tmp_path, MANIFEST)
    with pytest.raises(ExpertkitError, match=r"--max-examples: .* max_examples None, not 5"):
        _resumed_plan(run, TrainOptions(resume=True, max_examples=5), tmp_path, MANIFEST)
    # --set training.steps names the option typed, not --steps
    with pytest.raises(ExpertkitError, match=r"^training.steps: the run is planned for 30 steps .*--continue-to"):
        _resumed_plan(run, TrainOptions(resume=True, settings={"training.steps": 2}), tmp_path, MANIFEST)
    # the same values and the scoring settings changed: the recorded plan goes on
    resumed = _resumed_plan(run, TrainOptions(resume=True, learning_rate=0.01, eval_every=5, keep="best"), tmp_path,
                            MANIFEST)
    assert (resumed.learning_rate, resumed.eval_every, resumed.keep, resumed.steps) == (0.01, 5, "best", 30)
    assert resumed.given == {"training.eval_every": 5, "training.keep": "best"}  # kept by the next resume
    # a record written before the settings were declared once (lora as a dict, no lora_r) reads back the same
    edited = MANIFEST.model_copy(update={"training": MANIFEST.training.model_copy(update={"learning_rate": 1.0})})
    old = {k: v for k, v in plan.to_record().items()
           if k not in ("lora_r", "lora_alpha", "lora_dropout", "epochs", "profile", "given", "resolved")}
    assert TrainPlan.from_record(old, edited.training, tmp_path).settings() == {
        **plan.settings(), "epochs": edited.training.epochs}


def _edited(**training: object) -> Manifest:
    return MANIFEST.model_copy(update={"training": MANIFEST.training.model_copy(update=training)})


def test_resume_resolves_the_manifest_as_it_is_now(tmp_path: Path) -> None:
    manifest = tmp_path / "expert.yaml"
    manifest.write_text("name: x\ntraining:\n  seed: 7\n")
    # trained with --seed 3 and --lr 0.02 on the command line: a resume need not repeat them
    plan = resolve_plan(MANIFEST, None, {"training.seed": 3, "training.learning_rate": 0.02}, base="b",
                        base_path=str(tmp_path), examples=64)
    run = RunRecord(options=plan.to_record())
    assert _resumed_plan(run, TrainOptions(resume=True), tmp_path, MANIFEST).seed == 3
    # an edit of a setting the command line gave is shadowed by it; an edit of another one is refused
    assert _resumed_plan(run, TrainOptions(resume=True), tmp_path, _edited(seed=7)).seed == 3
    with pytest.raises(ExpertkitError, match=r"^.*expert.yaml:3: training.seed: the run was trained with seed 42, "
                                             r"not 7 \(from the manifest\); a resumed run keeps its settings"):
        plain = resolve_plan(MANIFEST, None, {}, base="b", base_path=str(tmp_path), examples=64)
        _resumed_plan(RunRecord(options=plain.to_record()), TrainOptions(resume=True), tmp_path,
                      _edited(seed=7), manifest)
    # the scoring settings follow the manifest; its steps only with --continue-to
    resumed = _resumed_plan(run, TrainOptions(resume=True), tmp_path, _edited(eval_every=5))
    assert resumed.eval_every == 5
    with pytest.raises(ExpertkitError, match=r"training.steps: the run is planned for 30 steps \(steps 30\), not "
                                             r"steps 60 \(from the manifest\); use --continue-to"):
        _resumed_plan(run, TrainOptions(resume=True), tmp_path, _edited(steps=60))
    extended = _resumed_plan(run, TrainOptions(continue_to=90), tmp_path, _edited(steps=60))
    assert extended.resolved is not None and extended.resolved["steps"] == 60  # the next resume compares with 60
    # a profile: the run's is kept; another one is refused naming --profile
    tiny = resolve_plan(MANIFEST, "tiny", {}, base="b", base_path=str(tmp_path), examples=64)
    run = RunRecord(options=tiny.to_record())
    assert _resumed_plan(run, TrainOptions(resume=True), tmp_path, MANIFEST).learning_rate == 3e-3
    with pytest.raises(ExpertkitError, match=r"^--profile: .* \(from --profile none\)"):
        _resumed_plan(run, TrainOptions(resume=True, profile="none"), tmp_path, MANIFEST)


@pytest.mark.parametrize(("command", "setting", "message"), [
    (["compare", "{expert}", "--run", "{run}"], "training.steps=1",
     "'training.steps' is not a setting this command takes (it takes only decoding.*, evaluation.*)"),
    (["serve", "{expert}"], "evaluation.batch_size=2", "'evaluation.batch_size' is not a setting this command takes"),
    (["ask", "{expert}", "why?"], "decoding.max_new_token=2",
     "unknown setting 'decoding.max_new_token'; did you mean decoding.max_new_tokens?"),
])
def test_each_command_sets_only_the_settings_it_uses(command: list[str], setting: str, message: str,
                                                     tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    args = [a.format(expert=BADINPUT / "expert", run=tmp_path) for a in command]
    result = run_main([*args, "--set", setting], capsys, monkeypatch)
    assert_one_line_error(result, "--set", message)


def test_an_expert_with_settings_overridden(tmp_path: Path) -> None:
    from expertkit.expert import Expert

    expert = Expert.load(BADINPUT / "expert")
    changed = expert.with_settings({"decoding.max_new_tokens": 7, "evaluation.metric": "correct"})
    assert (changed.manifest.decoding.max_new_tokens, changed.manifest.evaluation.metric) == (7, "correct")
    assert expert.manifest.decoding.max_new_tokens == 256 and changed.fingerprint == expert.fingerprint
    with pytest.raises(ExpertkitError, match=r"decoding\.top_p: must be at most 1, got 2"):
        expert.with_settings({"decoding.top_p": 2})
