"""The one function that turns a raw model output into a scored verdict, and what is built on it.

:func:`score_output` is used by ``compare``, ``serve``, ``validate`` and ``lint`` (and through them by
everything that judges an output): the output is split into reasoning, answer and surrounding text
(:func:`~expertkit.reasoning.analyze_output`), the answer is validated for the case's fields and, with a
gold answer, compared with it (equivalence; execution match where the validator can run answers).

Verdicts, strictest first:

* ``direct_valid``: the output is a valid answer and nothing else;
* ``answer_with_text``: a valid answer with text around it (a code fence, a label, trailing prose) and
  no reasoning;
* ``reasoning_and_valid``: reasoning (a think block, or prose before the answer), then a valid answer;
* ``reasoning_only``: reasoning and no valid answer after it;
* ``invalid``: no reasoning, and the answer is not valid (or there is none).

:func:`summarize` turns a model's scores into rates, and :func:`pick_best` picks the best checkpoint.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from expertkit.reasoning import OutputAnalysis, analyze_output

if TYPE_CHECKING:
    from expertkit.expert import Expert

VERDICTS: tuple[str, ...] = ("direct_valid", "answer_with_text", "reasoning_and_valid", "reasoning_only", "invalid")
#: Bump when scoring changes what it reports for the same output (recorded scores are then stale).
SCORER_VERSION = 2


@dataclass(frozen=True)
class Score:
    """One output judged: reasoning, extracted answer, validity, equivalence, execution, verdict."""

    output: str
    answer: str
    reasoning: str
    reasoning_kind: str | None
    valid: bool
    equivalent: bool | None
    execution_match: bool | None
    verdict: str
    errors: list[str]
    new_tokens: int = 0
    finished: bool = True
    latency_s: float = 0.0
    warnings: list[str] = field(default_factory=list)
    #: What surrounds the answer besides reasoning (code fence, label, trailing text), for people.
    text: list[str] = field(default_factory=list)

    @property
    def has_reasoning(self) -> bool:
        return self.reasoning_kind is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "answer": self.answer,
            "reasoning": self.reasoning,
            "reasoning_kind": self.reasoning_kind,
            "valid": self.valid,
            "equivalent": self.equivalent,
            "execution_match": self.execution_match,
            "verdict": self.verdict,
            "errors": self.errors,
            "warnings": self.warnings,
            "text": self.text,
            "new_tokens": self.new_tokens,
            "finished": self.finished,
        }


def verdict_of(has_reasoning: bool, valid: bool, has_text: bool = False) -> str:
    """The verdict of one output (``has_text``: a fence, label or trailing text around the answer)."""
    if has_reasoning:
        return "reasoning_and_valid" if valid else "reasoning_only"
    if not valid:
        return "invalid"
    return "answer_with_text" if has_text else "direct_valid"


def no_answer_error(analysis: OutputAnalysis) -> str:
    """Why an output with an empty answer has none."""
    if analysis.kind == "unclosed_think":
        return "no answer: the think block never closes"
    return "no answer after the reasoning" if analysis.has_reasoning else "empty output"


def score_output(expert: Expert, raw: str, fields: Mapping[str, str], gold: str | None = None) -> Score:
    """Judge one raw output for a case with these canonical ``fields`` (and ``gold`` answer, if any)."""
    analysis = analyze_output(raw, expert.manifest.output.kind)
    validator = expert.validator
    answer = analysis.answer
    warnings: list[str] = []
    if answer:
        result = validator.validate(answer, fields)
        valid, errors, warnings = result.valid, list(result.errors), list(result.warnings)
    else:
        valid, errors = False, [no_answer_error(analysis)]
    equivalent: bool | None = None
    execution: bool | None = None
    if gold is not None:
        equivalent = bool(answer) and validator.equivalent(answer, gold, fields)
        if expert.manifest.output.kind == "sql":
            execution = validator.execution_match(answer, gold, fields)
    return Score(
        output=raw,
        answer=answer,
        reasoning=analysis.reasoning,
        reasoning_kind=analysis.kind,
        valid=valid,
        equivalent=equivalent,
        execution_match=execution,
        verdict=verdict_of(analysis.has_reasoning, valid, analysis.has_text),
        errors=errors,
        warnings=warnings,
        text=analysis.text_notes(),
    )


def rate(values: Sequence[bool | None]) -> float | None:
    """Share of ``True`` among the values that are not ``None`` (``None`` when all are)."""
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def summarize(scores: Sequence[Score], seconds: float | None = None) -> dict[str, Any]:
    """The metrics of one model over its outputs (rates in [0, 1])."""
    n = len(scores)
    verdicts = Counter(s.verdict for s in scores)
    return {
        "cases": n,
        "valid": rate([s.valid for s in scores]),
        "equivalent": rate([s.equivalent for s in scores]),
        "execution_match": rate([s.execution_match for s in scores]),
        "reasoning": rate([s.reasoning_kind is not None for s in scores]),
        "direct_valid": rate([s.verdict == "direct_valid" for s in scores]),
        "answer_with_text": rate([s.verdict == "answer_with_text" for s in scores]),
        "verdicts": {v: verdicts.get(v, 0) for v in VERDICTS},
        "unfinished": rate([not s.finished for s in scores]),
        "mean_output_tokens": sum(s.new_tokens for s in scores) / n if n else None,
        "mean_latency_s": sum(s.latency_s for s in scores) / n if n else None,
        "outputs_per_s": n / seconds if seconds else None,
    }


def pick_best(models: Sequence[Mapping[str, Any]], metric: str) -> dict[str, Any] | None:
    """The checkpoint row with the highest ``metric``; ties (and unknown values) go to the earliest step."""
    candidates = [m for m in models if m.get("step") is not None]
    if not candidates:
        return None

    def key(m: Mapping[str, Any]) -> tuple[float, int]:
        value = m.get(metric)
        return (value if value is not None else -1.0, -int(m["step"]))

    best = max(candidates, key=key)
    return {"name": best["name"], "step": best["step"], "metric": metric, "value": best.get(metric)}
