"""Dataset lint and inference-prompt drift checks, against the contract and the training data.

Gold answers are judged by :func:`~expertkit.kinds.scoring.score_output`, like model outputs: reasoning in them
is ``reasoning_in_answer`` (a query in another language, such as EQL or KQL, is not reasoning), text
around a valid answer (a fence, a label, trailing prose) is ``text_in_answer``, and an answer the
validator rejects is ``invalid_answer``. An answer is validated whenever its record carries the fields
its output kind needs (:attr:`~expertkit.kinds.OutputKind.needs`), whatever findings the record's other
fields have; the answers that cannot be are counted in one ``not_validated`` warning.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from expertkit.core.contract import (
    FIELD_LINE_RE,
    PromptContract,
    PromptParseError,
    find_control_tokens,
    parse_prompt,
    parse_system_block,
)
from expertkit.core.data import Example, question_key, read_examples
from expertkit.core.errors import ContractError, ExpertkitError
from expertkit.core.findings import Finding
from expertkit.core.reasoning import analyze_output
from expertkit.kinds.scoring import Score, score_output

if TYPE_CHECKING:
    from expertkit.expert import Expert

@dataclass
class LintReport:
    """Findings and a summary of one dataset file."""

    path: str
    records: int = 0
    findings: list[Finding] = field(default_factory=list)
    field_values: dict[str, Counter[str]] = field(default_factory=dict)
    field_orders: Counter[str] = field(default_factory=Counter)
    wrappers: Counter[str] = field(default_factory=Counter)
    shapes: Counter[str] = field(default_factory=Counter)
    length_source: str = "estimate"
    #: Answers validated (the records whose fields the validator needs are present) and not.
    validated: int = 0
    not_validated: int = 0

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(f.code for f in self.findings).most_common())

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity == "warning" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "records": self.records,
            "errors": self.errors,
            "warnings": self.warnings,
            "counts": self.counts,
            "field_values": {k: dict(v.most_common()) for k, v in self.field_values.items()},
            "field_orders": dict(self.field_orders.most_common()),
            "wrappers": dict(self.wrappers),
            "shapes": dict(self.shapes),
            "length_source": self.length_source,
            "validated": self.validated,
            "not_validated": self.not_validated,
            "findings": [f.to_dict() for f in self.findings],
        }


def _usable_fields(contract: PromptContract, pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The record's fields that the contract knows, with an allowed value, canonical (others left out)."""
    usable: dict[str, str] = {}
    for name, value in pairs:
        if name not in contract.field_names or name in usable:
            continue
        spec = contract.field(name)
        canonical, _ = contract.canonical_value(spec, value)
        if canonical is not None and canonical.strip():
            usable[name] = value if spec.multiline else canonical
    return usable


def lint_examples(
    expert: Expert,
    examples: Sequence[Example],
    report: LintReport,
    *,
    eval_questions: set[str] | None = None,
    tokenizer: Any | None = None,
) -> None:
    """Check each example against the contract and the validator; fill ``report``."""
    contract = expert.contract
    seen: dict[tuple[str, str], int] = {}
    to_measure: list[tuple[int, dict[str, str], str, str]] = []
    score_cache: dict[tuple[str, tuple[tuple[str, str], ...]], Score] = {}
    needs = expert.kind.needs
    not_validated: Counter[str] = Counter()
    add = report.findings.append
    for ex in examples:
        report.records += 1
        report.shapes[ex.shape] += 1
        if ex.wrapper:
            report.wrappers[ex.wrapper] += 1
            if ex.wrapper != contract.wrapper.name:
                add(Finding("mixed_wrapper", "error",
                            f"record is in the {ex.wrapper!r} wrapper; the contract uses {contract.wrapper.name!r}",
                            line=ex.line))
        for stray in ex.stray_lines:
            add(Finding("unknown_field", "error", f"system line {stray[:60]!r} is not a 'Name: value' field",
                        line=ex.line))
        report.field_orders[" / ".join(n for n, _ in ex.fields)] += 1
        for name, value in ex.fields:
            if "\n" not in value:
                report.field_values.setdefault(name, Counter())[value.strip()] += 1
        found = contract.check_fields(ex.fields, strict=False)
        if ex.shape == "fields":
            found = [f for f in found if f.code != "field_order"]
        for f in found:
            add(f.at_line(ex.line))
        if not ex.question.strip():
            add(Finding("missing_field", "error", "the question is empty", line=ex.line, field="question"))
            continue
        if ex.answer is None or not ex.answer.strip():
            add(Finding("missing_answer", "error", "the record has no answer", line=ex.line, field="answer"))
            continue
        canonical: dict[str, str] | None = None
        if not any(f.severity == "error" for f in found):
            try:
                canonical = contract.normalize(dict(ex.fields))
            except ContractError as exc:
                add(Finding("unknown_value", "error", exc.message, line=ex.line))
        usable = canonical if canonical is not None else _usable_fields(contract, ex.fields)
        missing = [name for name in needs if name not in usable]
        if missing:  # the answer cannot be judged; still look for reasoning in it
            not_validated[", ".join(missing)] += 1
            analysis = analyze_output(ex.answer, expert.kind)
            reasoning, verdict = analysis.kind, None
        else:
            cache_key = (ex.answer, tuple(usable.items()))
            score = score_cache.get(cache_key)
            if score is None:
                score = score_cache[cache_key] = score_output(expert, ex.answer, usable)
            report.validated += 1
            reasoning, verdict = score.reasoning_kind, score.verdict
            if not score.valid:
                add(Finding("invalid_answer", "error", "; ".join(score.errors)[:300], line=ex.line, field="answer"))
            elif verdict == "answer_with_text":
                add(Finding("text_in_answer", "error", f"gold answer is not the answer alone: {'; '.join(score.text)}"
                            [:300], line=ex.line, field="answer"))
        if ex.reasoning or reasoning:
            kind = "think block" if ex.reasoning else reasoning
            add(Finding("reasoning_in_answer", "error", f"gold answer holds reasoning ({kind})",
                        line=ex.line, field="answer"))
        if canonical is None:
            continue
        key = ("\x00".join(canonical.values()), question_key(ex.question))
        if key in seen:
            add(Finding("duplicate", "warning", f"same fields and question as line {seen[key]}", line=ex.line))
        else:
            seen[key] = ex.line
        if eval_questions is not None and question_key(ex.question) in eval_questions:
            add(Finding("eval_leak", "error", "this question is also in the eval set", line=ex.line,
                        field="question"))
        try:
            contract.render_prompt(canonical, ex.question)
            contract.completion(ex.answer)
        except ContractError as exc:
            add(Finding("control_token", "error", exc.message, line=ex.line))
        else:
            to_measure.append((ex.line, canonical, ex.question, ex.answer))
    for names, n in not_validated.items():
        report.not_validated += n
        add(Finding("not_validated", "warning", f"{n} answer(s) not validated: their records lack {names}, "
                    f"which the {expert.manifest.output.kind} validator needs"))
    max_length = expert.manifest.training.max_length
    report.length_source = "tokenizer" if tokenizer is not None else "estimate"
    for line, fields, question, answer in to_measure:
        try:  # the measure train's max_length filter uses (PromptContract.example_length)
            n = contract.example_length(tokenizer, fields, question, answer)
        except ContractError as exc:  # user text that the tokenizer turns into a control token
            add(Finding("control_token", "error", exc.message, line=line))
            continue
        if n > max_length:
            how = "tokens" if tokenizer is not None else "tokens (estimated)"
            add(Finding("too_long", "error", f"{n} {how} > training max_length {max_length}", line=line))
    report.findings.sort(key=lambda f: (f.line or 0, f.code))


def lint_file(
    expert: Expert,
    path: str | Path,
    *,
    eval_path: str | Path | None = None,
    tokenizer: Any | None = None,
    bad_lines: Literal["raise", "finding"] = "finding",
) -> LintReport:
    """Lint one dataset file in one pass; ``eval_path`` enables the ``eval_leak`` check.

    A line that is not a record (broken JSON, bad UTF-8, over the size limit, a wrong shape) is a ``parse_error``
    finding at its line and the other lines are linted; ``bad_lines="raise"`` (``train``, ``compare``) makes a
    line without a JSON value an :class:`ExpertkitError` instead. A file that cannot be read always raises.
    """
    examples, parse_findings = read_examples(path, bad_lines=bad_lines)
    if not examples and not parse_findings:
        raise ExpertkitError("no records (empty dataset)", path=path)
    report = LintReport(path=str(path))
    report.records += len(parse_findings)
    eval_questions = None
    if eval_path is not None and Path(eval_path).exists() and Path(eval_path).resolve() != Path(path).resolve():
        eval_examples, _ = read_examples(eval_path, bad_lines="finding")  # its own lint reports its lines
        eval_questions = {question_key(e.question) for e in eval_examples}
    lint_examples(expert, examples, report, eval_questions=eval_questions, tokenizer=tokenizer)
    report.findings = sorted(parse_findings + report.findings, key=lambda f: (f.line or 0, f.code))
    wrappers = [w for w in report.wrappers if w]
    if len(wrappers) > 1:
        report.findings.append(Finding("mixed_wrapper", "error",
                                       f"dataset mixes wrappers: {', '.join(sorted(wrappers))}"))
    return report


# ---------------------------------------------------------------------- check-prompt


def check_prompt_text(expert: Expert, text: str) -> list[Finding]:
    """Check one raw inference prompt (any wrapper) against the contract and the training data."""
    contract = expert.contract
    try:
        parsed = parse_prompt(text)
    except PromptParseError as exc:
        return [Finding("parse_error", "error", str(exc))]
    findings = contract.check_wrapper(parsed)  # wrapper_mismatch, thinking_mismatch
    findings.extend(_check_pairs(expert, parsed.fields, parsed.stray_lines))
    findings.extend(field_format_findings(contract, parsed.system))
    return findings


def check_messages(expert: Expert, messages: Sequence[Mapping[str, Any]]) -> list[Finding]:
    """Check chat messages (as sent to a server using the exported chat template)."""
    if not all(isinstance(m, Mapping) for m in messages):
        return [Finding("parse_error", "error", "every message must be a {role, content} object")]
    system = next((m.get("content") for m in messages if m.get("role") == "system"), None)
    if not isinstance(system, str):
        return [Finding("missing_field", "error", "no system message: the field block is missing")]
    users = [m.get("content") for m in messages if m.get("role") == "user"]
    if not users or not all(isinstance(u, str) for u in users):
        return [Finding("parse_error", "error", "no user message with text content")]
    pairs, stray = parse_system_block(system)
    findings = _check_pairs(expert, pairs, stray)
    findings.extend(field_format_findings(expert.contract, system))
    for text in users:
        if find_control_tokens(text):
            findings.append(Finding("control_token", "error",
                                    f"user message holds control token(s) {find_control_tokens(text)}"))
    return findings


def field_format_findings(contract: PromptContract, system: str) -> list[Finding]:
    """A ``field_format`` error where the system block differs by a byte from the contract's rendering of the
    same fields: ``Name: value`` with one space, ``Name:`` and the value below only for the multi-line field,
    no leading or trailing blank lines, no tabs, CR or other spaces. Values are compared as given (aliases and
    allowed values are the value checks' business)."""
    pairs, stray = parse_system_block(system)
    if stray or not pairs:
        return []  # unknown_field / missing_field say what is wrong
    lines = []
    for name, value in pairs:
        multiline = name in contract.field_names and contract.field(name).multiline
        lines.append(f"{name}:\n{value}" if multiline else f"{name}: {value}")
    expected = "\n".join(lines)
    if system == expected:
        return []
    got, want = system.split("\n"), expected.split("\n")
    number = next((i for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w), min(len(got), len(want)))
    line = got[number] if number < len(got) else ""
    right = want[number] if number < len(want) else ""
    name = FIELD_LINE_RE.match(right)
    return [Finding("field_format", "error",
                    f"system line {number + 1} is {line[:80]!r}; the contract renders {right[:80]!r} (any byte "
                    "difference is drift: spaces, tabs, CR, blank lines)", field=name.group(1) if name else None,
                    suggestion=right[:200] or None)]


def _check_pairs(expert: Expert, pairs: list[tuple[str, str]], stray: list[str]) -> list[Finding]:
    findings = [
        Finding("unknown_field", "error", f"system line {line[:60]!r} is not a 'Name: value' field")
        for line in stray
    ]
    findings.extend(expert.contract.check_fields(pairs, strict=True))
    seen_values = expert.training_field_values()
    if seen_values:
        for name, value in pairs:
            if name not in expert.contract.field_names or expert.contract.field(name).multiline:
                continue
            canonical, _ = expert.contract.canonical_value(expert.contract.field(name), value)
            if canonical is not None and name in seen_values and canonical not in seen_values[name]:
                findings.append(
                    Finding("unseen_value", "warning",
                            f"{canonical!r} never appears as {name} in the training data", field=name)
                )
    return findings
