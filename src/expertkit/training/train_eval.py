"""Task-scored checkpoints while training, early stopping by the task, and how many checkpoints stay.

:class:`CheckpointEvaluator` is a ``TrainerCallback``. With ``eval_every`` N, a checkpoint is saved at
every multiple of N (besides ``save_every``) and, once it is whole on disk, scored on the eval cases —
all of them, or a fixed seeded subset of ``eval_cases`` — on the weights in memory (no reload), greedy
and batched, by the very path ``compare`` takes (:class:`expertkit.evaluation.compare.EngineBackend` over
:meth:`expertkit.engines.inference.generation.Engine.from_model`, then
:func:`expertkit.evaluation.compare.score_output`). The
final checkpoint is always scored. Each evaluation:

* adds an ``eval`` block (the metrics, cases, seconds, scorer version) to the checkpoint's record and
  writes the per-case outputs and scores to its ``eval.json`` (:mod:`expertkit.evaluation.checkpoint_scores`),
  which ``compare`` reuses;
* appends a line to ``eval.jsonl`` (``loss.jsonl``'s companion) and logs one line (:mod:`expertkit.core.log`);
* updates ``run.json``: ``evaluations`` (the lines so far) and ``best`` — the best checkpoint by the
  expert's ``evaluation.metric``, picked by :func:`expertkit.evaluation.compare.pick_best` as ``compare`` does.

Early stopping (``early_stop`` PATIENCE, ``min_delta`` D): training stops once the metric has not risen
by more than D above its best for PATIENCE evaluations in a row (:class:`EarlyStopping`); ``run.json``
gets ``stopped`` with the reason. ``--continue-to`` trains on from the last checkpoint with a fresh
patience; ``--resume`` of a stopped run is refused (it finished).

``keep``: ``all`` checkpoints; ``best`` — the best and the latest (which ``--resume`` and
``--continue-to`` start from); ``last`` — the latest only. Others are removed after each save (renamed
to ``tmp-checkpoint-N`` first, so that a removal cut short is never listed as a checkpoint).

Under several processes only the main one scores; the stop is agreed on by all (all-reduce).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from expertkit.core.checkpoints import Run, StopRecord, load_checkpoint
from expertkit.core.errors import ExpertkitError
from expertkit.core.fileio import atomic_write_jsonl
from expertkit.core.log import say, warn
from expertkit.core.manifest import TrainingSpec

if TYPE_CHECKING:
    from expertkit.evaluation.compare import Case
    from expertkit.expert import Expert
    from expertkit.kinds.scoring import Score

_NOT_RATES = {"cases", "mean_output_tokens", "mean_latency_s", "outputs_per_s"}
#: What ``quickstart`` trains with (the tiny base's 1200 steps, a checkpoint every 100): every
#: checkpoint scored on the whole held-out eval set (so that ``compare`` reuses it all), stopping after
#: 3 evaluations without a rise of the metric.
QUICKSTART_EVAL: dict[str, Any] = {"eval_every": 100, "eval_cases": None, "early_stop": 3, "min_delta": 0.0}

#: ``(model, step) -> (summary, cases, scores, seconds)``; tests script the metric through it.
ScoreFn = Callable[[Any, int], tuple[dict[str, Any], list["Case"], list["Score"], float]]



@dataclass(frozen=True)
class EvalSettings:
    """Scoring while training, as planned for a run: a view of the training settings that declare it
    (``eval_every``, ``eval_cases``, ``early_stop``, ``min_delta``, ``keep`` of
    :class:`~expertkit.core.manifest.TrainingSpec`, recorded in ``run.json``'s options)."""

    spec: TrainingSpec = field(default_factory=TrainingSpec)

    @property
    def every(self) -> int | None:
        return self.spec.eval_every

    @property
    def cases(self) -> int | None:
        return self.spec.eval_cases

    @property
    def early_stop(self) -> int | None:
        return self.spec.early_stop

    @property
    def min_delta(self) -> float:
        return self.spec.min_delta

    @property
    def keep(self) -> str:
        return self.spec.keep

    def check(self) -> None:
        """Refuse settings that cannot work together (one line naming the option); each value was checked by
        its declaration."""
        if self.every is None:
            if self.early_stop is not None:
                raise ExpertkitError("needs scored checkpoints: give --eval-every N too",
                                     key="--early-stop")
            if self.keep == "best":
                raise ExpertkitError("best needs scored checkpoints: give --eval-every N too", key="--keep")


# ---------------------------------------------------------------------- early stopping
@dataclass
class EarlyStopping:
    """Stop once the metric has not risen by more than ``min_delta`` above its best ``patience`` times in a row.

    A value that rises by ``min_delta`` or less is noise: it neither becomes the reference nor resets the
    count. An unknown value (``None``) counts as no improvement.
    """

    patience: int
    min_delta: float = 0.0
    best: float | None = None
    best_step: int | None = None
    since: int = 0

    def update(self, step: int, value: float | None) -> bool:
        """Record one evaluation; ``True`` when training should stop."""
        if value is not None and (self.best is None or value > self.best + self.min_delta):
            self.best, self.best_step, self.since = value, step, 0
        else:
            self.since += 1
        return self.since >= self.patience

    def reason(self, metric: str, step: int) -> str:
        rise = f"by more than {self.min_delta:g} above {self.best:.4f}" if self.min_delta and self.best is not None \
            else "at all"
        return (f"early stop at step {step}: {metric} has not risen {rise} for {self.since} evaluation(s) "
                f"(patience {self.patience})")


# ---------------------------------------------------------------------- the cases
def eval_cases(expert: Expert, count: int | None, seed: int) -> list[Case]:
    """The eval set's cases, or a fixed subset of ``count`` drawn with ``seed`` (in file order)."""
    from expertkit.evaluation.compare import load_cases

    path = expert.eval_path
    if not path.is_file():
        raise ExpertkitError("scoring checkpoints while training needs the eval set (expertkit data generate, "
                             "or drop --eval-every)", path=path, key="--eval-every")
    cases = load_cases(expert, path, None)
    if not cases:
        raise ExpertkitError("the eval set has no cases", path=path, key="--eval-every")
    if count is not None and count < len(cases):
        picked = sorted(random.Random(seed).sample(range(len(cases)), count))
        cases = [cases[i] for i in picked]
    return cases


def correct_rate(summary: Mapping[str, Any]) -> float | None:
    """The share of correct answers: execution match where answers run, else equivalence to the gold."""
    for key in ("correct", "execution_match", "equivalent"):
        if summary.get(key) is not None:
            return float(summary[key])
    return None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


# ---------------------------------------------------------------------- the callback
@dataclass
class _Stop:
    step: int
    reason: str


@dataclass
class CheckpointEvaluator(TrainerCallback):
    """Scores checkpoints as they are saved; see the module docstring."""

    expert: Expert
    settings: EvalSettings
    run_dir: Path
    tokenizer: Any
    seed: int = 0
    #: Earlier evaluations of this run (a resumed or continued run), oldest first.
    history: list[dict[str, Any]] = field(default_factory=list)
    score_fn: ScoreFn | None = None
    stopped: _Stop | None = None
    #: Seconds spent scoring in this process.
    seconds: float = 0.0
    metric: str = field(init=False, default="")
    _stopper: EarlyStopping | None = None
    _cases: list[Case] | None = None
    _prompts: list[list[int]] | None = None

    def __post_init__(self) -> None:
        self.metric = self.expert.manifest.evaluation.metric
        if self.settings.early_stop is not None:
            self._stopper = EarlyStopping(self.settings.early_stop, self.settings.min_delta)
            for row in self.history:  # the same reference as an uninterrupted run; a fresh patience
                self._stopper.update(int(row["step"]), row.get(self.metric))
            self._stopper.since = 0

    # -------------------------------------------------------------- scoring
    @property
    def cases(self) -> list[Case]:
        if self._cases is None:
            self._cases = eval_cases(self.expert, self.settings.cases, self.seed)
        return self._cases

    def _score(self, model: Any, step: int) -> tuple[dict[str, Any], list[Case], list[Score], float]:
        if self.score_fn is not None:
            return self.score_fn(model, step)
        from rich.progress import Progress

        from expertkit.engines.inference.hf import HfEngine
        from expertkit.evaluation.compare import EngineBackend, _generate_scored
        from expertkit.kinds.scoring import summarize

        cases = self.cases
        if self._prompts is None:
            self._prompts = [self.expert.contract.encode_prompt(self.tokenizer, c.fields, c.question) for c in cases]
        manifest = self.expert.manifest
        # greedy and unconstrained, as compare's recorded scores are reused only for that
        backend = EngineBackend(HfEngine.from_model(model, self.tokenizer), self.expert,
                                max_new_tokens=manifest.decoding.max_new_tokens,
                                batch_size=manifest.evaluation.batch_size)
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                    and torch.cuda.is_bf16_supported() else contextlib.nullcontext())
        try:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), autocast:
                scores, seconds = _generate_scored(backend, self.expert, None, f"eval {step}", self._prompts, cases,
                                                   Progress(disable=True))
        finally:
            model.train(was_training)
        return summarize(scores, seconds, self.expert.kind.error_kinds()), cases, scores, seconds

    # -------------------------------------------------------------- trainer events
    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> TrainerControl:
        every = self.settings.every
        if every is not None and state.global_step % every == 0:
            control.should_save = True  # every scored step is a checkpoint
        return control

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model: Any = None,
                **kwargs: Any) -> TrainerControl:
        step = state.global_step
        every = self.settings.every
        main = state.is_world_process_zero
        stop = False
        if every is not None and (step % every == 0 or step >= state.max_steps):
            if main:
                stop = self._evaluate(model, step, last=step >= state.max_steps)
            if args.world_size > 1:
                flag = torch.tensor([int(stop)], device=args.device)
                torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
                stop = bool(flag.item())
            if stop:
                control.should_training_stop = True
        if main:
            self._apply_keep()
        return control

    def _evaluate(self, model: Any, step: int, last: bool = False) -> bool:
        """Score the checkpoint of ``step``; whether training should stop early (never at the ``last`` step)."""
        from expertkit.evaluation.checkpoint_scores import cases_digest, write_checkpoint_eval
        from expertkit.kinds.scoring import SCORER_VERSION, pick_best

        run = Run(self.run_dir)
        folder = run.checkpoint_path(step)
        summary, cases, scores, seconds = self._score(model, step)
        self.seconds += seconds
        rates = {key: value for key, value in summary.items()  # every rate compare has (and breaks ties on)
                 if key not in _NOT_RATES and (value is None or isinstance(value, int | float))}
        row = {
            "step": step, "name": folder.name, "cases": len(cases), "metric": self.metric,
            **rates, self.metric: summary.get(self.metric), "correct": correct_rate(summary),
            "seconds": round(seconds, 3), "scorer": SCORER_VERSION, "cases_digest": cases_digest(cases),
        }
        if folder.is_dir():
            manifest = self.expert.manifest
            checkpoint = load_checkpoint(folder)
            write_checkpoint_eval(checkpoint, self.expert, cases, scores,
                                  max_new_tokens=manifest.decoding.max_new_tokens,
                                  stop_strings=self.expert.contract.stop_strings, summary=summary)
            checkpoint.update_record(eval=row)
        self.history.append(row)
        atomic_write_jsonl(run.eval_log_path, self.history)  # a dozen lines: rewritten whole
        best = pick_best(self.history, self.metric)
        stop = self._stopper is not None and self._stopper.update(step, row.get(self.metric)) and not last
        if stop:
            assert self._stopper is not None and best is not None
            value = "n/a" if best["value"] is None else f"{best['value']:.4f}"
            kept = "kept" if self.settings.keep != "last" or best["step"] == step else "not kept (--keep last)"
            self.stopped = _Stop(step, f"{self._stopper.reason(self.metric, step)}; best {best['name']} "
                                       f"({self.metric} {value}), {kept}")
        mark = " (best so far)" if best is not None and best["step"] == step else ""
        lead = "" if self.metric in ("valid", "correct") else f"{self.metric} {_fmt(row.get(self.metric))}, "
        say(f"eval {folder.name}: {lead}valid {_fmt(row['valid'])}, "
             f"correct {_fmt(row['correct'])}, reasoning {_fmt(row['reasoning'])} "
             f"({len(cases)} cases, {seconds:.1f} s){mark}")
        if self.stopped is not None:
            warn(self.stopped.reason)
        self.write_run_record()
        return stop

    # -------------------------------------------------------------- the run folder
    @property
    def best(self) -> dict[str, Any] | None:
        from expertkit.kinds.scoring import pick_best

        return pick_best(self.history, self.metric)

    def write_run_record(self) -> None:
        """``evaluations``, ``best`` and ``stopped`` into ``run.json`` (atomically)."""
        folder = Run(self.run_dir)
        run = folder.record
        if run is None:
            return
        run.evaluations = self.history
        run.best = self.best
        run.stopped = None if self.stopped is None else StopRecord(step=self.stopped.step, reason=self.stopped.reason)
        folder.write_record(run)

    def _apply_keep(self) -> None:
        if self.settings.keep == "all":
            return
        run = Run(self.run_dir)
        checkpoints = run.checkpoints()
        if not checkpoints:
            return
        keep = {checkpoints[-1].step}
        best = self.best
        if self.settings.keep == "best" and best is not None:
            keep.add(int(best["step"]))
        for ck in checkpoints:
            if ck.step not in keep:
                run.remove_checkpoint(ck)


# ---------------------------------------------------------------------- the callback for a run
def make_evaluator(expert: Expert, settings: EvalSettings, run_dir: Path, tokenizer: Any, *, seed: int,
                   history: Sequence[dict[str, Any]] = (), score_fn: ScoreFn | None = None
                   ) -> CheckpointEvaluator | None:
    """The callback for these settings (``None`` when nothing is scored and every checkpoint stays)."""
    if settings.every is None and settings.keep == "all":
        return None
    evaluator = CheckpointEvaluator(expert=expert, settings=settings, run_dir=run_dir, tokenizer=tokenizer, seed=seed,
                                    history=list(history), score_fn=score_fn)
    if settings.every is not None:
        _ = evaluator.cases  # a missing or bad eval set is refused before training starts
    return evaluator
