"""Scores recorded with a checkpoint while training, and their reuse by ``compare``.

When ``train --eval-every`` scores a checkpoint (:mod:`expertkit.training.train_eval`), the checkpoint folder
gets ``eval.json``: for each case scored, the raw greedy output (with its token count) and its
score, under a key that says what produced them — the contract's fingerprint, the scorer's version and
the decoding (greedy, ``max_new_tokens``, stop strings). Each case is identified by the hash of its
rendered prompt and gold answer, so a case is found again whatever file or line it comes from.

``compare`` asks :func:`recorded_scores` for a checkpoint's cases: where the contract and decoding
are unchanged, the recorded outputs are reused (no generation); with the same scorer version their
scores are reused too, with another one the recorded outputs are scored again. Cases not recorded
are generated as usual. ``compare --rescore`` ignores the records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from expertkit.core.checkpoints import Checkpoint
    from expertkit.evaluation.compare import Case
    from expertkit.expert import Expert
    from expertkit.kinds.scoring import Score

EVAL_FILE_VERSION = 1


def case_key(case: Case) -> str:
    """A case's identity: its rendered prompt and its gold answer."""
    digest = hashlib.sha256()
    digest.update(case.prompt.encode())
    digest.update(b"\x00")
    digest.update((case.gold or "").encode())
    return digest.hexdigest()[:16]


def cases_digest(cases: Sequence[Case]) -> str:
    """One hash for a list of cases (order included)."""
    return hashlib.sha256("".join(case_key(c) for c in cases).encode()).hexdigest()[:16]


def generation_key(expert: Expert, max_new_tokens: int, stop_strings: Sequence[str]) -> dict[str, Any]:
    """What the recorded outputs depend on besides the weights: contract and greedy decoding."""
    return {"fingerprint": expert.fingerprint, "decoding": "greedy", "max_new_tokens": max_new_tokens,
            "stop_strings": list(stop_strings)}


def write_checkpoint_eval(checkpoint: Checkpoint, expert: Expert, cases: Sequence[Case], scores: Sequence[Score], *,
                          max_new_tokens: int, stop_strings: Sequence[str], summary: Mapping[str, Any]) -> None:
    """Write the checkpoint's ``eval.json`` (atomically)."""
    from expertkit.kinds.scoring import SCORER_VERSION

    checkpoint.write_scores({
        "version": EVAL_FILE_VERSION,
        "scorer": SCORER_VERSION,
        **generation_key(expert, max_new_tokens, stop_strings),
        "cases_digest": cases_digest(cases),
        "summary": dict(summary),
        "cases": [
            {"key": case_key(c), "line": c.line, "latency_s": s.latency_s, **s.to_dict()}
            for c, s in zip(cases, scores, strict=True)
        ],
    })


@dataclass
class Recorded:
    """Scores found for some of the cases (by index), and how they were obtained."""

    scores: dict[int, Score]
    rescored: bool = False


def _read(checkpoint: Checkpoint) -> dict[str, Any] | None:
    value = checkpoint.read_scores()  # an unreadable record is not used; compare generates instead
    return value if value is not None and value.get("version") == EVAL_FILE_VERSION else None


def _score_from(expert: Expert, case: Case, row: Mapping[str, Any], same_scorer: bool) -> Score:
    from expertkit.kinds.scoring import Score, score_output

    timing = {"new_tokens": int(row.get("new_tokens", 0)), "finished": bool(row.get("finished", True)),
              "latency_s": float(row.get("latency_s", 0.0))}
    if same_scorer:
        try:
            fields = {k: row[k] for k in Score.__dataclass_fields__ if k in row}
            return Score(**{**fields, **timing})
        except TypeError:
            pass  # the score's shape changed: score the recorded output again
    return replace(score_output(expert, str(row.get("output", "")), case.fields, case.gold), **timing)


def recorded_scores(checkpoint: Checkpoint, expert: Expert, cases: Sequence[Case], *, max_new_tokens: int,
                    stop_strings: Sequence[str]) -> Recorded:
    """The recorded scores of ``checkpoint`` for those of ``cases`` it holds (none when the key differs)."""
    from expertkit.kinds.scoring import SCORER_VERSION

    record = _read(checkpoint)
    if record is None:
        return Recorded({})
    key = generation_key(expert, max_new_tokens, stop_strings)
    if any(record.get(k) != v for k, v in key.items()):
        return Recorded({})
    same_scorer = record.get("scorer") == SCORER_VERSION
    rows = {r.get("key"): r for r in record.get("cases", []) if isinstance(r, dict)}
    found: dict[int, Score] = {}
    for i, case in enumerate(cases):
        row = rows.get(case_key(case))
        if row is not None and "output" in row:
            found[i] = _score_from(expert, case, row, same_scorer)
    return Recorded(found, rescored=bool(found) and not same_scorer)
