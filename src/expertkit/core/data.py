"""Dataset records in their three shapes, read into :class:`Example` objects.

Shapes (JSONL, one record per line):

* ``{"fields": {...}, "question": "...", "answer": "..."}``
* ``{"messages": [{"role": "system", "content": "<field block>"}, {"role": "user", ...},
  {"role": "assistant", ...}]}``
* ``{"text": "<rendered conversation in either wrapper>"}``
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from expertkit.core.contract import PromptParseError, parse_prompt, parse_system_block, split_think
from expertkit.core.errors import ExpertkitError
from expertkit.core.fileio import BadLine, iter_jsonl
from expertkit.core.findings import Finding


def question_key(question: str) -> str:
    """The form two questions are compared in (lint's ``eval_leak`` and duplicates, the generators' splits)."""
    return " ".join(question.lower().split())


@dataclass
class Example:
    """One record, whatever its shape: ordered fields, question, gold answer."""

    line: int
    shape: str  # fields | messages | text
    fields: list[tuple[str, str]]
    question: str
    answer: str | None
    wrapper: str | None = None  # for text records: the wrapper they were rendered in
    reasoning: str | None = None  # a think block found before the answer
    stray_lines: list[str] = field(default_factory=list)

    @property
    def field_dict(self) -> dict[str, str]:
        return dict(self.fields)


def example_from_record(record: Any, line: int) -> Example:
    """Turn one decoded JSON value into an :class:`Example`; raises ``ValueError`` with the key at fault."""
    if not isinstance(record, dict):
        raise ValueError(f"record is a {type(record).__name__}, expected an object")
    if "fields" in record:
        fields, question, answer = record.get("fields"), record.get("question"), record.get("answer")
        if not isinstance(fields, dict):
            raise ValueError("key 'fields' must be an object")
        bad = [k for k, v in fields.items() if not isinstance(v, str)]
        if bad:
            raise ValueError(f"key 'fields.{bad[0]}' must be a string")
        if not isinstance(question, str):
            raise ValueError("key 'question' must be a string")
        if answer is not None and not isinstance(answer, str):
            raise ValueError("key 'answer' must be a string")
        return Example(line, "fields", list(fields.items()), question, answer)
    if "messages" in record:
        msgs = record["messages"]
        if not isinstance(msgs, list) or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in msgs
        ):
            raise ValueError("key 'messages' must be a list of {role, content} objects with string values")
        by_role: dict[str, str] = {}
        for m in msgs:
            by_role.setdefault(m["role"], m["content"])
        if "system" not in by_role or "user" not in by_role:
            raise ValueError("key 'messages' needs a system and a user message")
        pairs, stray = parse_system_block(by_role["system"])
        answer = by_role.get("assistant")
        reasoning = None
        if answer is not None and answer.lstrip().startswith("<think>"):
            reasoning, answer, _ = split_think(answer)
        return Example(line, "messages", pairs, by_role["user"], answer, None, reasoning, stray)
    if "text" in record:
        text = record["text"]
        if not isinstance(text, str):
            raise ValueError("key 'text' must be a string")
        try:
            parsed = parse_prompt(text)
        except PromptParseError as exc:
            raise ValueError(f"key 'text': {exc}") from None
        return Example(line, "text", parsed.fields, parsed.question, parsed.answer, parsed.wrapper,
                       parsed.reasoning, parsed.stray_lines)
    raise ValueError("record has none of the keys 'fields', 'messages', 'text'")


def read_examples(path: str | Path, *, bad_lines: Literal["raise", "finding"] = "raise"
                  ) -> tuple[list[Example], list[Finding]]:
    """Read a dataset; records that cannot be understood become ``parse_error`` findings.

    A line that holds no JSON value (broken JSON, bad UTF-8, a lone surrogate, nesting too deep, a line over the
    size limit) raises :class:`ExpertkitError`, or with ``bad_lines="finding"`` (``lint``) is a ``parse_error``
    finding at its line too. A file that cannot be read (missing, a folder) always raises.
    """
    examples: list[Example] = []
    findings: list[Finding] = []
    for line, record in iter_jsonl(path, bad_lines="yield" if bad_lines == "finding" else "raise"):
        if isinstance(record, BadLine):
            findings.append(Finding("parse_error", "error", record.message, line=line))
            continue
        try:
            examples.append(example_from_record(record, line))
        except ValueError as exc:
            findings.append(Finding("parse_error", "error", str(exc), line=line))
    return examples, findings


def load_examples(path: str | Path) -> list[Example]:
    """Read a dataset strictly: the first record that cannot be understood is an error."""
    examples, findings = read_examples(path)
    if findings:
        first = findings[0]
        raise ExpertkitError(first.message, path=path, line=first.line)
    if not examples:
        raise ExpertkitError("no records", path=path)
    return examples
