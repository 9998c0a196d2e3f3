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

What is neither reasoning nor the answer is reported too, so that a valid answer with text around it is
not taken for a clean one: ``fenced`` (the answer sat in a code fence), ``lead`` (a label such as
``Answer:`` before it) and ``trailing`` (prose or other text after it, dropped from the answer).

Prose means sentences, not code: a query in another language (EQL, KQL, Lucene) is not prose even
though it has words, because most of its tokens are operators, dotted field names, quoted strings or
brackets (:func:`is_prose`).
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
#: A token that reads as code: an operator or bracket, a dotted or snake_case name, a ``name:value`` pair.
_CODE_TOKEN_RE = re.compile(r"[=<>()\[\]|&*~/\\]|\w[.:]\w|\w_\w|^[:!?]|^-?\d")
#: Prose has fewer code tokens than this share of its tokens.
MAX_CODE_SHARE = 0.2
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
    fenced: bool = False
    lead: str = ""
    trailing: str = ""

    @property
    def has_reasoning(self) -> bool:
        return self.kind is not None

    @property
    def has_text(self) -> bool:
        """Text besides reasoning and answer: a code fence, a label before, or text after the answer."""
        return self.fenced or bool(self.lead) or bool(self.trailing)

    def text_notes(self) -> list[str]:
        """What surrounds the answer, for people (empty for a clean answer)."""
        notes = ["the answer is wrapped in a code fence"] if self.fenced else []
        if self.lead:
            notes.append(f"text before the answer: {_clip(self.lead)!r}")
        if self.trailing:
            notes.append(f"text after the answer: {_clip(self.trailing)!r}")
        return notes


def _clip(text: str, limit: int = 80) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def _code_share(text: str) -> float:
    """Share of ``text``'s tokens that read as code (each quoted string is one code token)."""
    quoted = len(_QUOTED_RE.findall(text))
    tokens = _QUOTED_RE.sub(" ", text).split()
    code = quoted + sum(1 for t in tokens if _CODE_TOKEN_RE.search(t))
    return code / max(len(tokens) + quoted, 1)


def is_prose(text: str) -> bool:
    """Sentences, not a label, broken JSON or a query: three or more words outside quoted strings, no
    braces, under :data:`MAX_CODE_SHARE` of the tokens code-like (operators, brackets, dotted or
    snake_case names, ``field:value``, numbers), and a first line that is not mostly code (a query
    language's long list of bare words, ``name:(bash or sh or …)``, is still a query)."""
    bare = _QUOTED_RE.sub(" ", text)
    if "{" in bare or "}" in bare or len(_WORD_RE.findall(bare)) < 3:
        return False
    first = next((line for line in text.splitlines() if line.strip()), "")
    return _code_share(text) < MAX_CODE_SHARE and _code_share(first) < 2 * MAX_CODE_SHARE


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
        return OutputAnalysis(raw, found[1], reasoning, kind, trailing=text[len(found[1]) :].strip())
    fence = _FENCE_RE.search(text)
    in_fence = locate(fence.group(1)) if fence else None
    if fence is not None and in_fence is not None:
        lead, answer, fenced = text[: fence.start()], in_fence[1], True
        tail = fence.group(1)[in_fence[0] + len(answer) :] + text[fence.end() :]
    else:
        found = locate(text)
        if found is None:
            if is_prose(text):
                return OutputAnalysis(raw, "", _join(reasoning, text), kind or "prose")
            return OutputAnalysis(raw, text, reasoning, kind)
        start, answer = found
        lead, tail, fenced = text[:start], text[start + len(answer) :], False
        if output_kind != "sql" and not is_prose(tail):
            answer, tail = answer + tail, ""  # trailing junk stays, so that the validator sees it
    label = ""
    if is_prose(lead):
        kind = kind or "prose"
        reasoning = _join(reasoning, lead)
    else:
        label = lead.strip()
    return OutputAnalysis(raw, answer.strip(), reasoning, kind, fenced=fenced, lead=label, trailing=tail.strip())
