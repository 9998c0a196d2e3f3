"""Data-parallel training: two CPU processes (gloo) under ``accelerate launch`` train like one process with the
same global batch; the run and checkpoint records say how many processes took part; resume works; only the
main process writes files and logs."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _mini import mini_base, mini_expert
from safetensors.torch import load_file

from expertkit.core.checkpoints import Run
from expertkit.expert import Expert
from expertkit.training.train import TrainOptions, train_expert

STEPS, PER_DEVICE = 2, 4


@pytest.fixture(scope="module")
def expert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mini_expert(tmp_path_factory.mktemp("mini-ddp"), 32)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, expert_dir: Path) -> str:
    return mini_base(tmp_path_factory.mktemp("b"), expert_dir)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _launch(expert_dir: Path, base: str, run: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    accelerate = Path(sys.executable).parent / "accelerate"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
         "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()), "-m", "expertkit.cli", "train",
         str(expert_dir), "--base", base, "--out", str(run), *extra],
        capture_output=True, text=True, env=env, timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint / "model.safetensors"))


def _assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=1e-4, msg=name)


def test_two_processes_train_like_one_with_the_same_global_batch(expert_dir: Path, base: str,
                                                                 tmp_path: Path) -> None:
    run = tmp_path / "two"
    # padded batches: a padding-free budget would group other examples per process than in one process
    proc = _launch(expert_dir, base, run, "--steps", str(STEPS), "--save-every", "1", "--method", "full",
                   "--batch-size", str(PER_DEVICE), "--max-tokens-per-batch", "0")
    # one report, one line per saved checkpoint, one lint line: only the main process speaks
    assert proc.stdout.count("trained:") == 1, proc.stdout
    assert proc.stderr.count("saved checkpoint-2") == 1 and proc.stderr.count("lint:") == 1, proc.stderr[-3000:]
    assert "2 process(es) (gloo), global batch 8 examples" in " ".join(proc.stderr.split())  # lines wrap
    recorded = Run(run).record
    assert recorded is not None
    assert (recorded.world_size, recorded.global_batch, recorded.global_batch_unit) == (2, 8, "examples")
    assert [json.loads(line)["step"] for line in (run / "loss.jsonl").read_text().splitlines()] == [1, 2]
    checkpoints = Run(run).checkpoints()
    assert [c.step for c in checkpoints] == [1, 2]
    assert checkpoints[-1].record.world_size == 2 and checkpoints[-1].record.global_batch == 8
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint-1", "checkpoint-2", "loss.jsonl", "run.json"]

    # one process, the same global batch and seed: the same weights
    one = train_expert(Expert.load(expert_dir), TrainOptions(base=base, out_dir=tmp_path / "one", steps=STEPS,
                                                             save_every=STEPS, method="full",
                                                             batch_size=2 * PER_DEVICE, max_tokens_per_batch=0))
    record = Run(one.run_dir).record
    assert record is not None and record.world_size == 1
    two_weights = _weights(run / "checkpoint-2")
    _assert_close(two_weights, _weights(one.run_dir / "checkpoint-2"))
    assert any(not torch.equal(two_weights[k], v) for k, v in load_file(str(Path(base) / "model.safetensors")).items()
               if k in two_weights)  # it trained

    # resume: checkpoint-2 lost, the two processes redo step 2 from checkpoint-1 and reach the same weights
    shutil.rmtree(run / "checkpoint-2")
    resumed = _launch(expert_dir, base, run, "--resume")
    assert resumed.stdout.count("trained:") == 1 and "resuming from checkpoint-1" in resumed.stderr
    _assert_close(_weights(run / "checkpoint-2"), two_weights)
    assert [json.loads(line)["step"] for line in (run / "loss.jsonl").read_text().splitlines()] == [1, 2]
    record = Run(run).record
    assert record is not None and [h.action for h in record.history] == ["train", "resume"]
