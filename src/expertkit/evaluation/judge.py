"""``expertkit score``: judge outputs that came from anywhere against a cases file.

Outputs are one per line, or JSONL objects with an ``output`` key, aligned with the cases (the
``N``-th output answers the ``N``-th case). Each pair goes through :func:`expertkit.kinds.scoring.score_output`,
the same function ``compare`` uses; for SQL, execution match runs on the fixture and ``variants``
seeded variants of it, and the case also says which database decided it. The output kind makes what a
case names usable before scoring (:meth:`~expertkit.kinds.OutputKind.register_case`: for SQL, a database
file, ``"database"`` relative to the cases file as ``data import spider`` writes, registered for the
case's schema).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expertkit.core.errors import ContractError, ExpertkitError
from expertkit.core.fileio import iter_jsonl, read_text

if TYPE_CHECKING:
    from expertkit.expert import Expert


@dataclass
class ScoreReport:
    summary: dict[str, Any]
    cases: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "cases": self.cases}


def read_outputs(path: Path) -> list[str]:
    """The outputs of ``path``: JSONL objects with an ``output`` key, else one output per line."""
    text = read_text(path, key="--outputs")  # a regular file, bounded (not /dev/zero, not a FIFO)
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    try:
        jsonl = isinstance(json.loads(first), dict)
    except ValueError:
        jsonl = False
    if not jsonl:
        return lines
    outputs: list[str] = []
    for line, record in iter_jsonl(path):
        if not isinstance(record, dict) or not isinstance(record.get("output"), str):
            raise ExpertkitError("expected an object with a string 'output'", path=path, line=line, key="output")
        outputs.append(record["output"])
    return outputs


def _register_cases(expert: Expert, cases_path: Path) -> dict[int, str]:
    """Let the output kind register what the cases name; line -> the database name shown per case."""
    names: dict[int, str] = {}
    for line, record in iter_jsonl(cases_path):
        if not isinstance(record, dict):
            continue
        expert.kind.register_case(record, cases_path.parent)
        label = record.get("db_id", record.get("database"))
        if isinstance(label, str):
            names[line] = label
    return names


def score_file(expert: Expert, cases_path: Path, outputs_path: Path, *, variants: int | None = None) -> ScoreReport:
    """Score each output against its case; the summary has the counts and rates."""
    from expertkit.core.data import load_examples
    from expertkit.kinds.scoring import score_output, summarize

    examples = load_examples(cases_path)
    outputs = read_outputs(outputs_path)
    if len(outputs) != len(examples):
        raise ExpertkitError(f"{len(outputs)} outputs for {len(examples)} cases: they must be aligned, one per case",
                             path=outputs_path)
    names = _register_cases(expert, cases_path)
    kind = expert.kind
    if variants is not None:
        if variants < 0:
            raise ExpertkitError("--variants must be 0 or more", key="--variants")
        if kind.variants is not None:
            kind.variants = variants
    start = time.perf_counter()
    scores = []
    cases: list[dict[str, Any]] = []
    for example, output in zip(examples, outputs, strict=True):
        try:
            fields = expert.contract.normalize(dict(example.fields))
        except ContractError as exc:
            raise ExpertkitError(f"case does not fit the contract: {exc.message}", path=cases_path,
                                 line=example.line) from None
        score = score_output(expert, output, fields, example.answer, question=example.question)
        scores.append(score)
        case = {"line": example.line, **score.to_dict()}
        if example.line in names:
            case["database"] = names[example.line]
        found = None
        if example.answer is not None and score.answer:
            found = kind.execution_outcome(score.answer, example.answer, fields)
        if found is not None:
            case["decided_by"] = found.decided_by
            case["databases"] = found.databases
            case["execution_error"] = found.error
        cases.append(case)
    seconds = time.perf_counter() - start
    summary = summarize(scores, seconds, expert.kind.error_kinds())
    summary["seconds"] = round(seconds, 3)
    summary["valid_count"] = sum(s.valid for s in scores)
    summary["execution_match_count"] = sum(s.execution_match is True for s in scores)
    summary["execution_known"] = sum(s.execution_match is not None for s in scores)
    summary["variants"] = kind.variants
    return ScoreReport(summary, cases)
