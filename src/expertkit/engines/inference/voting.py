"""Validator-guided decoding: several sampled candidates, the invalid ones dropped, one chosen by vote.

For one prompt, ``N`` candidates are drawn (:meth:`expertkit.engines.inference.generation.Engine.sample`,
temperature and top-p from the manifest's ``decoding``, seeded). Each is judged by the same function as ``compare``
(:func:`expertkit.evaluation.compare.score_output`, without the gold answer: the vote never sees it); the ones
the validator rejects are dropped. The valid ones are grouped by agreement, asked of the expert's
validator plug-in and never of its name:

* where the validator can run answers (SQL on its fixture), two candidates agree when their results
  agree (**execution voting**: ``execution_match(a, b)``);
* elsewhere (Elasticsearch, JSON), when their canonical forms are equal (**canonical-form voting**:
  ``equivalent(a, b)``).

The largest group wins; ties go to the group with the higher mean log-probability, and within the
group the candidate with the highest log-probability is the answer. With no valid candidate there is
no vote (:attr:`Vote.chosen` is ``None``) and the caller returns the greedy answer with its verdict.
The prompt is never touched: candidates are generated from the contract's rendering like any output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from expertkit.engines.inference.generation import Generation
    from expertkit.expert import Expert


@dataclass
class Candidate:
    """One sampled output, whether the validator accepts it, its log-probability and its group."""

    output: str
    answer: str
    valid: bool
    logprob: float | None
    errors: list[str] = field(default_factory=list)
    group: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"output": self.output, "answer": self.answer, "valid": self.valid, "logprob": self.logprob,
                "errors": self.errors, "group": self.group}


@dataclass
class Vote:
    """The candidates of one prompt, the groups of valid ones, and the winner (``None``: greedy)."""

    candidates: list[Candidate]
    groups: list[list[int]]
    chosen: int | None
    #: How agreement was decided (``execution``, ``canonical``, ``identical``); ``None``: nothing compared.
    agreement: str | None

    @property
    def votes(self) -> list[int]:
        """Size of each group, in group order."""
        return [len(g) for g in self.groups]

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": len(self.candidates),
            "valid": sum(c.valid for c in self.candidates),
            "agreement": self.agreement,
            "votes": self.votes,
            "chosen": self.chosen,
            "fallback": "greedy" if self.chosen is None else None,
            "candidates": [c.to_dict() for c in self.candidates],
        }


def _mean(values: Sequence[float | None]) -> float:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else float("-inf")


def agree(expert: Expert, a: str, b: str, fields: Mapping[str, str]) -> tuple[bool, str]:
    """Whether two valid answers agree, and how it was decided (``execution`` or ``canonical``)."""
    if a == b:
        return True, "identical"
    validator = expert.validator
    ran = validator.execution_match(a, b, fields)
    if ran is not None:
        return ran, "execution"
    return validator.equivalent(a, b, fields), "canonical"


def vote(expert: Expert, fields: Mapping[str, str], samples: Sequence[Generation]) -> Vote:
    """Judge the candidates of one prompt and pick one by agreement (see the module docstring)."""
    from expertkit.kinds.scoring import score_output

    candidates: list[Candidate] = []
    for g in samples:
        s = score_output(expert, g.text, fields, None)
        candidates.append(Candidate(output=g.text, answer=s.answer, valid=s.valid, logprob=g.logprob,
                                    errors=list(s.errors)))
    groups: list[list[int]] = []
    how: set[str] = set()
    for i, c in enumerate(candidates):
        if not c.valid:
            continue
        for members in groups:
            same, method = agree(expert, candidates[members[0]].answer, c.answer, fields)
            how.add(method)
            if same:
                members.append(i)
                break
        else:
            groups.append([i])
    for n, members in enumerate(groups):
        for i in members:
            candidates[i].group = n
    chosen = None
    if groups:
        winner = max(groups, key=lambda g: (len(g), _mean([candidates[i].logprob for i in g])))
        chosen = max(winner, key=lambda i: _mean([candidates[i].logprob]))
    agreement = next((m for m in ("execution", "canonical", "identical") if m in how), None)
    return Vote(candidates=candidates, groups=groups, chosen=chosen, agreement=agreement)


def vote_or_greedy(expert: Expert, fields: Sequence[Mapping[str, str]], drawn: Sequence[Sequence[Generation]],
                   greedy: Callable[[list[int]], Sequence[Generation]]) -> list[tuple[Generation, Vote]]:
    """Per prompt, the voted candidate and its vote; where no candidate is valid, the greedy output
    ``greedy(indices)`` gives for those prompts (asked once, for all of them). A chosen output's latency
    is that of all the prompt's candidates (plus the greedy pass where it fell back)."""
    votes = [vote(expert, f, samples) for f, samples in zip(fields, drawn, strict=True)]
    fallback = [i for i, v in enumerate(votes) if v.chosen is None]
    by_index = dict(zip(fallback, greedy(fallback), strict=True)) if fallback else {}
    out: list[tuple[Generation, Vote]] = []
    for i, v in enumerate(votes):
        spent = sum(g.latency_s for g in drawn[i])
        chosen = by_index[i] if v.chosen is None else drawn[i][v.chosen]
        out.append((replace(chosen, latency_s=spent + (chosen.latency_s if v.chosen is None else 0.0)), v))
    return out
