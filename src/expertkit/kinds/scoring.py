"""The one function that turns a raw model output into a scored verdict, and what is built on it.

:func:`score_output` is used by ``compare``, ``serve``, ``validate`` and ``lint`` (and through them by
everything that judges an output): the output is split into reasoning, answer and surrounding text
(:func:`~expertkit.core.reasoning.analyze_output`), the answer is validated for the case's fields and, with a
gold answer, compared with it (equivalence; execution match where the validator can run answers).

Verdicts, strictest first:

* ``direct_valid``: the output is a valid answer and nothing else;
* ``answer_with_text``: a valid answer with text around it (a code fence, a label, trailing prose) and
  no reasoning;
* ``reasoning_and_valid``: reasoning (a think block, or prose before the answer), then a valid answer;
* ``reasoning_only``: reasoning and no valid answer after it;
* ``invalid``: no reasoning, and the answer is not valid (or there is none).

With a gold answer an output is also judged for **correctness**: ``correct`` is execution match where
the answers can run (SQL), else equivalence; where the expert's kind has a matcher
(:mod:`expertkit.kinds.correctness`) the answer's parts are matched with the gold answer's (``component``:
precision, recall, F1) and its literals checked against the question and the known values
(``ungrounded``). Every output not correct gets its ``error_kinds`` from the expert's kind's taxonomy
(:meth:`~expertkit.kinds.OutputKind.error_kinds`: the generic error kinds and the kind's own).

:func:`summarize` turns a model's scores into rates, and :func:`pick_best` picks the best checkpoint.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from expertkit.core.reasoning import OutputAnalysis, analyze_output
from expertkit.kinds.correctness import ErrorKind, error_taxonomy, in_taxonomy_order

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
    #: Execution match where known, else equivalence; ``None`` without a gold answer.
    correct: bool | None = None
    #: Precision, recall and F1 of the answer's parts against the gold answer's (kinds with a matcher).
    component: dict[str, float] | None = None
    #: The answer's literals found neither in the question nor among the field's known values.
    ungrounded: list[str] = field(default_factory=list)
    #: What is wrong with the output, in the order of the kind's error taxonomy (empty when correct).
    error_kinds: list[str] = field(default_factory=list)

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
            "correct": self.correct,
            "component": self.component,
            "ungrounded": self.ungrounded,
            "error_kinds": self.error_kinds,
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


def score_output(expert: Expert, raw: str, fields: Mapping[str, str], gold: str | None = None,
                 question: str | None = None) -> Score:
    """Judge one raw output for a case with these canonical ``fields`` (and ``gold`` answer, and the
    ``question`` for grounding, if any)."""
    analysis = analyze_output(raw, expert.kind)
    validator = expert.validator
    matcher = expert.matcher
    answer = analysis.answer
    warnings: list[str] = []
    if answer:
        result = validator.validate(answer, fields)
        valid, errors, warnings = result.valid, list(result.errors), list(result.warnings)
    else:
        valid, errors = False, [no_answer_error(analysis)]
    equivalent: bool | None = None
    execution: bool | None = None
    correct: bool | None = None
    component: dict[str, float] | None = None
    differences: list[str] = []
    if gold is not None:
        equivalent = bool(answer) and validator.equivalent(answer, gold, fields)
        execution = validator.execution_match(answer, gold, fields)  # None where answers cannot run
        correct = execution if execution is not None else equivalent
        if matcher is not None:
            found = matcher.compare(answer, gold)
            if found is not None:
                component = found.to_dict()
                differences = found.differences
    ungrounded: list[str] = []
    if matcher is not None and answer and question is not None:
        ungrounded = matcher.ungrounded(answer, fields, question)
    verdict = verdict_of(analysis.has_reasoning, valid, analysis.has_text)
    kinds: set[str] = set()
    if analysis.has_reasoning:
        kinds.add("reasoning")
    if analysis.has_text:
        kinds.add("trailing_text")
    if not valid and answer:
        kinds.add(matcher.broken if matcher is not None and not matcher.parses(answer) else "invalid")
    elif not valid and not analysis.has_reasoning:  # an empty output (reasoning alone says "reasoning")
        kinds.add("invalid")
    if correct is False:
        kinds.update(differences)
        if component is not None and valid and not differences:
            kinds.add("wrong_structure")  # the same parts, not equivalent: arranged otherwise
        if ungrounded:
            kinds.add("ungrounded_value")
        if valid and execution is False:
            kinds.add("wrong_result")
    return Score(
        output=raw,
        answer=answer,
        reasoning=analysis.reasoning,
        reasoning_kind=analysis.kind,
        valid=valid,
        equivalent=equivalent,
        execution_match=execution,
        verdict=verdict,
        errors=errors,
        warnings=warnings,
        text=analysis.text_notes(),
        correct=correct,
        component=component,
        ungrounded=ungrounded,
        error_kinds=in_taxonomy_order(kinds, expert.kind.error_kinds()),
    )


def rate(values: Sequence[bool | None]) -> float | None:
    """Share of ``True`` among the values that are not ``None`` (``None`` when all are)."""
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def summarize(scores: Sequence[Score], seconds: float | None = None,
              taxonomy: Sequence[ErrorKind] | None = None) -> dict[str, Any]:
    """The metrics of one model over its outputs (rates in [0, 1]), correctness first. ``errors`` counts each
    error kind of the ``taxonomy`` (the expert's kind's; the generic one by default) and any other found."""
    n = len(scores)
    verdicts = Counter(s.verdict for s in scores)
    kinds = Counter(k for s in scores for k in s.error_kinds)
    known = error_taxonomy() if taxonomy is None else tuple(taxonomy)
    component = [s.component for s in scores]
    return {
        "cases": n,
        "correct": rate([s.correct for s in scores]),
        "component_precision": _mean([c["precision"] if c else None for c in component]),
        "component_recall": _mean([c["recall"] if c else None for c in component]),
        "component_f1": _mean([c["f1"] if c else None for c in component]),
        "ungrounded": rate([bool(s.ungrounded) if s.valid else None for s in scores]),
        "valid": rate([s.valid for s in scores]),
        "equivalent": rate([s.equivalent for s in scores]),
        "execution_match": rate([s.execution_match for s in scores]),
        "reasoning": rate([s.reasoning_kind is not None for s in scores]),
        "direct_valid": rate([s.verdict == "direct_valid" for s in scores]),
        "answer_with_text": rate([s.verdict == "answer_with_text" for s in scores]),
        "verdicts": {v: verdicts.get(v, 0) for v in VERDICTS},
        "errors": {k: kinds.get(k, 0) for k in in_taxonomy_order([*(e.name for e in known), *kinds], known)},
        "unfinished": rate([not s.finished for s in scores]),
        "mean_output_tokens": sum(s.new_tokens for s in scores) / n if n else None,
        "mean_latency_s": sum(s.latency_s for s in scores) / n if n else None,
        "outputs_per_s": n / seconds if seconds else None,
    }


#: What breaks a tie on each metric, in order, before the earliest step: for correctness metrics the
#: nearest correctness measure, then validity.
TIE_BREAKS: dict[str, tuple[str, ...]] = {
    "equivalent": ("component_f1", "valid"),
    "execution_match": ("equivalent", "component_f1", "valid"),
    "correct": ("component_f1", "valid"),
    "component_f1": ("correct", "valid"),
    "valid": (),
    "direct_valid": (),
}


def pick_best(models: Sequence[Mapping[str, Any]], metric: str) -> dict[str, Any] | None:
    """The checkpoint row with the highest ``metric``, ties broken by :data:`TIE_BREAKS` and then by the
    earliest step (an unknown value counts as the lowest)."""
    candidates = [m for m in models if m.get("step") is not None]
    if not candidates:
        return None
    keys = (metric, *TIE_BREAKS.get(metric, ("valid",)))

    def key(m: Mapping[str, Any]) -> tuple[float, ...]:
        return (*(m.get(k) if m.get(k) is not None else -1.0 for k in keys), -int(m["step"]))

    best = max(candidates, key=key)
    return {"name": best["name"], "step": best["step"], "metric": metric, "value": best.get(metric),
            "tie_breaks": list(keys[1:])}
