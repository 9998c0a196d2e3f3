"""Reasoning detection and answer extraction for model outputs.

An expert answers directly: its output should be the answer and nothing else. This module finds
what else there is —

* ``think_block``: a ``<think>…</think>`` block with content (or text before an opening ``<think>``,
  or a bare ``…</think>`` whose opening tag sat in the prompt);
* ``unclosed_think``: a ``<think>`` that never closes (the answer never came);
* ``prose``: reasoning prose before the answer, or instead of it (three or more words);

— and extracts the answer, as the output kind finds it (:class:`AnswerSyntax`: the first JSON object, the
first SQL statement…), looked for first inside a fenced code block. For a kind that keeps trailing text
(the JSON ones), text after a complete answer is kept in the answer (so trailing junk makes it invalid)
unless it is prose. Output that holds no answer and is not prose is returned whole as the answer, for the
validator to reject.

What is neither reasoning nor the answer is reported too, so that a valid answer with text around it is
not taken for a clean one: ``fenced`` (the answer sat in a code fence), ``lead`` (a label such as
``Answer:`` before it) and ``trailing`` (prose or other text after it, dropped from the answer).

Prose means sentences, not code: a query in another language (EQL, KQL, Lucene) is not prose even
though it has words, because most of its tokens are operators, dotted field names, quoted strings or
brackets (:func:`is_prose`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

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


class AnswerSyntax(Protocol):
    """How an output kind's answers look in raw text (:class:`expertkit.kinds.OutputKind` is one)."""

    #: Outputs starting with one of these are the answer as they stand (a direct answer, complete or not).
    direct_openers: Sequence[str]
    #: Text after a found answer that is not prose stays in the answer, for the validator to reject.
    keeps_trailing_text: bool

    def find_answer(self, text: str) -> tuple[int, str] | None:
        """Start offset and text of the first complete answer in ``text``, or ``None``."""
        ...


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


def analyze_output(raw: str, syntax: AnswerSyntax) -> OutputAnalysis:
    """Split ``raw`` into reasoning and answer for an output kind's answer syntax (its class or instance, given by
    the caller: the core looks no kind up)."""
    text, reasoning, kind = _strip_think(raw.strip())
    if kind == "unclosed_think":
        return OutputAnalysis(raw, "", reasoning, kind)
    if len(text) > MAX_SEARCH_CHARS:
        return OutputAnalysis(raw, text, reasoning, kind)

    locate = syntax.find_answer
    if syntax.direct_openers and text.startswith(tuple(syntax.direct_openers)):  # a direct answer
        found = locate(text)
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
        if syntax.keeps_trailing_text and not is_prose(tail):
            answer, tail = answer + tail, ""  # trailing junk stays, so that the validator sees it
    label = ""
    if is_prose(lead):
        kind = kind or "prose"
        reasoning = _join(reasoning, lead)
    else:
        label = lead.strip()
    return OutputAnalysis(raw, answer.strip(), reasoning, kind, fenced=fenced, lead=label, trailing=tail.strip())
