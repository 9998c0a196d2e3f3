"""Reasoning detection and answer extraction for model outputs.

An expert answers directly: its output should be the answer and nothing else. This module finds
what else there is —

* ``think_block``: a ``<think>…</think>`` block with content (or text before an opening ``<think>``,
  or a bare ``…</think>`` whose opening tag sat in the prompt);
* ``unclosed_think``: a ``<think>`` that never closes (the answer never came);
* ``prose``: reasoning prose before the answer, or instead of it (three or more words);

— and extracts the answer: the first JSON object (``json``/``elastic_dsl``; for ``json`` also a top-level
array) or SQL statement (``sql``), looked for first inside a fenced code block. Text after a complete
JSON answer is kept in the answer (so trailing junk makes it invalid) unless it is prose. Output that
holds no answer and is not prose is returned whole as the answer, for the validator to reject.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

ReasoningKind = Literal["think_block", "unclosed_think", "prose"]
#: Outputs longer than this (after think blocks) are not searched for an answer: they are handed whole
#: to the validator, whose own size limit rejects them (searching is quadratic on deeply nested text).
MAX_SEARCH_CHARS = 4_000_000

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
_FENCE_RE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.S)
_WORD_RE = re.compile(r"[A-Za-z]{2,}")
_QUOTED_RE = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_CTE = r"\s+(?:RECURSIVE\s+)?\w+\s*(?:\([^()]*\)\s*)?AS\s*(?:NOT\s+)?(?:MATERIALIZED\s+)?\("
#: Where an SQL statement may start (group 1), most trusted first: an upper-case ``SELECT`` or
#: ``WITH name AS (`` anywhere, then either in any case at the start of a line or after a colon.
_SQL_STARTS = (
    re.compile(r"\b(SELECT\b|WITH" + _CTE + ")"),
    re.compile(r"(?:^|(?<=:))[ \t]*(SELECT\b|WITH" + _CTE + ")", re.I | re.M),
)


@dataclass(frozen=True)
class OutputAnalysis:
    """What a raw output holds: reasoning (if any) and the answer extracted after it."""

    raw: str
    answer: str
    reasoning: str
    kind: ReasoningKind | None

    @property
    def has_reasoning(self) -> bool:
        return self.kind is not None


def is_prose(text: str) -> bool:
    """Three or more words outside JSON strings, and no braces: sentences, not a label or broken JSON."""
    bare = _QUOTED_RE.sub(" ", text)
    return "{" not in bare and "}" not in bare and len(_WORD_RE.findall(bare)) >= 3


def _join(*parts: str) -> str:
    return "\n".join(p.strip() for p in parts if p.strip())


def _json_answer(text: str, output_kind: str) -> tuple[int, str] | None:
    """Start offset and text of the first complete JSON object (or, for ``json``, array) in ``text``."""
    decoder = json.JSONDecoder()
    opener = re.compile(r"[{\[]" if output_kind == "json" else r"\{")
    for m in opener.finditer(text):
        try:
            _, end = decoder.raw_decode(text, m.start())
        except json.JSONDecodeError:
            continue
        except RecursionError:  # every opener inside would recurse as deep again: give up
            return None
        return m.start(), text[m.start() : end]
    return None


def _sql_answer(text: str) -> tuple[int, str] | None:
    """Start offset and text of the first SQL statement: up to ``;`` (kept), a blank line, or the end."""
    for pattern in _SQL_STARTS:
        m = pattern.search(text)
        if m is None:
            continue
        start = m.start(1)
        body = text[start:]
        ends = [i + 1 for i in (body.find(";"),) if i != -1] + [i for i in (body.find("\n\n"),) if i != -1]
        return start, body[: min(ends)].strip() if ends else body.strip()
    return None


def _strip_think(text: str) -> tuple[str, str, ReasoningKind | None]:
    """``(rest, reasoning, kind)`` with every think block taken out of ``text``."""
    reasoning: list[str] = []
    kind: ReasoningKind | None = None
    if THINK_OPEN not in text and THINK_CLOSE in text:  # the opening tag sat in the prompt
        inner, _, text = text.partition(THINK_CLOSE)
        if inner.strip():
            kind = "think_block"
            reasoning.append(inner)
    while THINK_OPEN in text:
        before, _, after = text.partition(THINK_OPEN)
        inner, closed, rest = after.partition(THINK_CLOSE)
        if not closed:
            return "", _join(*reasoning, before, after), "unclosed_think"
        if inner.strip() or before.strip():
            kind = "think_block"
            reasoning.extend([before, inner])
        text = rest
    return text.strip(), _join(*reasoning), kind


def analyze_output(raw: str, output_kind: str) -> OutputAnalysis:
    """Split ``raw`` into reasoning and answer for an output kind (``json``/``elastic_dsl``/``sql``)."""
    text, reasoning, kind = _strip_think(raw.strip())
    if kind == "unclosed_think":
        return OutputAnalysis(raw, "", reasoning, kind)
    if len(text) > MAX_SEARCH_CHARS:
        return OutputAnalysis(raw, text, reasoning, kind)

    def locate(s: str) -> tuple[int, str] | None:
        return _sql_answer(s) if output_kind == "sql" else _json_answer(s, output_kind)

    if output_kind != "sql" and text.startswith(("{", "[")):  # a direct answer, complete or not
        found = _json_answer(text, output_kind)
        if found is None or found[0] != 0 or not is_prose(text[len(found[1]) :]):
            return OutputAnalysis(raw, text, reasoning, kind)
        return OutputAnalysis(raw, found[1], reasoning, kind)
    fence = _FENCE_RE.search(text)
    in_fence = locate(fence.group(1)) if fence else None
    if fence is not None and in_fence is not None:
        lead, answer = text[: fence.start()], in_fence[1]
    else:
        found = locate(text)
        if found is None:
            if is_prose(text):
                return OutputAnalysis(raw, "", _join(reasoning, text), kind or "prose")
            return OutputAnalysis(raw, text, reasoning, kind)
        start, answer = found
        lead, tail = text[:start], text[start + len(answer) :]
        if output_kind != "sql" and not is_prose(tail):
            answer = answer + tail  # trailing junk stays, so that the validator sees it
    if is_prose(lead):
        kind = kind or "prose"
        reasoning = _join(reasoning, lead)
    return OutputAnalysis(raw, answer.strip(), reasoning, kind)
