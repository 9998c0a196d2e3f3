"""``compare``: the base and a run's checkpoints scored on the same cases, task-aware.

The base is loaded once; checkpoints are switched in without reloading it
(:class:`~expertkit.engines.inference.generation.Engine`, or vLLM's multi-LoRA engine). Every prompt
comes from the expert's contract. Each output is split into reasoning and answer, validated, compared with
the gold answer and, for SQL, executed on the fixture,
by :func:`~expertkit.kinds.scoring.score_output`, which also gives each output its verdict.

The best checkpoint is the one with the highest ``evaluation.metric`` — for the shipped experts a correctness
metric — ties broken by :data:`~expertkit.kinds.scoring.TIE_BREAKS`, then the earliest step.
``drift`` scores drifted prompts — the contract's drift variants
(:meth:`~expertkit.core.contract.PromptContract.drift_variants`), each one ``check-prompt`` refuses — on the best
checkpoint to show what a wrong prompt format costs. See ``docs/compare.md`` for the report's keys.

Scores recorded while training (``train --eval-every``) are reused for unchanged checkpoints, cases,
contract and scorer (:mod:`expertkit.evaluation.checkpoint_scores`; ``rescore`` generates again). ``samples`` > 1
decodes each checkpoint's answers by validator-guided voting (:mod:`expertkit.engines.inference.voting`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from expertkit.core.checkpoints import Run, check_contract
from expertkit.core.contract import DRIFT_KINDS
from expertkit.core.data import load_examples
from expertkit.core.errors import ContractError, ExpertkitError
from expertkit.core.fileio import check_output_dir, utc_now
from expertkit.core.log import say, warn
from expertkit.core.options import check_count
from expertkit.core.settings import check_setting
from expertkit.engines.inference import (
    InferenceEngine,
    contract_stops,
    create_engine,
    engine_class,
    generate_for,
    sample_for,
)
from expertkit.engines.inference.constrain import resolve_mode
from expertkit.engines.inference.generation import Generation, Sampling
from expertkit.engines.inference.hf import SMALL_MODEL_BATCH, SMALL_MODEL_PARAMS
from expertkit.kinds.scoring import SCORER_VERSION, VERDICTS, Score, pick_best, score_output, summarize, verdict_of
from expertkit.models.base import same_base

if TYPE_CHECKING:
    from expertkit.expert import Expert

__all__ = [  # scoring lives in expertkit.kinds.scoring, the small-model rules in expertkit.engines.inference.hf
    "DRIFT_KINDS", "SMALL_MODEL_BATCH", "SMALL_MODEL_PARAMS", "VERDICTS", "Score", "pick_best", "score_output",
    "summarize", "verdict_of",
]
BASE_NAME = "base"
#: The manifest sections compare's ``--set`` overrides.
SETTINGS_SECTIONS = ("decoding", "evaluation")
REPORT_VERSION = 1


class Progress(Protocol):
    """Progress bars (``rich.progress.Progress`` is one): a task per model scored, advanced per batch."""

    def add_task(self, description: str, *, total: float | None) -> Any: ...

    def advance(self, task_id: Any, advance: float) -> None: ...


class _NoProgress:
    def add_task(self, description: str, *, total: float | None) -> int:
        return 0

    def advance(self, task_id: Any, advance: float) -> None:
        pass


@dataclass
class CompareOptions:
    """What ``expertkit compare`` takes; ``None`` means the run's or the manifest's value."""

    run_dir: Path
    base: str | None = None
    cases: Path | None = None
    checkpoints: str | None = None
    out_dir: Path | None = None
    drift: bool = False
    engine: str = "hf"
    max_cases: int | None = None
    allow_drift: bool = False
    batch_size: int | None = None
    #: Ignore the scores recorded while training and generate again.
    rescore: bool = False
    #: Candidates per case for validator-guided decoding (1: greedy).
    samples: int = 1
    #: none | json | schema (None: the manifest's ``decoding.constrain``)
    constrain: str | None = None
    #: ``SECTION.KEY -> value`` overrides of the manifest's decoding and evaluation settings (``--set``); the
    #: named options above win over them.
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """One evaluation case: canonical fields, question, gold answer, and the rendered prompt."""

    line: int
    fields: dict[str, str]
    question: str
    gold: str | None
    prompt: str


@dataclass
class CompareResult:
    """The report (``compare.json``'s content) and where it was written."""

    report: dict[str, Any]
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def best(self) -> dict[str, Any] | None:
        return self.report.get("best")


# ---------------------------------------------------------------------- cases and drifted prompts
def load_cases(expert: Expert, path: Path, max_cases: int | None) -> list[Case]:
    """Records of ``path`` as cases with canonical fields and rendered prompts."""
    cases: list[Case] = []
    for ex in load_examples(path)[:max_cases]:
        try:
            fields = expert.contract.normalize(dict(ex.fields))
            prompt = expert.contract.render_prompt(fields, ex.question)
        except ContractError as exc:
            raise ExpertkitError(f"case cannot be rendered: {exc.message}", path=path, line=ex.line) from None
        cases.append(Case(ex.line, fields, ex.question.strip(), ex.answer, prompt))
    return cases


def lint_cases(expert: Expert, path: Path) -> list[str]:
    """Lint a cases file as ``lint`` does: its errors stop (invalid, empty or think-block gold answers, control
    tokens, too long), its warnings come back as lines to print."""
    from expertkit.authoring.lint import lint_file

    report = lint_file(expert, path, bad_lines="raise")  # a line without a JSON value: one-line error
    errors = [f for f in report.findings if f.severity == "error"]
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more errors: expertkit lint {expert.root} --data {path})" if len(
            errors) > 1 else ""
        raise ExpertkitError(f"{first.code}: {first.message}{more}", path=path, line=first.line, key="--cases")
    return [f"{path}:{f.line}: {f.code}: {f.message}" if f.line else f"{path}: {f.code}: {f.message}"
            for f in report.findings]


# ---------------------------------------------------------------------- generation backends
Advance = Callable[[int], None]


class Backend(Protocol):
    """Generates for the base (``None``) or a registered checkpoint."""

    tokenizer: Any

    def generate(self, name: str | None, prompts: Sequence[Sequence[int]], advance: Advance,
                 fields: Sequence[Mapping[str, str]]) -> list[Generation]:
        """Greedy outputs in prompt order (``fields``: each prompt's, for its grammar); ``advance(n)`` after
        each batch."""
        ...

    def sample(self, name: str | None, prompts: Sequence[Sequence[int]], sampling: Sampling,
               advance: Advance) -> list[list[Generation]]:
        """``sampling.n`` candidates per prompt (with log-probabilities), in prompt order."""
        ...


class EngineBackend:
    """The inference engine (:mod:`expertkit.engines.inference`) as compare's backend: greedy outputs through
    :func:`~expertkit.engines.inference.generate_for`, the one path ``compare``, ``serve`` and ``ask`` share;
    seeded candidates for validator-guided voting."""

    def __init__(self, engine: InferenceEngine, expert: Expert, *, max_new_tokens: int, batch_size: int,
                 constrain: str = "none") -> None:
        self.engine = engine
        self.expert = expert
        self.tokenizer = engine.tokenizer
        self.max_new_tokens = max_new_tokens
        self.batch_size = max(batch_size, getattr(engine, "min_batch", 0))
        self.constrain = constrain
        self.stops = contract_stops(expert.contract, engine.tokenizer)

    def generate(self, name: str | None, prompts: Sequence[Sequence[int]], advance: Advance,
                 fields: Sequence[Mapping[str, str]]) -> list[Generation]:
        return generate_for(self.engine, self.expert, name, prompts, fields, max_new_tokens=self.max_new_tokens,
                            constrain=self.constrain, batch_size=self.batch_size, advance=advance)

    def sample(self, name: str | None, prompts: Sequence[Sequence[int]], sampling: Sampling,
               advance: Advance) -> list[list[Generation]]:
        return sample_for(self.engine, self.expert, name, prompts, sampling, max_new_tokens=self.max_new_tokens,
                          batch_size=self.batch_size, advance=advance)


# ---------------------------------------------------------------------- the command
def _generate_scored(backend: Backend, expert: Expert, name: str | None, label: str, prompts: Sequence[Sequence[int]],
                     cases: Sequence[Case], progress: Progress) -> tuple[list[Score], float]:
    task = progress.add_task(label, total=len(prompts))
    t0 = time.perf_counter()
    generations = backend.generate(name, prompts, lambda n: progress.advance(task, n), [c.fields for c in cases])
    seconds = time.perf_counter() - t0
    scores = []
    for case, g in zip(cases, generations, strict=True):
        s = score_output(expert, g.text, case.fields, case.gold, case.question)
        scores.append(replace(s, new_tokens=g.new_tokens, finished=g.finished, latency_s=g.latency_s))
    return scores, seconds


def _generate_voted(backend: Backend, expert: Expert, name: str | None, label: str,
                    prompts: Sequence[Sequence[int]], cases: Sequence[Case], sampling: Sampling,
                    progress: Progress) -> tuple[list[Score], list[dict[str, Any]], float]:
    """Validator-guided decoding: ``sampling.n`` candidates per case, voted; greedy where none is valid."""
    from expertkit.engines.inference.voting import vote_or_greedy

    task = progress.add_task(f"{label} x{sampling.n}", total=len(prompts))
    t0 = time.perf_counter()
    drawn = backend.sample(name, prompts, sampling, lambda n: progress.advance(task, n))
    chosen = vote_or_greedy(expert, [c.fields for c in cases], drawn, lambda idx: backend.generate(
        name, [prompts[i] for i in idx], lambda n: None, [cases[i].fields for i in idx]))
    seconds = time.perf_counter() - t0
    scores: list[Score] = []
    votes = []
    for case, (g, v) in zip(cases, chosen, strict=True):
        s = score_output(expert, g.text, case.fields, case.gold)
        scores.append(replace(s, new_tokens=g.new_tokens, finished=g.finished, latency_s=g.latency_s))
        votes.append(v)
    return scores, [v.to_dict() for v in votes], seconds


def _drop(baseline: Mapping[str, Any], drifted: Mapping[str, Any], key: str) -> float | None:
    """How much ``key`` fell from the clean prompts to the drifted ones."""
    if baseline[key] is None or drifted[key] is None:
        return None
    return float(baseline[key] - drifted[key])


def _drift_sweep(backend: Backend, expert: Expert, target: dict[str, Any], cases: Sequence[Case],
                 clean: Sequence[Score], metric: str, progress: Progress) -> dict[str, Any]:
    """Score drifted prompts on ``target`` and the drop from its clean scores on the same cases."""
    kinds: list[dict[str, Any]] = []
    variants = [expert.contract.drift_variants(c.fields, c.question) for c in cases]
    for k, kind in enumerate(DRIFT_KINDS):
        picked = [(i, p) for i, vs in enumerate(variants) if (p := vs[k].prompt) is not None]
        description = variants[0][k].description if variants else kind
        entry: dict[str, Any] = {"kind": kind, "description": description, "cases": len(picked)}
        if not picked:
            entry.update(applicable=False, baseline=None, drifted=None, drop=None, valid_drop=None,
                         example_prompt=None, outputs=[])
            kinds.append(entry)
            continue
        ids = [backend.tokenizer(p, add_special_tokens=False)["input_ids"] for _, p in picked]
        sub = [cases[i] for i, _ in picked]
        name = None if target["step"] is None else target["name"]
        scores, seconds = _generate_scored(backend, expert, name, f"drift {kind}", ids, sub, progress)
        baseline = summarize([clean[i] for i, _ in picked], taxonomy=expert.kind.error_kinds())
        drifted = summarize(scores, seconds, expert.kind.error_kinds())
        entry.update(
            applicable=True, baseline=baseline, drifted=drifted, drop=_drop(baseline, drifted, metric),
            valid_drop=_drop(baseline, drifted, "valid"),
            example_prompt=picked[0][1],
            outputs=[{"case": i, "output": s.output, "answer": s.answer, "verdict": s.verdict}
                     for (i, _), s in zip(picked, scores, strict=True)],
        )
        kinds.append(entry)
    return {"model": target["name"], "step": target["step"], "metric": metric, "kinds": kinds}


def compare_run(expert: Expert, options: CompareOptions, *, progress: Progress | None = None) -> CompareResult:
    """Score base and checkpoints, pick the best, optionally sweep drift, and write the reports; the result holds
    the report (the command line prints it). Progress lines and warnings are logged (:mod:`expertkit.core.log`);
    ``progress`` shows the generation of each model."""
    from expertkit.evaluation.report import REPORT_NAMES, write_reports

    run_dir = Path(options.run_dir)
    if not run_dir.is_dir():
        raise ExpertkitError("no such run folder", path=run_dir, key="--run")
    folder = Run(run_dir)
    if options.settings:
        expert = expert.with_settings(options.settings, SETTINGS_SECTIONS)
    for key, value, option in (("evaluation.max_cases", options.max_cases, "--max-cases"),
                               ("evaluation.batch_size", options.batch_size, "--batch-size")):
        if value is not None:  # checked as the manifest's own value would be
            check_setting(key, value, option)
    check_count(options.samples, "--samples")
    out_dir = Path(options.out_dir) if options.out_dir is not None else folder.compare_dir
    check_output_dir(out_dir, key="--out", ours=REPORT_NAMES)  # before the scoring, not after
    engine_class(options.engine)  # an unknown engine fails before anything is read
    constrain = resolve_mode(expert, options.constrain)
    run = folder.record
    if run is not None and run.expert not in (None, expert.name):
        raise ExpertkitError(f"the run trains expert {run.expert!r}, not {expert.name!r}", path=run_dir,
                             key="--run")
    checkpoints, incomplete = folder.select(options.checkpoints)
    if not checkpoints:
        raise ExpertkitError("no complete checkpoints in the run"
                             + (f" ({', '.join(incomplete)} incomplete)" if incomplete else ""), path=run_dir)
    changes = {ck.name: check_contract(ck, expert, allow_drift=options.allow_drift) for ck in checkpoints}
    cases_path = Path(options.cases) if options.cases is not None else expert.eval_path
    max_cases = options.max_cases or expert.manifest.evaluation.max_cases
    case_warnings = lint_cases(expert, cases_path) if options.cases is not None else []
    cases = load_cases(expert, cases_path, max_cases)
    base = folder.base(options.base, checkpoints, same=same_base)  # after the inputs: their errors come first
    for warning in case_warnings:
        warn(warning)
    for name in incomplete:  # warnings only once every input is known good (an error stays one line)
        warn(f"skipping {name}: incomplete (its save did not finish)")
    for name, found in changes.items():
        if found:
            warn(f"{name} was trained on another contract (--allow-drift): {'; '.join(found)}")
    metric = expert.manifest.evaluation.metric
    max_new = expert.manifest.decoding.max_new_tokens
    batch_size = options.batch_size or expert.manifest.evaluation.batch_size
    stops = expert.contract.stop_strings

    say(f"compare: {len(cases)} cases from {cases_path}, base {base}, {len(checkpoints)} checkpoint(s), "
        f"engine {options.engine}, constrain {constrain}", highlight=True)
    engine = create_engine(options.engine, base, {ck.name: ck.path for ck in checkpoints})
    backend: Backend = EngineBackend(engine, expert, max_new_tokens=max_new, batch_size=batch_size,
                                     constrain=constrain)
    prompts = [expert.contract.encode_prompt(backend.tokenizer, c.fields, c.question) for c in cases]

    from expertkit.evaluation.checkpoint_scores import recorded_scores

    sampling = None
    if options.samples > 1:
        dec = expert.manifest.decoding
        sampling = Sampling(n=options.samples, temperature=dec.temperature, top_p=dec.top_p, seed=dec.seed)
    rows: list[dict[str, Any]] = []
    per_model: dict[str, list[Score]] = {}
    per_model_votes: dict[str, list[dict[str, Any]]] = {}
    progress = progress if progress is not None else _NoProgress()
    for ck in [None, *checkpoints]:
        name = ck.name if ck else BASE_NAME
        reused = {}
        rescored = False
        if ck is not None and sampling is None and not options.rescore and constrain == "none":
            recorded = recorded_scores(ck, expert, cases, max_new_tokens=max_new, stop_strings=stops)
            reused, rescored = recorded.scores, recorded.rescored
        todo = [i for i in range(len(cases)) if i not in reused]
        seconds = 0.0
        if sampling is not None:
            scores, votes, seconds = _generate_voted(backend, expert, ck.name if ck else None, name, prompts,
                                                     cases, sampling, progress)
            per_model_votes[name] = votes
        else:
            fresh: list[Score] = []
            if todo:
                fresh, seconds = _generate_scored(backend, expert, ck.name if ck else None, name,
                                                  [prompts[i] for i in todo], [cases[i] for i in todo],
                                                  progress)
            fresh_by = dict(zip(todo, fresh, strict=True))
            scores = [reused[i] if i in reused else fresh_by[i] for i in range(len(cases))]
        if reused:
            say(f"{name}: {len(reused)} of {len(cases)} cases reused from the scores recorded while training"
                + (" (scored again: the scorer changed)" if rescored else ""), highlight=True)
        per_model[name] = scores
        summary = summarize(scores, taxonomy=expert.kind.error_kinds())
        summary["outputs_per_s"] = len(todo) / seconds if todo and seconds else None  # generated ones
        rows.append({
            "name": name,
            "step": ck.step if ck else None,
            "path": str(ck.path) if ck else base,
            "kind": ck.kind if ck else "base",
            "contract_changes": changes.get(name, []),
            "generation_s": round(seconds, 3),
            "reused": len(reused),
            "samples": options.samples,
            **summary,
        })
    best = pick_best(rows, metric)
    drift = None
    if options.drift:
        target = rows[-1] if best is None else next(r for r in rows if r["name"] == best["name"])
        drift = _drift_sweep(backend, expert, target, cases, per_model[target["name"]], metric, progress)

    report: dict[str, Any] = {
        "version": REPORT_VERSION,
        "expert": expert.name,
        "expert_version": expert.manifest.version,
        "fingerprint": expert.fingerprint,
        "output_kind": expert.manifest.output.kind,
        "metric": metric,
        "scorer_version": SCORER_VERSION,
        "run": str(run_dir),
        "base": base,
        "engine": options.engine,
        "constrain": constrain,
        "cases_source": str(cases_path),
        "max_new_tokens": max_new,
        "batch_size": getattr(backend, "batch_size", batch_size),
        "samples": options.samples,
        "sampling": None if sampling is None else {"temperature": sampling.temperature, "top_p": sampling.top_p,
                                                   "seed": sampling.seed},
        "created": utc_now(),
        "skipped": incomplete,
        "models": rows,
        "best": best,
        "cases": [
            {
                "line": c.line,
                "fields": c.fields,
                "question": c.question,
                "gold": c.gold,
                "prompt": c.prompt,
                "outputs": {name: {**scores[i].to_dict(),
                                   **({"vote": per_model_votes[name][i]} if name in per_model_votes else {})}
                            for name, scores in per_model.items()},
            }
            for i, c in enumerate(cases)
        ],
    }
    if drift is not None:
        report["drift"] = drift
    if run is not None and run.evaluations:
        report["training"] = run.model_dump(mode="json", include={"evaluations", "best", "stopped"})
    return CompareResult(report, write_reports(report, out_dir))
