"""Reasoning detection and answer extraction for model outputs.

Detects a ``<think>`` block with content, an unclosed ``<think>``, and reasoning prose before or
instead of the answer; extracts the answer that follows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

ReasoningKind = Literal["think_block", "unclosed_think", "prose"]

_FENCE_RE = re.compile(r"```[a-zA-Z]*\n?(.*?)```", re.S)
_SQL_START_RE = re.compile(r"\b(SELECT|WITH)\b", re.I)
_WORD_RE = re.compile(r"[A-Za-z]{2,}")


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


def _is_prose(text: str) -> bool:
    return len(_WORD_RE.findall(text)) >= 3


def _json_answer(text: str) -> tuple[int, str] | None:
    """Start offset and text of the first complete JSON object in ``text``."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            _, end = decoder.raw_decode(text, start)
            return start, text[start:end]
        except (json.JSONDecodeError, RecursionError):
            start = text.find("{", start + 1)
    return None


def _sql_answer(text: str) -> tuple[int, str] | None:
    m = _SQL_START_RE.search(text)
    if m is None:
        return None
    body = text[m.start() :]
    end = body.find(";")
    return m.start(), (body[: end + 1] if end != -1 else body).strip()


def analyze_output(raw: str, output_kind: str) -> OutputAnalysis:
    """Split ``raw`` into reasoning and answer for an output kind (``json``/``elastic_dsl``/``sql``)."""
    text = raw.strip()
    reasoning = ""
    kind: ReasoningKind | None = None
    if text.startswith("<think>") or "<think>" in text:
        before, _, after = text.partition("<think>")
        end = after.find("</think>")
        if end == -1:
            return OutputAnalysis(raw, "", (before + after).strip(), "unclosed_think")
        inner = after[:end].strip()
        rest = after[end + len("</think>") :].strip()
        if inner or before.strip():
            kind = "think_block"
            reasoning = (before.strip() + "\n" + inner).strip()
        text = rest
    elif "</think>" in text:  # the opening tag sat in the prompt
        inner, _, rest = text.partition("</think>")
        if inner.strip():
            kind, reasoning = "think_block", inner.strip()
        text = rest.strip()
    fence = _FENCE_RE.search(text)
    locate = _sql_answer if output_kind == "sql" else _json_answer
    found = locate(fence.group(1)) if fence else None
    if found is not None and fence is not None:
        lead, answer = text[: fence.start()], found[1]
    else:
        found = locate(text)
        if found is None:
            if _is_prose(text) and not (output_kind != "sql" and text.lstrip().startswith(("{", "["))):
                return OutputAnalysis(raw, "", (reasoning + "\n" + text).strip(), kind or "prose")
            return OutputAnalysis(raw, text, reasoning, kind)
        lead, answer = text[: found[0]], found[1] if output_kind == "sql" else text[found[0] :].strip()
        if output_kind != "sql":
            answer = found[1] if _is_prose(text[found[0] + len(found[1]) :]) else answer
    if _is_prose(lead):
        kind = kind or "prose"
        reasoning = (reasoning + "\n" + lead.strip()).strip()
    return OutputAnalysis(raw, answer.strip(), reasoning, kind)
