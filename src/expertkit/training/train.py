"""Training: TRL ``SFTTrainer`` with PEFT LoRA/DoRA (or full fine-tuning), answer-only loss, resumable.

Every example is rendered by the expert's :class:`~expertkit.core.contract.PromptContract` and pre-tokenised
with ``encode_example`` into ``input_ids`` and ``completion_mask``; ``SFTTrainer`` (``completion_only_loss``)
turns the mask into labels, so the loss covers the answer and its end-of-turn token only — never the
system block, the question or the empty think block. Nothing is truncated (``max_length=None``): an
example longer than ``training.max_length`` is a lint error, and lint runs first (``--force`` trains
anyway, leaving out, and counting, the records that cannot be rendered or are too long).

Checkpoints (see :mod:`expertkit.core.checkpoints`) are written to ``tmp-checkpoint-N`` and renamed to
``checkpoint-N`` when whole; the record ``expertkit.json`` is written last. Besides the PEFT adapter
(or the full model) and the tokenizer they hold what the Trainer needs to resume exactly: optimizer,
scheduler, RNG states and ``trainer_state.json``. ``loss.jsonl`` gets one line per optimizer step.

Resuming and extending:

* ``resume`` continues from the latest complete checkpoint with the run's recorded settings
  (``run.json``; a setting that the manifest as it is now, the profile or the options would change is
  refused, :func:`_resumed_plan`); half-written ``tmp-checkpoint-*`` folders are removed, ``loss.jsonl`` is cut back to
  the checkpoint's step. The Trainer restores optimizer, scheduler, RNG states and data position, so an
  interrupted run reaches the same weights as an uninterrupted one.
* ``continue_to=N`` extends a run to N steps, resuming optimizer state and data order. The schedule
  is recomputed as if the run had been planned for N steps (warmup, counted in steps, is unchanged):
  with the linear or cosine decay, the learning rate rises from its end-of-run value to where the
  N-step schedule is at that step and decays to zero at N.
* Both refuse a checkpoint trained on another contract unless ``allow_drift``.

Scoring checkpoints on the task while training (``eval_every``), early stopping by the expert's metric
(``early_stop``, ``min_delta``) and how many checkpoints stay (``keep``) are a callback of their own,
:mod:`expertkit.training.train_eval`; their settings are recorded with the plan and may change on resume.

Ctrl-C (SIGINT) finishes the current step, saves a complete checkpoint and stops; a second Ctrl-C
aborts at once. Under several processes the stop is agreed on (all-reduce) so that all stop together.

Batches: padding-free by default (:mod:`expertkit.training.packing`: examples packed into rows, position ids
restarting per example, no attention mask, on any attention implementation), of at most
``max_tokens_per_batch`` tokens per device (``--max-tokens-per-batch``; unset in the manifest, about
``batch_size`` examples' tokens, the tiny base's default too; 0: padded batches of ``batch_size``). On
2 CPU cores padding-free batches ran 1.07-1.12x the padded baseline's tokens/s (padded: 0.95x), and the
tiny recipe trained with them reached 97.5 % valid held-out answers (``docs/benchmarks.md``).

Devices: on CPU, fp32, no gradient checkpointing, and the loss is the model's own cross-entropy (TRL's
chunked LM head, made for large vocabularies on GPUs, is ~1.6x slower per step on CPU). On a GPU, TRL's
loss, bf16 mixed precision (adapters and full weights kept in fp32, a LoRA/DoRA base loaded in bf16),
FlashAttention-2 when ``flash_attn`` is installed (SDPA otherwise), and Liger's kernels (RMSNorm, SwiGLU,
RoPE) when ``liger-kernel`` and ``triton`` are installed (``expertkit[gpu]``). Data-parallel training on
several GPUs runs under ``accelerate launch --multi_gpu -m expertkit.cli train ...`` (see
``docs/training.md``); batch sizes are per device, and the run and checkpoint records hold the world size
and the global batch.

The tiny base (:data:`TINY_TRAINING`, measured on 2 CPU cores with the shipped Elasticsearch expert):
a random Qwen3-shaped model gives an adapter little to steer, so ``full`` fine-tuning is its default,
at lr 3e-3 (lower learns too slowly in the budget, 5e-3 did worse), batch 16 and a cosine decay. A
model trained from scratch learns the training questions' templates by heart (100 % valid on them)
but falls to 76-89 % on the held-out phrasings of the eval set; replacing a quarter of the question
tokens by random tokens each epoch (:class:`QuestionNoise`) lifts that to 95-98 % in 1200 steps (about
140 s of training, 2.5 minutes with start-up; 15 % gave 93-95 %, 35 % 93 %). Deeper or wider shapes,
weight decay, attention dropout and NEFTune did not help as much as they cost.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import signal
import threading
import time
import typing
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from pydantic import ValidationError
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import ExportableState, PrinterCallback, ProgressCallback
from trl import SFTConfig, SFTTrainer

from expertkit.authoring.lint import lint_file
from expertkit.core.checkpoints import (
    CHAT_TEMPLATE_NAME,
    CheckpointRecord,
    DataRecord,
    Run,
    RunAction,
    RunRecord,
    check_contract,
    sha256_file,
    weights_digests,
)
from expertkit.core.data import read_examples
from expertkit.core.errors import ContractError, ExpertkitError
from expertkit.core.fileio import atomic_write_text, read_json_or_none, utc_now
from expertkit.core.log import say, warn
from expertkit.core.manifest import MANIFEST_NAME, Manifest, TrainingSpec, key_line
from expertkit.core.options import check_count
from expertkit.core.settings import PROFILES, check_sections, check_setting, diff_settings, resolve_settings
from expertkit.expert import Expert
from expertkit.models.base import TINY, TINY_MARKER, load_model, load_tokenizer, resolve_base
from expertkit.training.packing import REAL_TOKENS, ROW_TOKENS, PackedCollator, pack_batches
from expertkit.training.train_eval import EvalSettings, make_evaluator

#: The training methods, as the manifest's ``training.method`` declares them.
METHODS: tuple[str, ...] = typing.get_args(TrainingSpec.model_fields["method"].annotation)
#: The tiny base's profile (``--base tiny`` or a folder built by ``expertkit base tiny``): about 2.5 minutes on
#: 2 CPU cores. Options given explicitly win over these.
TINY_TRAINING: dict[str, Any] = PROFILES[TINY]["training"]
#: The profile that means "none" (a tiny base trained with the manifest's recipe alone).
NO_PROFILE = "none"
#: Settings a resumed run may change (scoring while training); every other one it keeps.
RESUMABLE = ("eval_every", "eval_cases", "early_stop", "min_delta", "keep")
#: The manifest sections ``train --set`` takes: the training settings (the plan) and the decoding and evaluation
#: settings the checkpoints are scored with while training (``--eval-every``).
TRAIN_SECTIONS = ("training", "decoding", "evaluation")
#: Named options whose flag is not ``--`` plus the setting's name with dashes.
_FLAGS = {"learning_rate": "--lr", "question_noise": "training.question_noise"}


def eval_settings(spec: TrainingSpec) -> EvalSettings:
    """Scoring while training, as ``spec`` sets it."""
    return EvalSettings(every=spec.eval_every, cases=spec.eval_cases, early_stop=spec.early_stop,
                        min_delta=spec.min_delta, keep=spec.keep)


def flag(name: str) -> str:
    """The option that sets training setting ``name`` (``learning_rate`` -> ``--lr``)."""
    return _FLAGS.get(name, "--" + name.replace("_", "-"))


@dataclass
class TrainOptions:
    """What the ``train`` command takes. The settings themselves are declared once, by the manifest's
    :class:`~expertkit.core.manifest.TrainingSpec`: a field of these options named like one of its settings
    (``method``, ``learning_rate``, ``steps``, ...) overrides it when given; ``settings`` overrides any of them
    (``{"training.lora_r": 8}``, the command line's ``--set``). ``None`` means the run's, the profile's or the
    manifest's value."""

    base: str | None = None
    out_dir: Path = Path("runs/run")
    #: A named profile of overrides (:data:`~expertkit.core.settings.PROFILES`); ``None``: ``tiny`` on a tiny
    #: base, no profile otherwise; ``"none"``: no profile.
    profile: str | None = None
    #: ``SECTION.KEY -> value`` overrides of the manifest's settings (``--set``; sections :data:`TRAIN_SECTIONS`):
    #: ``training.*`` under the named options; ``decoding.*`` and ``evaluation.*`` for the scoring while training.
    settings: Mapping[str, Any] = field(default_factory=dict)
    method: str | None = None
    steps: int | None = None
    epochs: float | None = None
    save_every: int | None = None
    resume: bool = False
    continue_to: int | None = None
    force: bool = False
    allow_drift: bool = False
    max_examples: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    seed: int | None = None
    question_noise: float | None = None
    max_tokens_per_batch: int | None = None
    eval_every: int | None = None
    eval_cases: int | None = None
    early_stop: int | None = None
    min_delta: float | None = None
    keep: str | None = None
    #: ``(model, step) -> (summary, cases, scores, seconds)`` instead of real scoring (tests).
    score_fn: Any = None
    #: Extra ``transformers.TrainerCallback`` objects (Python API only).
    callbacks: Sequence[TrainerCallback] = ()

    def overrides(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The settings given (``training.KEY -> value``: ``settings``, then the named options over them) and the
        option that gave each (for messages)."""
        values: dict[str, Any] = {}
        names: dict[str, str] = {}
        for key, value in self.settings.items():
            if key.startswith("training."):
                values[key], names[key] = value, key
        for name in TrainingSpec.model_fields:
            value = getattr(self, name, None)
            if value is not None:
                values[f"training.{name}"], names[f"training.{name}"] = value, flag(name)
        return values, names

    def scoring_settings(self) -> dict[str, Any]:
        """The ``decoding.*`` and ``evaluation.*`` settings given: the expert is scored with them while training."""
        return {key: value for key, value in self.settings.items() if not key.startswith("training.")}

    def profile_for(self, base_path: str) -> str | None:
        """The profile to apply: the one asked for, else ``tiny`` on a tiny base."""
        if self.profile is not None:
            return None if self.profile == NO_PROFILE else self.profile
        return TINY if is_tiny_base(base_path) else None

    def check(self) -> None:
        """Every numeric option finite and in range (by the settings' own constraints), named as on the command
        line, and the profile known — before anything is done."""
        check_count(self.continue_to, "--continue-to")
        check_count(self.max_examples, "--max-examples")
        if self.profile not in (None, NO_PROFILE, *PROFILES):
            raise ExpertkitError(f"unknown profile {self.profile!r} ({', '.join([*PROFILES, NO_PROFILE])})",
                                 key="--profile")
        check_sections(self.settings, TRAIN_SECTIONS)
        values, names = self.overrides()
        for key, value in {**self.scoring_settings(), **values}.items():
            check_setting(key, value, names.get(key, key))


@dataclass
class TrainPlan:
    """What a run trains with: the resolved training settings (``steps``, ``warmup_steps`` and
    ``max_tokens_per_batch`` made concrete) and what the run adds to them. Recorded in ``run.json``'s
    ``options`` (:meth:`to_record`) and read back on resume (:meth:`from_record`). The settings read as the
    plan's own attributes (``plan.learning_rate``)."""

    training: TrainingSpec
    base: str
    base_path: str
    max_examples: int | None = None
    #: The longest row of a padding-free batch (``expertkit.training.packing.ROW_TOKENS`` or the longest example).
    row_tokens: int = 0
    #: Processes that train together (``accelerate launch``) and what one optimizer step takes in all:
    #: examples (padded batches) or at most that many tokens (padding-free batches).
    world_size: int = 1
    global_batch: int = 0
    global_batch_unit: str = "examples"
    #: What the settings were resolved from and to: the profile, the settings the command line gave
    #: (``training.KEY -> value``) and the training settings before they were made concrete. A resumed run
    #: resolves the manifest as it is now with them and compares (a record without them: the recorded plan).
    profile: str | None = None
    given: dict[str, Any] = field(default_factory=dict)
    resolved: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        training = self.__dict__.get("training")
        if training is not None and name in TrainingSpec.model_fields:
            return getattr(training, name)
        raise AttributeError(name)

    @property
    def packed(self) -> bool:
        return bool(self.training.max_tokens_per_batch)

    @property
    def lora(self) -> dict[str, Any] | None:
        """The adapter's settings (``None`` for full fine-tuning)."""
        spec = self.training
        if spec.method == "full":
            return None
        return {"r": spec.lora_r, "alpha": spec.lora_alpha, "dropout": spec.lora_dropout,
                "target_modules": spec.target_modules}

    @property
    def evaluation(self) -> EvalSettings:
        return eval_settings(self.training)

    def settings(self) -> dict[str, Any]:
        """The settings two plans are compared by: every training setting and the data the run takes."""
        return {**self.training.model_dump(), "max_examples": self.max_examples}

    def to_record(self) -> dict[str, Any]:
        """The plan as ``run.json`` records it (``options``): flat, the adapter's settings also as ``lora``."""
        return {"base": self.base, "base_path": self.base_path, **self.training.model_dump(),
                "max_examples": self.max_examples, "lora": self.lora, "row_tokens": self.row_tokens,
                "world_size": self.world_size, "global_batch": self.global_batch,
                "global_batch_unit": self.global_batch_unit, "profile": self.profile, "given": self.given,
                "resolved": self.resolved}

    @classmethod
    def from_record(cls, record: Any, fallback: TrainingSpec, path: Path) -> TrainPlan:
        """A recorded plan; settings a record does not hold (older runs) are ``fallback``'s."""
        if not isinstance(record, dict) or not isinstance(record.get("base"), str) \
                or not isinstance(record.get("base_path"), str):
            raise ExpertkitError("run record has no usable 'options'", path=path)
        values = {k: v for k, v in record.items() if k in TrainingSpec.model_fields}
        lora = record.get("lora")
        if isinstance(lora, dict):
            for key, name in (("r", "lora_r"), ("alpha", "lora_alpha"), ("dropout", "lora_dropout"),
                              ("target_modules", "target_modules")):
                if key in lora:
                    values.setdefault(name, lora[key])
        try:
            training = TrainingSpec.model_validate({**fallback.model_dump(), **values})
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ExpertkitError(f"run record has no usable 'options' ({err['msg']})", path=path,
                                 key=f"options.{'.'.join(str(p) for p in err['loc'])}") from None
        run = {f.name: record[f.name] for f in fields(cls) if f.name != "training" and f.name in record}
        if not isinstance(run.get("given", {}), dict) or not isinstance(run.get("resolved", {}), dict | None) \
                or not isinstance(run.get("profile"), str | None):
            raise ExpertkitError("run record has no usable 'options' (profile, given, resolved)", path=path)
        run["given"] = run.get("given") or {}
        return cls(training=training, **run)


@dataclass
class TrainResult:
    """What one ``train_expert`` call did."""

    run_dir: Path
    method: str
    start_step: int
    steps: int
    planned_steps: int
    final_loss: float | None
    checkpoints: list[str]
    seconds: float
    prepare_seconds: float
    tokens: int
    examples: int
    skipped: int = 0
    interrupted: bool = False
    #: The best checkpoint by the expert's metric (scored runs), and why training stopped early.
    best: dict[str, Any] | None = None
    stop_reason: str | None = None
    evaluations: int = 0
    eval_seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        """Training tokens (prompt and answer, padding excluded) per second of training."""
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        loss = f"{self.final_loss:.4f}" if self.final_loss is not None else "n/a"
        head = "interrupted" if self.interrupted else "trained"
        lines = [
            f"{head}: {self.run_dir} ({self.method}), steps {self.start_step} -> {self.steps} of {self.planned_steps}",
            f"  final loss {loss}; {self.examples} examples"
            + (f" ({self.skipped} skipped by --force)" if self.skipped else ""),
            f"  {self.seconds:.1f} s training (+{self.prepare_seconds:.1f} s preparing), "
            f"{self.tokens} tokens, {self.tokens_per_second:.0f} tokens/s",
            f"  checkpoints: {', '.join(self.checkpoints) or 'none'}",
        ]
        if self.evaluations:
            share = self.eval_seconds / self.seconds if self.seconds > 0 else 0.0
            lines.append(f"  {self.evaluations} evaluation(s), {self.eval_seconds:.1f} s scoring "
                         f"({share:.0%} of training)")
        if self.best:
            value = "n/a" if self.best.get("value") is None else f"{self.best['value']:.4f}"
            lines.append(f"  best checkpoint: {self.best['name']} ({self.best['metric']} {value})")
        if self.stop_reason:
            lines.append(f"  {self.stop_reason}; train further with --continue-to N")
        if self.interrupted:
            lines.append(f"  resume with: expertkit train EXPERT --out {self.run_dir} --resume")
        return "\n".join(lines)


# ---------------------------------------------------------------------- small helpers

def is_tiny_base(base_path: str) -> bool:
    """Whether a resolved base is a tiny base built by expertkit."""
    marker = read_json_or_none(Path(base_path) / TINY_MARKER)
    return isinstance(marker, dict) and marker.get("kind") == TINY


def use_gpu() -> bool:
    """Train on a GPU when one is visible and ``accelerate launch --cpu`` did not ask for the CPU."""
    forced_cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    return torch.cuda.is_available() and not forced_cpu


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


# ---------------------------------------------------------------------- plan
def token_budget(given: int | None, batch_size: int, lengths: Sequence[int], row_tokens: int) -> int:
    """The padding-free budget: ``given`` (0: padded batches), or for ``None`` about ``batch_size`` examples'
    tokens (the mean length times the batch size, rounded up to 64), so that a step takes as many examples
    as a padded one would."""
    if given is not None:
        budget = given
    else:
        mean = sum(lengths) / len(lengths) if lengths else row_tokens
        budget = math.ceil(batch_size * mean / 64) * 64
    if 0 < budget < max(lengths, default=0):
        raise ExpertkitError(f"{budget} tokens per batch cannot hold the longest example ({max(lengths)} tokens)",
                             key="--max-tokens-per-batch")
    return budget


def batches_per_epoch(examples: int, lengths: Sequence[int], *, batch_size: int, max_tokens: int, row_tokens: int,
                      seed: int, world_size: int) -> int:
    """Micro-batches in one pass over the data, on one device (padding-free ones when ``max_tokens``)."""
    if max_tokens and lengths:
        batches = len(pack_batches(lengths, max_tokens=max_tokens, row_tokens=row_tokens, seed=seed))
        return math.ceil(batches / world_size)
    return math.ceil(examples / (batch_size * world_size))


def resolve_plan(manifest: Manifest, profile: str | None, overrides: Mapping[str, Any], *, base: str,
                 base_path: str, examples: int, lengths: Sequence[int] = (), max_examples: int | None = None,
                 names: Mapping[str, str] | None = None) -> TrainPlan:
    """The one resolution of a new run's settings: the manifest's, then ``profile``'s, then ``overrides``
    (:func:`~expertkit.core.settings.resolve_settings`), made concrete for this data and these processes.

    ``lengths`` (the examples' token counts) sizes padding-free batches and the steps of an epoch; without
    them an epoch counts ``examples / batch_size`` steps. ``names`` maps a setting to the option that gave it.
    """
    spec = resolve_settings(manifest, profile, overrides, names=names).training
    names = names or {}
    if profile is not None:  # a profile over a value the manifest sets is said, not silent
        given = manifest.training.model_fields_set
        replaced = [f"{key} {getattr(manifest.training, key)!r} -> {value!r}"
                    for key, value in PROFILES[profile].get("training", {}).items()
                    if key in given and f"training.{key}" not in overrides and getattr(manifest.training, key) != value]
        if replaced:
            say(f"profile {profile} over the manifest's training settings: {', '.join(replaced)} "
                "(--profile none keeps the manifest's)")
    world = _world_size()
    row_tokens = max(min(spec.max_length, ROW_TOKENS), max(lengths, default=0))
    budget = token_budget(spec.max_tokens_per_batch, spec.batch_size, lengths, row_tokens)
    per_epoch = batches_per_epoch(examples, lengths, batch_size=spec.batch_size, max_tokens=budget,
                                  row_tokens=row_tokens, seed=spec.seed,
                                  world_size=world) / spec.gradient_accumulation_steps
    steps = spec.steps or math.ceil(spec.epochs * per_epoch)
    if steps < 1:
        raise ExpertkitError("training needs at least one step", key=names.get("training.steps", "--steps"))
    warmup = spec.warmup_steps if spec.warmup_steps is not None else math.ceil(spec.warmup_ratio * steps)
    training = spec.model_copy(update={"steps": steps, "warmup_steps": min(warmup, steps),
                                       "max_tokens_per_batch": budget})
    plan = TrainPlan(
        training=training,
        base=base,
        base_path=base_path,
        max_examples=max_examples,
        row_tokens=row_tokens,
        world_size=world,
        global_batch=(budget if budget else spec.batch_size) * spec.gradient_accumulation_steps * world,
        global_batch_unit="tokens" if budget else "examples",
        profile=profile,
        given=dict(overrides),
        resolved=spec.model_dump(),
    )
    plan.evaluation.check()
    return plan


def plan_run(expert: Expert, options: TrainOptions, base_path: str, examples: int,
             lengths: Sequence[int] = ()) -> TrainPlan:
    """:func:`resolve_plan` for ``options``: the profile they name (``tiny`` on a tiny base) and the settings
    they give."""
    values, names = options.overrides()
    return resolve_plan(expert.manifest, options.profile_for(base_path), values,
                        base=options.base or expert.manifest.base_model, base_path=base_path, examples=examples,
                        lengths=lengths, max_examples=options.max_examples, names=names)


def _resumed_plan(run: RunRecord, options: TrainOptions, out: Path, manifest: Manifest,
                  manifest_path: Path | None = None) -> TrainPlan:
    """The recorded plan, compared setting by setting with the one resolved now: the manifest as it is now
    (``manifest_path`` names it in messages), the run's profile (or ``--profile``) and the settings the command
    line gave, the run's and these ``options``'. The scoring settings (:data:`RESUMABLE`) may change, and the
    manifest's steps when ``--continue-to`` extends the run; any other change is refused naming where it came
    from (it would break the resume). A record without what it was resolved from is compared with the options
    alone."""
    plan = TrainPlan.from_record(run.options, manifest.training, Run(out).record_path)
    values, names = options.overrides()
    if plan.resolved is None:  # written before runs recorded what they were resolved from
        profile, layers = None, values
        recorded = plan.settings()
        spec = resolve_settings(manifest.model_copy(update={"training": plan.training}), None, values,
                                names=names).training
    else:
        profile = plan.profile if options.profile is None else options.profile_for(plan.base_path)
        layers = {**plan.given, **values}
        recorded = {**plan.resolved, "max_examples": plan.max_examples}
        spec = resolve_settings(manifest, profile, layers, names=names).training
    requested = {**spec.model_dump(),
                 "max_examples": options.max_examples if options.max_examples is not None else plan.max_examples}
    names = {**names, "training.max_examples": "--max-examples"}
    changed = diff_settings(recorded, requested)
    allowed = set(RESUMABLE) | ({"steps", "epochs"} if options.continue_to is not None else set())
    for key, (was, asked) in changed.items():
        given = names.get(f"training.{key}") or (names.get("training.epochs") if key == "steps" else None)
        where: dict[str, Any]
        if key in allowed and (given is None or key in RESUMABLE):
            continue
        if given is not None:
            source, where = f"given by {given}", {"key": given}
            hint = f"leave out {given}"
        elif profile != plan.profile and key in {*_profile_training(profile), *_profile_training(plan.profile)}:
            source, where = f"from --profile {options.profile}", {"key": "--profile"}
            hint = "leave out --profile"
        elif profile is not None and key in _profile_training(profile):
            source, where = f"from profile {profile}", {"key": "--profile"}
            hint = f"restore profile {profile}"
        else:
            path = manifest_path or Path(MANIFEST_NAME)
            source, hint = "from the manifest", f"restore the manifest's training.{key}"
            where = {"path": path, "line": key_line(path, "training", key), "key": f"training.{key}"}
        if key in ("steps", "epochs"):
            raise ExpertkitError(f"the run is planned for {plan.steps} steps ({key} {was!r}), not {key} {asked!r} "
                                 f"({source}); use --continue-to to extend it, or {hint}", **where)
        raise ExpertkitError(f"the run was trained with {key} {was!r}, not {asked!r} ({source}); a resumed run "
                             f"keeps its settings ({hint}, or start a new run to change them)", **where)
    plan.training = plan.training.model_copy(update={key: changed[key][1] for key in changed if key in RESUMABLE})
    if plan.resolved is not None:  # what this resume was resolved from, for the next one
        plan.resolved = {**plan.resolved, **{key: changed[key][1] for key in changed if key in allowed}}
        plan.given = {**plan.given, **{key: value for key, value in values.items()
                                       if key.removeprefix("training.") in RESUMABLE}}
    plan.evaluation.check()
    if not Path(plan.base_path).exists() and plan.base != plan.base_path:
        plan.base_path = resolve_base(plan.base)
    if _world_size() != plan.world_size:
        warn(f"the run was trained by {plan.world_size} process(es), this one by {_world_size()}: the "
             f"global batch changes ({plan.global_batch} {plan.global_batch_unit} per step before), and the data "
             "order after the checkpoint differs from an uninterrupted run")
        plan.world_size = _world_size()
        per_device = plan.max_tokens_per_batch or plan.batch_size
        plan.global_batch = per_device * plan.gradient_accumulation_steps * plan.world_size
    return plan


def _profile_training(profile: str | None) -> dict[str, Any]:
    return PROFILES[profile].get("training", {}) if profile is not None else {}


def _refuse_changed_inputs(expert: Expert, run: RunRecord, plan: TrainPlan, options: TrainOptions,
                           out: Path) -> None:
    """A resumed run trains on its recorded data and base: a change is refused (``force``: a warning, and the
    run's base is kept), naming what changed. The method is one of the settings ``_resumed_plan`` keeps."""
    changes = []
    recorded = run.data.sha256 if run.data is not None else None
    if recorded and expert.train_path.is_file() and sha256_file(expert.train_path) != recorded:
        changes.append(f"the training data {expert.train_path} changed since the run trained on it")
    if options.base is not None and options.base != plan.base:
        changes.append(f"--base {options.base!r} is not the run's base {plan.base!r}")
    if not changes:
        return
    option = "--continue-to" if options.continue_to is not None else "--resume"
    if not options.force:
        raise ExpertkitError("; ".join(changes) + " (start a new run, or pass --force to go on with the run's "
                             "base and the data as it is now)", path=out, key=option)
    warn(f"{'; '.join(changes)}: going on anyway (--force) with base {plan.base!r}")


# ---------------------------------------------------------------------- data
@dataclass
class EncodedData:
    """The pre-tokenised training set and what was left out of it."""

    dataset: Dataset
    examples: int
    skipped: Counter[str] = field(default_factory=Counter)
    sha256: str = ""

    @property
    def lengths(self) -> list[int]:
        """Each example's token count."""
        return [len(ids) for ids in self.dataset["input_ids"]]


def _lint_or_refuse(expert: Expert, tokenizer: Any, force: bool) -> None:
    report = lint_file(expert, expert.train_path, eval_path=expert.eval_path, tokenizer=tokenizer, bad_lines="raise")
    errors = Counter(f.code for f in report.findings if f.severity == "error")
    if not errors:
        say(f"lint: {report.records} records, no errors ({report.warnings} warnings)")
        return
    counts = ", ".join(f"{code} {n}" for code, n in errors.most_common())
    message = f"lint found {report.errors} error(s) in {report.records} records ({counts})"
    if not force:
        raise ExpertkitError(f"{message}; fix them (expertkit lint {expert.root}) or pass --force",
                             path=expert.train_path)
    warn(f"{message}; training anyway (--force)")


def _question_span(tokenizer: Any, prompt_ids: list[int], question: str) -> list[int]:
    """``[start, end)`` of the question's tokens in the prompt (the contract encodes it as one segment)."""
    q = tokenizer(question.strip(), add_special_tokens=False, split_special_tokens=True)["input_ids"]
    for start in range(len(prompt_ids) - len(q), -1, -1):
        if q and prompt_ids[start : start + len(q)] == q:
            return [start, start + len(q)]
    return [0, 0]


def encode_dataset(
    expert: Expert, tokenizer: Any, *, max_examples: int | None = None, force: bool = False
) -> EncodedData:
    """Render and tokenise the training set through the contract: ``input_ids`` and ``completion_mask``
    (plus the question's token span and the example's index, for :class:`QuestionNoise`).

    Records that cannot be rendered or are longer than ``training.max_length`` are errors, or with
    ``force`` left out and counted.
    """
    examples, _ = read_examples(expert.train_path)
    if max_examples is not None:
        examples = examples[:max_examples]
    max_length = expert.manifest.training.max_length
    ids: list[list[int]] = []
    masks: list[list[int]] = []
    spans: list[list[int]] = []
    skipped: Counter[str] = Counter()
    for ex in examples:
        reason = None
        if ex.answer is None or not ex.answer.strip():
            reason = "missing_answer"
        else:
            try:
                encoded = expert.contract.encode_example(tokenizer, dict(ex.fields), ex.question, ex.answer)
            except ContractError:
                reason = "contract"
            else:
                if encoded.length > max_length:  # lint's too_long measure (PromptContract.example_length)
                    reason = "too_long"
        if reason is not None:
            if not force:
                raise ExpertkitError(f"record cannot be trained on ({reason}); see expertkit lint",
                                     path=expert.train_path, line=ex.line)
            skipped[reason] += 1
            continue
        input_ids, mask = encoded
        ids.append(input_ids)
        masks.append(mask)
        spans.append(_question_span(tokenizer, input_ids[: mask.index(1)], ex.question))
    if not ids:
        raise ExpertkitError("no trainable records", path=expert.train_path)
    digest = hashlib.sha256(expert.train_path.read_bytes()).hexdigest()
    dataset = Dataset.from_dict({"input_ids": ids, "completion_mask": masks, "question_span": spans,
                                 "example": list(range(len(ids)))})
    return EncodedData(dataset=dataset, examples=len(ids), skipped=skipped, sha256=digest)


# ---------------------------------------------------------------------- callbacks
class LossLog(TrainerCallback):
    """Appends ``{step, loss, learning_rate, epoch}`` to ``loss.jsonl``; keeps losses and the token count."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.losses: dict[int, float] = {}
        self.tokens = 0

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not logs or "loss" not in logs:
            return
        loss = float(logs["loss"])
        self.losses[state.global_step] = loss
        if state.is_world_process_zero:
            row = {"step": state.global_step, "loss": loss, "learning_rate": logs.get("learning_rate"),
                   "epoch": logs.get("epoch", state.epoch)}
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")


class StopOnInterrupt(TrainerCallback):
    """Once ``requested`` (by the SIGINT handler), save a checkpoint at this step and stop."""

    def __init__(self) -> None:
        self.requested = False
        self.stopped_at: int | None = None

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> TrainerControl:
        stop = self.requested
        if args.world_size > 1:  # every process must stop at the same step
            flag = torch.tensor([int(stop)], device=args.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            stop = bool(flag.item())
        if stop:
            self.stopped_at = state.global_step
            control.should_save = True
            control.should_training_stop = True
        return control


class QuestionNoise(TrainerCallback):
    """Each question token is replaced, with probability ``rate``, by a random token (a collator wrapper).

    A regulariser for a base trained from scratch (the tiny base): with some of the words of each question
    hidden, the model learns to use all of them, the values it copies and the contract's fields, and so
    answers questions phrased in words it has not seen. Only the question's tokens change — never the
    system block, the template or the answer — and control tokens are never drawn. The draw depends on
    the seed, the epoch and the example alone, so resumed runs see the same noise as uninterrupted ones.
    ``__call__`` noises the examples and hands them to ``collator``; padding-free batches call
    :meth:`noisy_ids` from their own collator.
    """

    def __init__(self, collator: Any, tokenizer: Any, rate: float, seed: int) -> None:
        self.collator = collator
        self.rate = rate
        self.seed = seed
        control = set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
        self.tokens = np.array([i for i in range(len(tokenizer)) if i not in control])
        self.epoch = 0

    def on_epoch_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       train_dataloader: Any = None, **kwargs: Any) -> None:
        per_epoch = max(math.ceil(len(train_dataloader) / args.gradient_accumulation_steps), 1)
        self.epoch = state.global_step // per_epoch  # also right when resuming in the middle of an epoch

    def noisy_ids(self, row: Any) -> list[int]:
        """The example's input ids with this epoch's noise on its question."""
        ids = list(row["input_ids"])
        start, end = row["question_span"]
        rng = np.random.default_rng([self.seed, self.epoch, row["example"]])
        hit = np.flatnonzero(rng.random(end - start) < self.rate)
        if hit.size:
            for k, token in zip(hit.tolist(), rng.choice(self.tokens, hit.size).tolist(), strict=True):
                ids[start + k] = token
        return ids

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return self.collator([{**row, "input_ids": self.noisy_ids(row)} for row in rows])


class StopOnNonFinite(TrainerCallback):
    """A non-finite loss or gradient norm stops training at once, without a save (the weights are spoiled):
    the last good checkpoint stays the run's latest."""

    def __init__(self) -> None:
        self.bad: tuple[int, str, float] | None = None

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> TrainerControl:
        for key in ("loss", "grad_norm"):
            value = (logs or {}).get(key)
            if isinstance(value, int | float) and not math.isfinite(value):
                self.bad = (state.global_step, key, float(value))
                control.should_save = False
                control.should_training_stop = True
                break
        return control


class _QuietProgress(ProgressCallback):
    """The Trainer's progress bar, with the loss in the bar instead of a printed line per log."""

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if state.is_world_process_zero and self.training_bar is not None and logs and "loss" in logs:
            self.training_bar.set_postfix(loss=f"{logs['loss']:.4f}", refresh=False)


@contextlib.contextmanager
def _sigint_stops(stopper: StopOnInterrupt) -> Iterator[None]:
    """While training: the first Ctrl-C asks for a save-and-stop, the second aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if stopper.requested:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        stopper.requested = True
        warn("interrupted: finishing this step and saving a checkpoint (Ctrl-C again to abort)")

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _quiet_library_bars() -> Iterator[None]:
    """No progress bars from transformers and datasets (loading, saving, labels); the Trainer's stays."""
    import datasets
    from transformers.utils import logging as hf_logging

    hf_on, ds_on = hf_logging.is_progress_bar_enabled(), datasets.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if hf_on:
            hf_logging.enable_progress_bar()
        if ds_on:
            datasets.enable_progress_bars()


# ---------------------------------------------------------------------- the trainer
class ExpertTrainer(SFTTrainer):
    """``SFTTrainer`` whose checkpoints are written whole under a temporary name, with expertkit's files."""

    def __init__(self, *args: Any, expert: Expert, record: dict[str, Any], loss_log: LossLog,
                 plain_loss: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.expert = expert
        self.record = record
        self.loss_log = loss_log
        self.plain_loss = plain_loss

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        """TRL's loss (fused LM head) on GPUs; on CPU the model's own cross-entropy, which is faster there.

        Either way the loss is the mean over label tokens (answer and end of turn). Training tokens
        (padding excluded, all processes) are counted for tokens/s.
        """
        real = inputs.pop(REAL_TOKENS, None)  # padding-free batches say how many tokens are not padding
        if model.training:
            mask = inputs.get("attention_mask")
            local = real if real is not None else mask.sum() if mask is not None else inputs["input_ids"].numel()
            local = torch.as_tensor(local, device=self.args.device)
            self.loss_log.tokens += int(self.accelerator.gather(local).sum())
        if self.plain_loss:
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        step = self.state.global_step
        run_dir = Run(self.args.output_dir)
        tmp = run_dir.tmp_checkpoint_path(step)
        final = run_dir.checkpoint_path(step)
        main = self.args.should_save
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        self.store_flos()
        self.save_model(str(tmp), _internal_call=True)
        if not self.args.save_only_model:
            self._save_optimizer_and_scheduler(str(tmp))
            self._save_scaler(str(tmp))
            self._save_rng_state(str(tmp))
        if main:
            for cb in [*self.callback_handler.callbacks, self.control]:
                if isinstance(cb, ExportableState):
                    self.state.stateful_callbacks[cb.__class__.__name__] = cb.state()
            self.state.save_to_json(str(tmp / "trainer_state.json"))
            self._write_expertkit_files(tmp, step)
        self.accelerator.wait_for_everyone()
        if main:
            if final.exists():  # a folder without a record left by an earlier, killed run
                shutil.rmtree(final)
            os.replace(tmp, final)
            say(f"saved {final.name}")
        self.accelerator.wait_for_everyone()

    def _write_expertkit_files(self, folder: Path, step: int) -> None:
        """Chat template and manifest copy, then the record — last, so that it marks the folder whole."""
        atomic_write_text(folder / CHAT_TEMPLATE_NAME, self.expert.contract.chat_template())
        shutil.copyfile(self.expert.root / MANIFEST_NAME, folder / MANIFEST_NAME)
        lr = self.lr_scheduler.get_last_lr()[0] if self.lr_scheduler is not None else None
        CheckpointRecord(**self.record, step=step, loss=self.loss_log.losses.get(step), learning_rate=lr,
                         epoch=self.state.epoch, saved=utc_now(), weights_sha256=weights_digests(folder)).write(folder)


def build_trainer(
    expert: Expert,
    plan: TrainPlan,
    data: EncodedData,
    tokenizer: Any,
    out_dir: Path,
    callbacks: Sequence[TrainerCallback] = (),
) -> ExpertTrainer:
    """The configured trainer (model loaded, PEFT applied) for ``plan`` over ``data``."""
    from peft import LoraConfig

    gpu = use_gpu()
    bf16 = gpu and torch.cuda.is_bf16_supported()
    attn = "sdpa"
    if gpu:
        from transformers.utils import is_flash_attn_2_available

        attn = "flash_attention_2" if is_flash_attn_2_available() else "sdpa"
    liger, liger_note = liger_available()
    dtype = torch.bfloat16 if bf16 and plan.method != "full" else torch.float32
    model = load_model(plan.base_path, device="cpu", dtype=dtype, attn_implementation=attn)
    peft_config = None
    if plan.lora is not None:
        peft_config = LoraConfig(
            r=plan.lora["r"],
            lora_alpha=plan.lora["alpha"],
            lora_dropout=plan.lora["dropout"],
            target_modules=plan.lora["target_modules"],
            use_dora=plan.method == "dora",
            task_type="CAUSAL_LM",
        )
    tokenizer.chat_template = expert.contract.chat_template()  # saved with every checkpoint
    config = SFTConfig(
        output_dir=str(out_dir),
        max_steps=plan.steps,
        gradient_accumulation_steps=plan.gradient_accumulation_steps,
        learning_rate=plan.learning_rate,
        lr_scheduler_type=plan.lr_scheduler,
        warmup_steps=plan.warmup_steps,
        weight_decay=plan.weight_decay,
        seed=plan.seed,
        data_seed=plan.seed,
        logging_steps=1,
        logging_nan_inf_filter=False,  # a nan loss is logged as such (the filter logged 0.0) and stops the run
        save_strategy="steps",
        save_steps=plan.save_every,
        save_only_model=False,
        report_to="none",
        use_cpu=not gpu,
        bf16=bf16,
        fp16=False,
        activation_checkpointing=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=gpu,
        max_length=None,
        completion_only_loss=True,
        padding_free=False,  # padding-free batches come from expertkit.training.packing, on any attention
        remove_unused_columns=False,  # the collator reads the question spans
        disable_tqdm=False,
        per_device_train_batch_size=1 if plan.packed else plan.batch_size,
        dataset_kwargs={"skip_prepare_dataset": True} if plan.packed else None,
        use_liger_kernel=liger,
    )
    record = {
        "expert": expert.name,
        "expert_version": expert.manifest.version,
        "fingerprint": expert.fingerprint,
        "contract": expert.contract.canonical(),
        "method": plan.method,
        "base": plan.base,
        "base_path": plan.base_path,
        **_batch_record(plan),
    }
    loss_log = LossLog(Run(out_dir).loss_log_path)
    train_dataset = data.dataset
    if plan.packed:
        train_dataset = Dataset.from_dict({"rows": pack_batches(
            data.lengths, max_tokens=plan.max_tokens_per_batch, row_tokens=plan.row_tokens, seed=plan.seed)})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*use_liger_kernel.*deprecated", category=FutureWarning)
        trainer = ExpertTrainer(
            model=model,
            args=config,
            train_dataset=train_dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=[loss_log, *callbacks],
            expert=expert,
            record=record,
            loss_log=loss_log,
            plain_loss=not gpu,
        )
    noise = QuestionNoise(trainer.data_collator, tokenizer, plan.question_noise, plan.seed)
    if plan.packed:
        examples = data.dataset.with_format(None)
        trainer.data_collator = PackedCollator(examples, tokenizer.pad_token_id,
                                               noise.noisy_ids if plan.question_noise > 0 else None)
    elif plan.question_noise > 0:
        trainer.data_collator = noise
    if plan.question_noise > 0:
        trainer.add_callback(noise)
    say(f"batches: {_describe_batches(plan)}; attention {attn}; {liger_note}")
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(_QuietProgress())
    return trainer


def liger_available() -> tuple[bool, str]:
    """Whether Liger's kernels (RMSNorm, SwiGLU, RoPE; TRL fuses the LM head and loss) apply here, and a
    log line saying so: they need a CUDA device and the ``liger-kernel`` and ``triton`` packages
    (``pip install 'expertkit[gpu]'``)."""
    import importlib.util

    if not use_gpu():
        return False, "Liger kernels off (no CUDA device)"
    missing = [name for name in ("liger_kernel", "triton") if importlib.util.find_spec(name) is None]
    if missing:
        return False, f"Liger kernels off ({', '.join(missing)} not installed: pip install 'expertkit[gpu]')"
    return True, "Liger kernels on (RMSNorm, SwiGLU, RoPE)"


def _describe_batches(plan: TrainPlan) -> str:
    per_device = (f"padding-free, up to {plan.max_tokens_per_batch} tokens in rows of up to {plan.row_tokens}"
                  if plan.packed else f"padded, {plan.batch_size} examples")
    backend = f" ({torch.distributed.get_backend()})" if torch.distributed.is_initialized() else ""
    return (f"{per_device} per device; {plan.world_size} process(es){backend}, global batch "
            f"{plan.global_batch} {plan.global_batch_unit} per step")


def _batch_record(plan: TrainPlan) -> dict[str, Any]:
    """What the run and checkpoint records say about the batches and the processes that trained."""
    return {"world_size": plan.world_size, "global_batch": plan.global_batch,
            "global_batch_unit": plan.global_batch_unit, "padding_free": plan.packed,
            "max_tokens_per_batch": plan.max_tokens_per_batch or None}


# ---------------------------------------------------------------------- the entry point
def train_expert(expert: Expert, options: TrainOptions) -> TrainResult:
    """Lint, encode, train and checkpoint; see the module docstring for resume and continue semantics."""
    with _quiet_library_bars():
        return _train(expert, options)


def _train(expert: Expert, options: TrainOptions) -> TrainResult:
    t0 = time.perf_counter()
    options.check()
    if options.scoring_settings():
        expert = expert.with_settings(options.scoring_settings(), ("decoding", "evaluation"))
    out = Path(options.out_dir)
    if out.exists() and not out.is_dir():
        raise ExpertkitError("not a folder", path=out, key="--out")
    extending = options.resume or options.continue_to is not None
    folder = Run(out)
    run = folder.record
    if extending and run is None:
        raise ExpertkitError("no run to resume here (no run.json)", path=out, key="--out")
    if not extending and folder.holds_run():
        raise ExpertkitError("already holds a run; pass --resume or --continue-to N to extend it, "
                             "or choose another --out", path=out, key="--out")
    if options.resume and options.continue_to is not None:
        raise ExpertkitError("give --resume or --continue-to, not both", key="--continue-to")
    if extending and run is not None and run.expert != expert.name:
        raise ExpertkitError(f"the run trains expert {run.expert!r}, not {expert.name!r}", path=out)

    resume_from = None
    if extending:
        assert run is not None
        plan = _resumed_plan(run, options, out, expert.manifest, expert.root / MANIFEST_NAME)
        _refuse_changed_inputs(expert, run, plan, options, out)
        progress = folder.progress(run)
        resume_from = progress.latest
        if resume_from is not None:
            changes = check_contract(resume_from, expert, allow_drift=options.allow_drift)
            if changes:
                warn(f"contract changed since {resume_from.name}: {'; '.join(changes)}")
        done = progress.done
        if options.continue_to is not None:
            if options.continue_to <= done:
                raise ExpertkitError(f"the run is at step {done}; --continue-to must be larger",
                                     key="--continue-to")
            plan.training.steps = options.continue_to
        elif progress.stopped_early:
            assert progress.stopped is not None
            raise ExpertkitError(f"the run stopped early at step {progress.stopped.step} (no rise of the "
                                 "metric); use --continue-to N to train further", path=out, key="--resume")
        elif progress.finished:
            raise ExpertkitError(f"the run finished at step {done}; use --continue-to N to extend it",
                                 path=out, key="--resume")
        base_path = plan.base_path
    else:
        values, names = options.overrides()  # refused before anything is loaded
        named = options.profile if options.profile != NO_PROFILE else None
        eval_settings(resolve_settings(expert.manifest, named, values, names=names).training).check()
        base_path = resolve_base(options.base or expert.manifest.base_model)
    tokenizer = load_tokenizer(base_path)
    _lint_or_refuse(expert, tokenizer, options.force)
    max_examples = plan.max_examples if extending else options.max_examples
    data = encode_dataset(expert, tokenizer, max_examples=max_examples, force=options.force)
    if not extending:
        plan = plan_run(expert, options, base_path, data.examples, data.lengths)
    if data.skipped:
        warn(f"left out {sum(data.skipped.values())} records: {dict(data.skipped)}")

    stopper = StopOnInterrupt()
    non_finite = StopOnNonFinite()
    out.mkdir(parents=True, exist_ok=True)
    start_step = resume_from.step if resume_from else 0
    history = (folder.trim_log(folder.eval_log_path, start_step) if extending and int(os.environ.get("RANK", "0")) == 0
               else [])
    evaluator = make_evaluator(expert, plan.evaluation, out, tokenizer, seed=plan.seed, history=history,
                               score_fn=options.score_fn)
    callbacks = [stopper, non_finite, *([evaluator] if evaluator is not None else []), *options.callbacks]
    trainer = build_trainer(expert, plan, data, tokenizer, out, callbacks)
    main = trainer.args.should_save
    trainer.accelerator.wait_for_everyone()
    if main:
        if extending:
            folder.remove_tmp_checkpoints()
            folder.trim_log(folder.loss_log_path, start_step)
        action = RunAction(action="continue" if options.continue_to is not None else "resume" if extending
                           else "train", from_step=start_step, to_step=plan.steps, started=utc_now())
        folder.write_record(RunRecord(
            expert=expert.name,
            expert_root=str(expert.root.resolve()),
            base=plan.base,
            method=plan.method,
            fingerprint=expert.fingerprint,
            contract=expert.contract.canonical(),
            **_batch_record(plan),
            options=plan.to_record(),
            data=DataRecord(train=str(expert.train_path.resolve()), records=data.examples,
                            skipped=dict(data.skipped), sha256=data.sha256),
            created=run.created if run is not None and run.created is not None else utc_now(),
            history=[*(run.history if run is not None else []), action],
        ))
        if evaluator is not None:
            evaluator.write_run_record()
    trainer.accelerator.wait_for_everyone()
    prepared = time.perf_counter()
    if resume_from is not None:
        say(f"resuming from {resume_from.name} to step {plan.steps}")
    with _sigint_stops(stopper):
        trainer.train(resume_from_checkpoint=str(resume_from.path) if resume_from else None)
    seconds = time.perf_counter() - prepared
    if non_finite.bad is not None:
        step, key, value = non_finite.bad
        kept = folder.checkpoints()
        raise ExpertkitError(f"training stopped at step {step}: the {key.replace('_', ' ')} is {value} (lower the "
                             f"learning rate?); the last good checkpoint is "
                             f"{kept[-1].name if kept else 'none (no checkpoint was saved before)'}", path=out)
    final_step = trainer.state.global_step
    losses = trainer.loss_log.losses
    return TrainResult(
        run_dir=out,
        method=plan.method,
        start_step=start_step,
        steps=final_step,
        planned_steps=plan.steps,
        final_loss=losses[max(losses)] if losses else None,
        checkpoints=[c.name for c in folder.checkpoints()],
        seconds=seconds,
        prepare_seconds=prepared - t0,
        tokens=trainer.loss_log.tokens,
        examples=data.examples,
        skipped=sum(data.skipped.values()),
        interrupted=stopper.stopped_at is not None,
        best=evaluator.best if evaluator is not None else None,
        stop_reason=evaluator.stopped.reason if evaluator is not None and evaluator.stopped else None,
        evaluations=len(evaluator.history) - len(history) if evaluator is not None else 0,
        eval_seconds=evaluator.seconds if evaluator is not None else 0.0,
    )
