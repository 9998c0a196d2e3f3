"""The main job on the embedded default: the shipped Elasticsearch expert on the tiny base, on CPU.

Four steps, each with progress: the dataset (generated when missing), the tiny base (built once and
cached), training with a checkpoint every 100 steps (the tiny base's defaults in
:data:`expertkit.training.train.TINY_TRAINING`), each checkpoint scored on the held-out eval set as it is saved
and training stopped early once the expert's metric stops rising
(:data:`expertkit.training.train_eval.QUICKSTART_EVAL`), and the comparison of the base and every checkpoint,
which reuses the scores recorded while training (only the base is generated then), with the reports
written next to the run. Run again, it reuses a finished (or early-stopped) run and resumes an
interrupted one.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from expertkit import console
from expertkit.core.checkpoints import Run
from expertkit.core.fileio import check_output_dir
from expertkit.evaluation.compare import CompareOptions, CompareResult, compare_run
from expertkit.evaluation.report import headline
from expertkit.expert import Expert
from expertkit.models.base import TINY, shipped_experts_dir
from expertkit.training.train_eval import QUICKSTART_EVAL

QUICKSTART_EXPERT = "elastic"


@dataclass
class QuickstartResult:
    """Where the run and reports are, the comparison, and how long it all took."""

    run_dir: Path
    compare: CompareResult
    seconds: float


def _say(message: str) -> None:
    console.stderr.print(message, highlight=False)


def _passive_openmp_threads() -> None:
    """Let idle OpenMP threads sleep instead of spin (before torch loads; ``OMP_WAIT_POLICY`` wins).

    Spinning threads of a small model's tiny matrix products make CPU training several times slower
    whenever any other process wants the same cores; sleeping ones cost little when the cores are free.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _train(expert: Expert, run_dir: Path, base: str, steps: int | None, save_every: int | None,
           max_examples: int | None) -> None:
    """Train, resume an interrupted run, or keep a finished one."""
    from expertkit.training.train import TrainOptions, train_expert

    folder = Run(run_dir)
    run = folder.record
    if run is not None:
        progress = folder.progress(run)
        if progress.finished:
            how = "stopped early at" if progress.stopped_early else "already trained to"
            _say(f"  {run_dir} is {how} step {progress.done}; delete it to train again")
            return
        _say(f"  resuming {run_dir} from step {progress.done} of {progress.planned}")
        result = train_expert(expert, TrainOptions(out_dir=run_dir, resume=True))
    else:
        scoring = {**QUICKSTART_EVAL, "eval_every": save_every or QUICKSTART_EVAL["eval_every"]}
        result = train_expert(expert, TrainOptions(base=base, out_dir=run_dir, steps=steps, save_every=save_every,
                                                   max_examples=max_examples, **scoring))
    _say(str(result))


def _print_recorded(run_dir: Path) -> None:
    """The scores recorded while training, one line per evaluation."""
    run = Run(run_dir).record
    rows = run.evaluations if run is not None else []
    if run is None or not rows:
        return
    best = (run.best or {}).get("name")
    _say("  scores recorded while training:")
    for row in rows:
        cells = ", ".join(f"{key} {row[key]:.3f}" for key in ("valid", "correct", "reasoning")
                          if isinstance(row.get(key), int | float))
        mark = "  <- best" if row.get("name") == best else ""
        _say(f"    {row['name']}: {cells} ({row['cases']} cases, {row['seconds']:.1f} s){mark}")
    if run.stopped is not None:
        _say(f"  {run.stopped.reason}")


def run_quickstart(
    out_dir: str | Path,
    *,
    expert_dir: str | Path | None = None,
    base: str = TINY,
    steps: int | None = None,
    save_every: int | None = None,
    max_examples: int | None = None,
    max_cases: int | None = None,
) -> QuickstartResult:
    """Data, tiny base, CPU training with checkpoints, comparison and reports under ``out_dir``.

    The keyword arguments exist for tests and experiments; the defaults are the main job (the shipped
    expert, the tiny base's training defaults, the whole held-out eval set).
    """
    t0 = time.perf_counter()
    _passive_openmp_threads()
    console.print_messages()  # a command-line orchestrator: it prints what the library logs
    out = Path(out_dir)
    check_output_dir(out, key="--out", ours=["run", "compare"])  # a folder of someone else's files is refused
    expert = Expert.load(expert_dir if expert_dir is not None else shipped_experts_dir() / QUICKSTART_EXPERT)

    _say(f"[bold]1/4 data[/bold]: expert {expert.name!r} ({expert.root})")
    if not (expert.train_path.is_file() and expert.eval_path.is_file()):
        from expertkit.authoring.generators import generate_dataset

        for split, (path, n) in generate_dataset(expert).items():
            _say(f"  generated {split}: {n} records -> {path}")
    else:
        _say(f"  using {expert.train_path} and {expert.eval_path}")

    _say("[bold]2/4 base[/bold]")
    t = time.perf_counter()
    if base == TINY:
        from expertkit.models.base import tiny_base_path

        _say(f"  tiny base: {tiny_base_path()} ({time.perf_counter() - t:.1f} s)")
    else:
        _say(f"  base: {base}")

    _say("[bold]3/4 training[/bold] on CPU")
    run_dir = out / "run"
    _train(expert, run_dir, base, steps, save_every, max_examples)

    _print_recorded(run_dir)

    _say("[bold]4/4 comparing[/bold] the base and every checkpoint on the held-out eval set")
    with console.progress() as bars:
        compared = compare_run(expert, CompareOptions(run_dir=run_dir, out_dir=out / "compare", max_cases=max_cases),
                               progress=bars)
    console.print_compared(compared)
    seconds = time.perf_counter() - t0
    best = compared.best
    _say(f"\n[bold green]done in {seconds / 60:.1f} min[/bold green]: run in {run_dir}, reports in {out / 'compare'}")
    _say(f"  {headline(compared.report)}")
    _say(f"  open {compared.paths['html']} in a browser")
    if best:
        _say(f"  package the best checkpoint: expertkit package {expert.root} "
             f"--checkpoint {run_dir / best['name']} --out {expert.name}.expert")
    return QuickstartResult(run_dir=run_dir, compare=compared, seconds=seconds)
