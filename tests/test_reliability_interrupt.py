"""Interrupted training: SIGKILL in the middle of a checkpoint save, then ``--resume``, reaches the weights of an
uninterrupted run; the half-written checkpoint is never listed, compared or packaged. Ctrl-C during a save lets
the save finish, saves where it stops and exits cleanly.

The kill is aimed by a hook that lives in the test: the training subprocess runs the CLI with
``ExpertTrainer._write_expertkit_files`` (the last step of a save, before the record and the rename) wrapped to
signal the process itself at a chosen step.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from _reliability import BADINPUT, cli_env, tiny_base
from safetensors.torch import load_file

from expertkit.core.checkpoints import Run
from expertkit.core.errors import ExpertkitError
from expertkit.expert import Expert
from expertkit.packaging.package import package_expert
from expertkit.training.train import TrainOptions, train_expert

STEPS = 6
SAVE_EVERY = 2
#: The same settings for every run, so that an interrupted and resumed run must equal the uninterrupted one.
COMMON: dict[str, Any] = {"method": "full", "steps": STEPS, "save_every": SAVE_EVERY, "batch_size": 4,
                          "learning_rate": 3e-3, "seed": 11}
HOOK = textwrap.dedent("""
    import os, signal, sys
    from expertkit import cli
    from expertkit.training import train

    at_step, signum = int(sys.argv[1]), getattr(signal, sys.argv[2])
    original = train.ExpertTrainer._write_expertkit_files

    def hooked(self, folder, step):
        if step == at_step:  # weights, optimizer and RNG state are written; record and rename are not
            os.kill(os.getpid(), signum)
        return original(self, folder, step)

    train.ExpertTrainer._write_expertkit_files = hooked
    sys.argv = ["expertkit", *sys.argv[3:]]
    cli.main()
""")


def train_in_subprocess(expert_dir: Path, base: Path, run: Path, *, at_step: int, signum: str
                        ) -> subprocess.CompletedProcess[str]:
    args = ["train", str(expert_dir), "--base", str(base), "--out", str(run), "--method", COMMON["method"],
            "--steps", str(STEPS), "--save-every", str(SAVE_EVERY), "--batch-size", str(COMMON["batch_size"]),
            "--lr", str(COMMON["learning_rate"]), "--seed", str(COMMON["seed"])]
    return subprocess.run([sys.executable, "-c", HOOK, str(at_step), signum, *args], capture_output=True, text=True,
                          env=cli_env(), timeout=300)


def losses(run: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "loss.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows]
    assert steps == sorted(set(steps)), f"loss log repeats or skips steps: {steps}"
    return {r["step"]: r["loss"] for r in rows}


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint / "model.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], atol=1e-5, rtol=1e-4)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny base, the ``badinput`` expert, and one uninterrupted run to compare with."""
    base = tiny_base(tmp_path_factory)
    root = tmp_path_factory.mktemp("interrupt")
    expert_dir = Path(shutil.copytree(BADINPUT / "expert", root / "expert"))
    whole = root / "whole"
    result = train_expert(Expert.load(expert_dir), TrainOptions(base=str(base), out_dir=whole, **COMMON))
    assert result.steps == STEPS and not result.interrupted
    return {"base": base, "expert_dir": expert_dir, "whole": whole}


def test_sigkill_during_a_save_then_resume_reaches_the_same_weights(world: dict[str, Any], tmp_path: Path) -> None:
    expert_dir, base, whole = world["expert_dir"], world["base"], world["whole"]
    run = tmp_path / "run"
    killed = train_in_subprocess(expert_dir, base, run, at_step=4, signum="SIGKILL")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    # the save of step 4 was cut: its folder holds weights and optimizer state but no record, under a temp name
    assert (run / "tmp-checkpoint-4" / "model.safetensors").is_file()
    assert not (run / "tmp-checkpoint-4" / "expertkit.json").exists() and not (run / "checkpoint-4").exists()
    # ... and a folder that merely looks finished (renamed by hand, say) has no record either
    shutil.copytree(run / "tmp-checkpoint-4", run / "checkpoint-5")
    assert [c.step for c in Run(run).checkpoints()] == [2]
    complete, incomplete = Run(run).select(None)
    assert [c.step for c in complete] == [2] and incomplete == ["tmp-checkpoint-4", "checkpoint-5"]
    expert = Expert.load(expert_dir)
    for half in ("tmp-checkpoint-4", "checkpoint-5"):
        with pytest.raises(ExpertkitError, match="incomplete checkpoint"):
            package_expert(expert, run / half, tmp_path / f"{half}.expert")
    assert not list(tmp_path.glob("*.expert")) and not list(tmp_path.glob(".*.expert.*"))
    shutil.rmtree(run / "checkpoint-5")

    resumed = train_expert(expert, TrainOptions(out_dir=run, resume=True))
    assert (resumed.start_step, resumed.steps, resumed.interrupted) == (2, STEPS, False)
    assert [c.step for c in Run(run).checkpoints()] == [2, 4, 6]
    assert not [p.name for p in run.iterdir() if p.name.startswith("tmp-")]
    got, want = losses(run), losses(whole)
    assert list(got) == list(range(1, STEPS + 1))  # the curve continues: every step once, none lost or doubled
    for step in got:
        assert got[step] == pytest.approx(want[step], rel=1e-4, abs=1e-5), step
    for step in (2, 4, 6):
        assert_same_weights(whole / f"checkpoint-{step}", run / f"checkpoint-{step}")


def test_ctrl_c_during_a_save_finishes_it_then_stops_cleanly(world: dict[str, Any], tmp_path: Path) -> None:
    expert_dir, base, whole = world["expert_dir"], world["base"], world["whole"]
    run = tmp_path / "run"
    stopped = train_in_subprocess(expert_dir, base, run, at_step=2, signum="SIGINT")
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    assert "Traceback" not in stopped.stderr and "interrupted" in stopped.stdout
    steps = [c.step for c in Run(run).checkpoints()]
    assert steps[0] == 2 and steps[-1] < STEPS  # the save under way finished; the stop saved where it stopped
    assert not [p.name for p in run.iterdir() if p.name.startswith("tmp-")]
    assert max(losses(run)) == steps[-1]
    resumed = train_expert(Expert.load(expert_dir), TrainOptions(out_dir=run, resume=True))
    assert (resumed.start_step, resumed.steps) == (steps[-1], STEPS)
    assert list(losses(run)) == list(range(1, STEPS + 1))
    assert_same_weights(whole / f"checkpoint-{STEPS}", run / f"checkpoint-{STEPS}")
