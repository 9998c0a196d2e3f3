"""``expertkit ask``: put questions to a trained expert without a server.

The same path as ``compare`` and ``serve``: the checkpoint's recorded base (another ``--base`` is
refused), the contract's prompt and stops, the engine of :mod:`expertkit.engines.inference`, the expert's
constrained-decoding default, and :func:`~expertkit.kinds.scoring.score_output` for the verdict. So an
answer here is byte-identical to what ``compare`` measured and ``serve`` returns for the same
checkpoint, fields and question.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expertkit.core.checkpoints import Checkpoint, check_contract, load_checkpoint
from expertkit.core.errors import ContractError, ExpertkitError
from expertkit.core.fileio import iter_jsonl
from expertkit.core.options import check_count
from expertkit.engines.inference import InferenceEngine, create_engine, engine_class, generate_for, voted_for
from expertkit.engines.inference.constrain import resolve_mode
from expertkit.engines.inference.generation import Generation, Sampling
from expertkit.expert import Expert
from expertkit.kinds.scoring import score_output
from expertkit.models.base import choose_base

#: The name the checkpoint is registered under in the engine.
CHECKPOINT_NAME = "expert"


@dataclass
class AskOptions:
    """What ``expertkit ask`` takes; ``None`` means the checkpoint's or the manifest's value."""

    checkpoint: Path | None = None
    base: str | None = None
    engine: str = "hf"
    constrain: str | None = None
    allow_drift: bool = False
    max_new_tokens: int | None = None
    batch_size: int | None = None
    #: Validator-guided decoding: candidates per question (1: greedy), chosen by
    #: :func:`expertkit.engines.inference.voting.vote`.
    samples: int = 1


@dataclass(frozen=True)
class Question:
    """One question with its fields (as given) and where it came from (a JSONL line, or none)."""

    fields: dict[str, Any]
    question: str
    line: int | None = None


@dataclass(frozen=True)
class Answer:
    """One answer: the raw output, the answer in it, its verdict and what it cost."""

    question: str
    fields: dict[str, str]
    output: str
    answer: str
    valid: bool
    verdict: str
    errors: list[str]
    tokens: int
    finished: bool
    latency_ms: float
    line: int | None = None
    #: With ``--samples N``: the candidates and the vote (:meth:`expertkit.engines.inference.voting.Vote.to_dict`).
    vote: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        body = {"question": self.question, "fields": self.fields, "answer": self.answer, "output": self.output,
                "valid": self.valid, "verdict": self.verdict, "errors": self.errors, "tokens": self.tokens,
                "finished": self.finished, "latency_ms": self.latency_ms}
        if self.vote is not None:
            body["vote"] = self.vote
        return {"line": self.line, **body} if self.line is not None else body


def resolve_target(spec: str, checkpoint: Path | None) -> tuple[Expert, Path]:
    """An expert folder (``--checkpoint`` needed) or an installed ``NAME[@VERSION]`` (its checkpoint by default)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        expert = Expert.load(path)
        if checkpoint is None:
            raise ExpertkitError("give the checkpoint to ask with --checkpoint CK", path=path, key="--checkpoint")
        return expert, checkpoint
    if "/" in spec or spec.startswith("."):
        raise ExpertkitError("no such expert folder (give a folder or an installed NAME[@VERSION])", path=spec)
    from expertkit.packaging.package import resolve_installed

    installed = resolve_installed(spec)
    return Expert.load(installed.path), checkpoint if checkpoint is not None else installed.checkpoint_path


def canonical_fields(expert: Expert, item: Question, source: Path | None = None) -> dict[str, str]:
    """The contract's fields for a question; a field the contract refuses is a one-line error."""
    try:
        return expert.contract.normalize(item.fields)
    except ContractError as exc:
        raise ExpertkitError(exc.message, path=source, line=item.line, key="--field" if source is None else "fields"
                             ) from None


class Asker:
    """An expert, its checkpoint and a loaded engine, answering batches of questions."""

    def __init__(self, expert: Expert, options: AskOptions, *, engine: InferenceEngine | None = None) -> None:
        if options.checkpoint is None:
            raise ExpertkitError("give the checkpoint to ask with --checkpoint CK", key="--checkpoint")
        engine_class(options.engine)
        check_count(options.samples, "--samples")
        self.expert = expert
        self.options = options
        self.checkpoint: Checkpoint = load_checkpoint(options.checkpoint)
        self.drift = check_contract(self.checkpoint, expert, allow_drift=options.allow_drift)
        self.mode = resolve_mode(expert, options.constrain)
        self.base = choose_base(options.base, [(str(self.checkpoint.path), self.checkpoint.record)])
        self.max_new_tokens = options.max_new_tokens or expert.manifest.decoding.max_new_tokens
        self.batch_size = options.batch_size or expert.manifest.evaluation.batch_size
        dec = expert.manifest.decoding
        self.sampling = (Sampling(n=options.samples, temperature=dec.temperature, top_p=dec.top_p, seed=dec.seed)
                         if options.samples > 1 else None)
        self.engine = engine or create_engine(options.engine, self.base, {CHECKPOINT_NAME: self.checkpoint.path})

    def ask(self, items: Sequence[Question], source: Path | None = None) -> list[Answer]:
        """Answers in the order of ``items`` (every question is checked before any is generated)."""
        fields = [canonical_fields(self.expert, item, source) for item in items]
        prompts: list[list[int]] = []
        for item, canonical in zip(items, fields, strict=True):
            if not item.question.strip():
                raise ExpertkitError("empty question", path=source, line=item.line, key="question")
            try:
                prompts.append(self.expert.contract.encode_prompt(self.engine.tokenizer, canonical, item.question))
            except ContractError as exc:
                raise ExpertkitError(exc.message, path=source, line=item.line, key="question") from None
        votes: list[dict[str, Any] | None] = [None] * len(prompts)
        if self.sampling is None:
            outputs: list[Generation] = generate_for(
                self.engine, self.expert, CHECKPOINT_NAME, prompts, fields, max_new_tokens=self.max_new_tokens,
                constrain=self.mode, batch_size=self.batch_size)
        else:
            voted = voted_for(self.engine, self.expert, CHECKPOINT_NAME, prompts, fields, self.sampling,
                              max_new_tokens=self.max_new_tokens, constrain=self.mode, batch_size=self.batch_size)
            outputs = [g for g, _ in voted]
            votes = [v.to_dict() for _, v in voted]
        answers = []
        for item, canonical, output, vote in zip(items, fields, outputs, votes, strict=True):
            score = score_output(self.expert, output.text, canonical, None, item.question)
            answers.append(Answer(item.question, canonical, output.text, score.answer, score.valid, score.verdict,
                                  score.errors, output.new_tokens, output.finished,
                                  round(output.latency_s * 1000, 1), item.line, vote))
        return answers


def read_questions(path: Path, defaults: Mapping[str, str]) -> list[Question]:
    """``{"question": ..., "fields": {...}}`` per line (``fields`` over the ``--field`` defaults)."""
    items: list[Question] = []
    for line, record in iter_jsonl(path):
        if not isinstance(record, dict) or not isinstance(record.get("question"), str):
            raise ExpertkitError('expected {"question": "...", "fields": {...}}', path=path, line=line)
        fields = record.get("fields", {})
        if not isinstance(fields, dict):
            raise ExpertkitError("'fields' must be an object", path=path, line=line, key="fields")
        items.append(Question({**defaults, **fields}, record["question"], line))
    if not items:
        raise ExpertkitError("no questions in file", path=path)
    return items
