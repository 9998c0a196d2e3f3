"""Training: the answer-only label mask, checkpoints and their records, resume, continue, refusals, accelerate."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from _mini import mini_base, mini_expert, mini_records
from safetensors.torch import load_file
from transformers import TrainerCallback

from expertkit.core.checkpoints import Run, load_checkpoint
from expertkit.core.errors import DriftError, ExpertkitError
from expertkit.expert import Expert
from expertkit.models.base import load_model, load_tokenizer
from expertkit.training.train import (
    TINY_TRAINING,
    QuestionNoise,
    TrainOptions,
    build_trainer,
    encode_dataset,
    plan_run,
    train_expert,
)


@pytest.fixture(scope="module")
def expert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mini_expert(tmp_path_factory.mktemp("mini"), 64, evals=8)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, expert_dir: Path) -> str:
    return mini_base(tmp_path_factory.mktemp("b"), expert_dir)


def _copy_expert(expert_dir: Path, dest: Path) -> Path:
    shutil.copytree(expert_dir, dest)
    return dest


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    name = "adapter_model.safetensors" if (checkpoint / "adapter_model.safetensors").is_file() else "model.safetensors"
    return load_file(str(checkpoint / name))


def _loss_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "loss.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------------- the label mask
def test_labels_cover_only_the_answer_and_end_of_turn(expert_dir: Path, base: str, tmp_path: Path) -> None:
    expert = Expert.load(expert_dir)
    tokenizer = load_tokenizer(base)
    data = encode_dataset(expert, tokenizer, max_examples=6)
    plan = plan_run(expert, TrainOptions(base=base, steps=1, method="lora", question_noise=0, max_tokens_per_batch=0),
                    base, data.examples)  # padded batches (padding-free ones: tests/test_packing.py)
    trainer = build_trainer(expert, plan, data, tokenizer, tmp_path / "run")
    rows = [trainer.train_dataset[i] for i in range(6)]
    batch = trainer.data_collator(rows)  # what TRL's collator hands the model
    records = mini_records(6)
    for i, record in enumerate(records):
        ids, labels, attention = batch["input_ids"][i], batch["labels"][i], batch["attention_mask"][i]
        trained = [int(t) for t, lab in zip(ids, labels, strict=True) if lab != -100]
        assert tokenizer.decode(trained) == record["answer"] + "<|im_end|>"
        # every label is the input token or -100; the masked ones are the prompt and the padding
        n = int(attention.sum())
        assert all(lab in (-100, int(t)) for t, lab in zip(ids.tolist(), labels.tolist(), strict=True))
        first = next(k for k, lab in enumerate(labels.tolist()) if lab != -100)
        assert tokenizer.decode(ids[:first]) == expert.render(record["fields"], record["question"])
        assert tokenizer.decode(ids[:first]).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
        assert (labels[first:n] != -100).all() and (labels[n:] == -100).all()


def test_question_noise_touches_only_question_tokens(expert_dir: Path, base: str, tmp_path: Path) -> None:
    expert = Expert.load(expert_dir)
    tokenizer = load_tokenizer(base)
    data = encode_dataset(expert, tokenizer)
    plan = plan_run(expert, TrainOptions(base=base, steps=1, question_noise=0.5, max_tokens_per_batch=0), base,
                    data.examples)
    trainer = build_trainer(expert, plan, data, tokenizer, tmp_path / "run")
    noise = trainer.data_collator
    assert isinstance(noise, QuestionNoise)
    rows = [trainer.train_dataset[i] for i in range(64)]
    clean = noise.collator(rows)["input_ids"]
    first, again = noise(rows)["input_ids"], noise(rows)["input_ids"]
    assert torch.equal(first, again)  # the same epoch and examples: the same noise
    noise.epoch = 1
    assert not torch.equal(noise(rows)["input_ids"], first)
    changed = hidden = 0
    control = set(tokenizer.added_tokens_decoder)
    for i, row in enumerate(rows):
        start, end = row["question_span"]
        assert tokenizer.decode(clean[i, start:end]) == mini_records(64)[i]["question"]
        diff = (first[i] != clean[i]).nonzero().flatten().tolist()
        assert all(start <= k < end for k in diff) and not control & set(first[i, start:end].tolist())
        changed += len(diff)
        hidden += end - start
    assert 0.35 < changed / hidden < 0.55  # about half, less the draws of the same token


def test_tiny_base_defaults_and_manifest_defaults(expert_dir: Path, base: str) -> None:
    expert = Expert.load(expert_dir)
    tiny = plan_run(expert, TrainOptions(base=base), base, examples=64)
    assert (tiny.method, tiny.learning_rate, tiny.batch_size, tiny.steps, tiny.question_noise) == (
        TINY_TRAINING["method"], TINY_TRAINING["learning_rate"], TINY_TRAINING["batch_size"], TINY_TRAINING["steps"],
        TINY_TRAINING["question_noise"])
    given = plan_run(expert, TrainOptions(base=base, method="dora", epochs=2, batch_size=8), base, examples=64)
    assert (given.method, given.steps, given.lora is not None) == ("dora", 16, True)
    real = plan_run(expert, TrainOptions(), "Qwen/Qwen3-0.6B", examples=64)  # the manifest's recipe
    assert (real.method, real.learning_rate, real.batch_size, real.steps, real.question_noise) == (
        "lora", 1e-3, 8, 8, 0.0)


# ---------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("method", ["lora", "dora"])
def test_adapter_checkpoints_are_whole_and_load_with_peft(
    expert_dir: Path, base: str, tmp_path: Path, method: str
) -> None:
    from peft import PeftModel

    expert = Expert.load(expert_dir)
    run = tmp_path / "run"
    result = train_expert(expert, TrainOptions(base=base, out_dir=run, method=method, steps=2, save_every=1))
    assert result.checkpoints == ["checkpoint-1", "checkpoint-2"] and result.steps == 2
    assert result.tokens > 0 and result.tokens_per_second > 0 and "tokens/s" in str(result)
    assert not [p for p in run.iterdir() if p.name.startswith("tmp-")]
    for ck in Run(run).checkpoints():
        files = {p.name for p in ck.path.iterdir()}
        assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "optimizer.pt",
                "trainer_state.json", "rng_state.pth", "chat_template.jinja", "expert.yaml"} <= files
        assert (ck.path / "chat_template.jinja").read_text() == expert.contract.chat_template()
        assert (ck.path / "expert.yaml").read_text() == (expert_dir / "expert.yaml").read_text()
        record = ck.record
        assert record.fingerprint == expert.fingerprint and record.contract == expert.contract.canonical()
        assert (record.method, record.base, record.expert) == (method, base, "mini")
        assert isinstance(record.loss, float)
        assert json.loads((ck.path / "adapter_config.json").read_text())["use_dora"] is (method == "dora")
    model = PeftModel.from_pretrained(load_model(base, device="cpu"), str(run / "checkpoint-2"))
    assert sum(p.numel() for n, p in model.named_parameters() if "lora_" in n) > 0
    recorded = Run(run).record
    assert recorded is not None
    assert (recorded.method, recorded.fingerprint, recorded.options["steps"]) == (method, expert.fingerprint, 2)
    assert _loss_steps(run) == [1, 2]


def test_refuses_an_out_folder_that_holds_a_run(expert_dir: Path, base: str, tmp_path: Path) -> None:
    expert = Expert.load(expert_dir)
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    with pytest.raises(ExpertkitError, match="already holds a run"):
        train_expert(expert, TrainOptions(base=base, out_dir=run, steps=1))
    with pytest.raises(ExpertkitError, match="no run to resume"):
        train_expert(expert, TrainOptions(base=base, out_dir=tmp_path / "empty", resume=True))


# ---------------------------------------------------------------------- interruption and resume
class _InterruptAt(TrainerCallback):
    """Sends this process SIGINT (a Ctrl-C) at the end of one step."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_interrupted_run_resumes_to_the_same_weights(expert_dir: Path, base: str, tmp_path: Path) -> None:
    expert = Expert.load(expert_dir)
    common = {"base": base, "method": "lora", "steps": 6, "save_every": 2, "learning_rate": 5e-3}
    whole = train_expert(expert, TrainOptions(out_dir=tmp_path / "whole", **common))
    assert whole.steps == 6

    run = tmp_path / "cut"
    cut = train_expert(expert, TrainOptions(out_dir=run, callbacks=[_InterruptAt(3)], **common))
    assert cut.interrupted and cut.steps < 6
    assert Run(run).checkpoints()[-1].step == cut.steps  # Ctrl-C saved a complete checkpoint there
    # a save killed halfway and a folder without a record are never resumed from
    half = run / f"tmp-checkpoint-{cut.steps + 1}"
    shutil.copytree(run / f"checkpoint-{cut.steps}", half)
    (half / "expertkit.json").unlink()
    shutil.copytree(half, run / f"checkpoint-{cut.steps + 1}")
    with pytest.raises(ExpertkitError, match="continue-to"):
        train_expert(expert, TrainOptions(out_dir=run, resume=True, steps=9))
    resumed = train_expert(expert, TrainOptions(out_dir=run, resume=True))
    assert (resumed.start_step, resumed.steps, resumed.interrupted) == (cut.steps, 6, False)
    assert not half.exists()
    assert _loss_steps(run) == [1, 2, 3, 4, 5, 6]
    a, b = _weights(tmp_path / "whole" / "checkpoint-6"), _weights(run / "checkpoint-6")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=1e-5)
    with pytest.raises(ExpertkitError, match="finished at step 6"):
        train_expert(expert, TrainOptions(out_dir=run, resume=True))


def test_continue_to_extends_a_finished_run(expert_dir: Path, base: str, tmp_path: Path) -> None:
    expert = Expert.load(expert_dir)
    run = tmp_path / "run"
    train_expert(expert, TrainOptions(base=base, out_dir=run, steps=3, save_every=3))
    with pytest.raises(ExpertkitError, match="must be larger"):
        train_expert(expert, TrainOptions(out_dir=run, continue_to=3))
    more = train_expert(expert, TrainOptions(out_dir=run, continue_to=5))
    assert (more.method, more.start_step, more.steps) == ("full", 3, 5)
    assert [c.step for c in Run(run).checkpoints()] == [3, 5]
    state = json.loads((run / "checkpoint-5" / "trainer_state.json").read_text())
    assert state["global_step"] == 5 and state["max_steps"] == 5
    recorded = Run(run).record
    assert recorded is not None and recorded.options["steps"] == 5
    assert [h.action for h in recorded.history] == ["train", "continue"]
    assert _loss_steps(run) == [1, 2, 3, 4, 5]
    assert (run / "checkpoint-5" / "model.safetensors").is_file()


def test_resume_refuses_contract_drift(expert_dir: Path, base: str, tmp_path: Path) -> None:
    root = _copy_expert(expert_dir, tmp_path / "expert")
    run = tmp_path / "run"
    train_expert(Expert.load(root), TrainOptions(base=base, out_dir=run, steps=1, save_every=1))
    manifest = root / "expert.yaml"
    manifest.write_text(manifest.read_text().replace("aliases: {es: elastic}", "aliases: {es: elastic, e: elastic}"))
    drifted = Expert.load(root)
    with pytest.raises(DriftError, match="allow-drift"):
        train_expert(drifted, TrainOptions(out_dir=run, continue_to=2))
    result = train_expert(drifted, TrainOptions(out_dir=run, continue_to=2, allow_drift=True))
    assert result.steps == 2
    assert load_checkpoint(run / "checkpoint-2").fingerprint == drifted.fingerprint


# ---------------------------------------------------------------------- lint first
def test_lint_errors_refuse_training_unless_forced(expert_dir: Path, base: str, tmp_path: Path) -> None:
    root = _copy_expert(expert_dir, tmp_path / "expert")
    bad = mini_records(2, offset=500)
    bad[0]["answer"] = '{"query": '
    bad[1]["fields"]["Index"] = "no_such_index"
    with (root / "data" / "train.jsonl").open("a") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in bad))
    expert = Expert.load(root)
    with pytest.raises(ExpertkitError, match=r"2 error\(s\).*invalid_answer 1.*unknown_value 1.*--force"):
        train_expert(expert, TrainOptions(base=base, out_dir=tmp_path / "run", steps=1))
    assert not (tmp_path / "run").exists()
    forced = train_expert(expert, TrainOptions(base=base, out_dir=tmp_path / "run", steps=1, force=True))
    assert (forced.examples, forced.skipped) == (65, 1)


# ---------------------------------------------------------------------- launchers
def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "2"}


def test_accelerate_launch_one_cpu_process(expert_dir: Path, base: str, tmp_path: Path) -> None:
    accelerate = Path(sys.executable).parent / "accelerate"
    run = tmp_path / "run"
    proc = subprocess.run(
        [str(accelerate), "launch", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", "--cpu", "-m", "expertkit.cli", "train", str(expert_dir), "--base", base,
         "--out", str(run), "--steps", "2", "--save-every", "2", "--method", "lora"],
        capture_output=True, text=True, env=_env(), timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [c.step for c in Run(run).checkpoints()] == [2]
    assert "tokens/s" in proc.stdout


def test_ctrl_c_from_the_cli_saves_and_exits_cleanly(expert_dir: Path, base: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    expertkit = Path(sys.executable).parent / "expertkit"
    proc = subprocess.Popen(
        [str(expertkit), "train", str(expert_dir), "--base", base, "--out", str(run), "--steps", "100000",
         "--save-every", "100000", "--method", "full"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )
    try:
        start = time.monotonic()
        while not ((run / "loss.jsonl").is_file() and (run / "loss.jsonl").read_text().count("\n") >= 2):
            assert proc.poll() is None and time.monotonic() - start < 120
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "interrupted" in stdout
    (latest,) = Run(run).checkpoints()
    assert latest.step == json.loads((run / "loss.jsonl").read_text().splitlines()[-1])["step"]
