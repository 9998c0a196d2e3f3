"""The prompt contract: the single renderer and parser of every prompt an expert sees.

A contract is a wrapper (``qwen3`` ChatML in non-thinking mode, or the ``tags`` form) and an ordered
list of system-block fields (``Name: value`` lines). Dataset building, training, evaluation, serving
and the chat template exported with every adapter all go through :class:`PromptContract`.

A wrapper is a strategy object (:class:`Wrapper`, after litgpt's ``PromptStyle``): one class per wrapper owns
its template parts, generation prompt, chat-template export, end-of-turn token, stop strings, tokenizer control
tokens and parser, and registers itself by name on definition; the manifest names it (``wrapper: qwen3``) and
``contract.wrapper`` is the object. This module is the only one that knows a wrapper's name or tokens.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from expertkit.core.errors import ContractError
from expertkit.core.findings import Finding

#: The empty think block: an assistant turn that opens with it does not think (Qwen3's non-thinking mode).
QWEN_THINK_OFF = "<think>\n\n</think>\n\n"
#: Strings that must never come from user or field text: ChatML/tags markers, think and tool tags.
CONTROL_TOKEN_RE = re.compile(r"<\|[^|<>\s]{1,64}\|>|</?(?:think|tool_call|tool_response)>")
#: A UTF-16 surrogate on its own (JSON allows ``"\\ud800"``): not text, it cannot be encoded or tokenised.
LONE_SURROGATE_RE = re.compile("[\ud800-\udfff]")
FIELD_LINE_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_ .-]{0,63}):(?:[ \t]*(.*))?$")


class FieldSpec(BaseModel):
    """One ``Name: value`` line of the system block."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
    required: bool = True
    values: list[str] | None = None
    aliases: dict[str, str] = Field(default_factory=dict)
    default: str | None = None
    multiline: bool = False
    description: str = ""
    #: The part of the prompt the output kind reads from this field (``index``, ``schema``, ``dialect``…:
    #: the kind's roles); unset, a role falls to the kind's default field name.
    role: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,63}$")
    #: ``serve`` picks the expert for ``model: "auto"`` by this field's value; when no field says, the output
    #: kind's default routing fields route.
    route: bool | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        if self.values is not None:
            if not self.values:
                raise ValueError("values, when given, must list at least one value")
            for alias, target in self.aliases.items():
                if target not in self.values:
                    raise ValueError(f"alias {alias!r} maps to {target!r}, which is not in values")
            if self.default is not None and self.default not in self.values:
                raise ValueError(f"default {self.default!r} is not in values")
        for value in [*(self.values or []), *self.aliases, *self.aliases.values(), self.default or ""]:
            if "\n" in value or CONTROL_TOKEN_RE.search(value):
                raise ValueError(f"value {value!r} holds a newline or a control token")
        return self


# ---------------------------------------------------------------------- wrappers (prompt styles)
_WRAPPERS: dict[str, type[Wrapper]] = {}


class Wrapper(ABC):
    """A prompt style: how the system block, the question and the answer are laid out as one text.

    A subclass with a ``name`` registers itself on definition (``wrapper: NAME`` in a manifest selects it);
    it owns its template parts (:meth:`prompt_parts`), the chat template it exports, the text that ends an
    answer, the stop strings, the tokenizer's control tokens and the parser of its turns.
    """

    #: The name a manifest gives (``contract.wrapper``).
    name: ClassVar[str] = ""
    #: What the wrapper is, for people (the README ``expertkit new`` writes).
    description: ClassVar[str] = ""
    #: Text that ends an answer: training puts loss on it, generation stops at it.
    end_of_turn: ClassVar[str] = ""
    #: Strings generation stops at (a single-token one becomes a stop token).
    stop_strings: ClassVar[tuple[str, ...]] = ()
    #: Special tokens a tokenizer built for this wrapper holds, in id order; its end-of-sequence and padding.
    control_tokens: ClassVar[tuple[str, ...]] = ()
    eos_token: ClassVar[str | None] = None
    pad_token: ClassVar[str | None] = None
    #: Text whose presence marks a prompt as written in this wrapper.
    markers: ClassVar[tuple[str, ...]] = ()
    #: The wrapper switches the model's thinking off (a prompt that leaves it on is drift).
    thinking_switch: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            _WRAPPERS[cls.name] = cls

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    @abstractmethod
    def prompt_parts(self, block: str, question: str, *, thinking: bool = False) -> list[tuple[str, bool]]:
        """The generation prompt as ``(text, is_user_text)`` segments; ``thinking`` leaves the model's thinking
        on where the wrapper can switch it off (only drift variants do)."""

    @abstractmethod
    def chat_template(self, fingerprint: str) -> str:
        """A Jinja chat template that renders a contract's messages byte-identically to :meth:`prompt_parts`."""

    @abstractmethod
    def turns(self, text: str) -> list[tuple[str, str, bool]]:
        """``(role, content, closed)`` for each turn of ``text`` rendered in this wrapper."""

    def detect(self, text: str) -> bool:
        return any(marker in text for marker in self.markers)

    def thinking(self, empty_think_first: bool | None) -> bool | None:
        """Whether a parsed prompt lets the model think (``empty_think_first``: None without an assistant turn);
        None where the wrapper has no thinking switch."""
        return None

    def thinking_finding(self, parsed: ParsedPrompt) -> Finding | None:
        """A ``thinking_mismatch`` error for a prompt that leaves thinking on (wrappers with a thinking switch)."""
        return None


class Qwen3Wrapper(Wrapper):
    """Qwen3's ChatML in non-thinking mode: the assistant turn opens with the empty think block."""

    name = "qwen3"
    description = "ChatML, non-thinking: the assistant turn opens with an empty think block"
    end_of_turn = "<|im_end|>"
    stop_strings = ("<|im_end|>", "<|endoftext|>")
    control_tokens = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
    eos_token = "<|im_end|>"
    pad_token = "<|endoftext|>"
    markers = ("<|im_start|>",)
    thinking_switch = True
    #: Qwen3's soft switch in a user turn.
    _THINK_SWITCH_RE = re.compile(r"(^|\s)/think\b")
    _TURN_RE = re.compile(r"<\|im_start\|>(\w+)\n(.*?)(?:<\|im_end\|>\n?|$)", re.S)

    def prompt_parts(self, block: str, question: str, *, thinking: bool = False) -> list[tuple[str, bool]]:
        return [
            ("<|im_start|>system\n", False),
            (block, True),
            ("<|im_end|>\n<|im_start|>user\n", False),
            (question, True),
            ("<|im_end|>\n<|im_start|>assistant\n" + ("" if thinking else QWEN_THINK_OFF), False),
        ]

    def chat_template(self, fingerprint: str) -> str:
        return (
            "{#- expertkit contract " + fingerprint + " (qwen3, non-thinking) -#}\n"
            "{%- for message in messages %}\n"
            "{%- if message.role == 'assistant' %}\n"
            "{{- '<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n' }}"
            "{%- generation %}{{- message.content | trim }}{{- '<|im_end|>' }}{%- endgeneration %}"
            "{{- '\\n' }}\n"
            "{%- else %}\n"
            "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}\n"
            "{%- endif %}\n"
            "{%- endfor %}\n"
            "{%- if add_generation_prompt %}\n"
            "{{- '<|im_start|>assistant\\n' }}\n"
            "{%- if not (enable_thinking is defined and enable_thinking) %}"
            "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}\n"
            "{%- endif %}\n"
        )

    def turns(self, text: str) -> list[tuple[str, str, bool]]:
        return [(m.group(1), m.group(2), m.group(0).rstrip("\n").endswith("<|im_end|>"))
                for m in self._TURN_RE.finditer(text)]

    def thinking(self, empty_think_first: bool | None) -> bool | None:
        return True if empty_think_first is None else not empty_think_first

    def thinking_finding(self, parsed: ParsedPrompt) -> Finding | None:
        # only a prompt that opens the assistant turn with the empty think block keeps Qwen3 from thinking
        if parsed.thinking is not False or self._THINK_SWITCH_RE.search(parsed.question):
            return Finding("thinking_mismatch", "error",
                           "the prompt lets Qwen3 think: the assistant turn must open with the empty "
                           "'<think>\\n\\n</think>\\n\\n' block (enable_thinking=False)")
        return None


class TagsWrapper(Wrapper):
    """``<|system|>`` / ``<|user|>`` / ``<|assistant|>`` turns, each closed by ``<|end|>`` on its own line."""

    name = "tags"
    description = "`<|system|>`, `<|user|>` and `<|assistant|>` turns, each closed by `<|end|>` on its own line"
    end_of_turn = "\n<|end|>"
    stop_strings = ("<|end|>",)
    markers = ("<|system|>", "<|user|>", "<|assistant|>")
    _TURN_RE = re.compile(
        r"<\|(system|user|assistant)\|>\n?(.*?)(?:\n?<\|end\|>\n?|(?=<\|(?:system|user|assistant)\|>)|$)", re.S
    )

    def prompt_parts(self, block: str, question: str, *, thinking: bool = False) -> list[tuple[str, bool]]:
        return [
            ("<|system|>\n", False),
            (block, True),
            ("\n<|end|>\n<|user|>\n", False),
            (question, True),
            ("\n<|end|>\n<|assistant|>\n", False),
        ]

    def chat_template(self, fingerprint: str) -> str:
        return (
            "{#- expertkit contract " + fingerprint + " (tags) -#}\n"
            "{%- for message in messages %}\n"
            "{%- if message.role == 'assistant' %}\n"
            "{{- '<|assistant|>\\n' }}{%- generation %}{{- message.content | trim }}"
            "{{- '\\n<|end|>' }}{%- endgeneration %}{{- '\\n' }}\n"
            "{%- else %}\n"
            "{{- '<|' + message.role + '|>\\n' + message.content + '\\n<|end|>\\n' }}\n"
            "{%- endif %}\n"
            "{%- endfor %}\n"
            "{%- if add_generation_prompt %}{{- '<|assistant|>\\n' }}{%- endif %}\n"
        )

    def turns(self, text: str) -> list[tuple[str, str, bool]]:
        return [(m.group(1), m.group(2), m.group(0).rstrip("\n").endswith("<|end|>"))
                for m in self._TURN_RE.finditer(text)]


#: The wrapper a manifest gets when it names none.
DEFAULT_WRAPPER = Qwen3Wrapper.name


def wrapper_names() -> tuple[str, ...]:
    """The registered wrappers' names, in registration order."""
    return tuple(_WRAPPERS)


def get_wrapper(name: str) -> Wrapper:
    """The registered wrapper called ``name``; :class:`ContractError` for an unknown one."""
    cls = _WRAPPERS.get(name)
    if cls is None:
        raise ContractError(f"unknown wrapper {name!r} (registered: {', '.join(_WRAPPERS)})", key="contract.wrapper")
    return cls()


def wrappers() -> list[Wrapper]:
    """Every registered wrapper."""
    return [cls() for cls in _WRAPPERS.values()]


class ContractSpec(BaseModel):
    """The manifest's ``contract:`` section."""

    model_config = ConfigDict(extra="forbid")

    wrapper: str = DEFAULT_WRAPPER
    fields: list[FieldSpec] = Field(min_length=1)

    @field_validator("wrapper")
    @classmethod
    def _registered(cls, name: str) -> str:
        if name not in _WRAPPERS:  # worded as pydantic words a Literal
            raise PydanticCustomError("literal_error", "Input should be {expected}",
                                      {"expected": " or ".join(repr(n) for n in _WRAPPERS)})
        return name

    @field_validator("fields")
    @classmethod
    def _unique_and_multiline_last(cls, fields: list[FieldSpec]) -> list[FieldSpec]:
        names = [f.name for f in fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"field names repeat: {', '.join(dupes)}")
        for spec in fields[:-1]:
            if spec.multiline:
                raise ValueError(f"only the last field may be multiline, not {spec.name!r}")
        return fields


@dataclass
class ParsedPrompt:
    """Rendered text taken apart: wrapper, fields in their order, question, answer."""

    wrapper: str  # a registered wrapper's name, or plain
    fields: list[tuple[str, str]]
    question: str
    answer: str | None = None
    #: Wrappers with a thinking switch: True when the prompt lets the model think (no empty think block).
    thinking: bool | None = None
    #: Text inside a ``<think>`` block of the answer, if any.
    reasoning: str | None = None
    stray_lines: list[str] = field(default_factory=list)
    #: The system turn's text as given (for byte-exact format checks).
    system: str = ""

    def field_dict(self) -> dict[str, str]:
        return dict(self.fields)


#: Bytes per token assumed when no tokenizer is at hand (conservative for BPE vocabularies).
BYTES_PER_TOKEN_ESTIMATE = 3.0


class EncodedExample(NamedTuple):
    """A training example as token ids: what ``train`` trains on and what ``lint`` measures."""

    input_ids: list[int]
    #: 1 on the answer and its end-of-turn token, 0 on the prompt.
    completion_mask: list[int]

    @property
    def length(self) -> int:
        """The example's length in tokens: the one measure of ``training.max_length`` (lint's ``too_long``,
        train's filter)."""
        return len(self.input_ids)


class PromptParseError(ValueError):
    """Text that no wrapper can take apart."""


def find_control_tokens(text: str) -> list[str]:
    return CONTROL_TOKEN_RE.findall(text)


class PromptContract:
    """Renders, parses, checks and exports prompts for one expert."""

    def __init__(self, spec: ContractSpec) -> None:
        self.spec = spec
        #: The wrapper strategy (``spec.wrapper`` is its name).
        self.wrapper: Wrapper = get_wrapper(spec.wrapper)
        self.fields: list[FieldSpec] = list(spec.fields)
        self._by_name = {f.name: f for f in self.fields}

    # ------------------------------------------------------------------ identity
    def canonical(self) -> dict[str, Any]:
        """The contract as plain data, documentation text and what does not change the prompt (field roles,
        routing) left out."""
        data = self.spec.model_dump()
        for f in data["fields"]:
            for key in ("description", "role", "route"):
                f.pop(key, None)
        return data

    @property
    def fingerprint(self) -> str:
        """Hash of the canonical contract: equal fingerprints render equal prompts."""
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> FieldSpec:
        """The field called ``name``; :class:`ContractError` naming the contract's fields for another name."""
        spec = self._by_name.get(name)
        if spec is None:
            raise ContractError(f"field {name!r} is not in the contract ({', '.join(self.field_names)})",
                                [Finding("unknown_field", "error", f"field {name!r} is not in the contract",
                                         field=name)], key=name)
        return spec

    @property
    def end_of_turn(self) -> str:
        """The text that ends an answer; training puts loss on it, generation stops at it."""
        return self.wrapper.end_of_turn

    @property
    def stop_strings(self) -> list[str]:
        return list(self.wrapper.stop_strings)

    # ------------------------------------------------------------------ values
    def canonical_value(self, spec: FieldSpec, value: str) -> tuple[str | None, bool]:
        """Return ``(canonical, was_alias)``; canonical is None for a value the field does not allow."""
        value = value.strip()
        if spec.values is None:
            return value, False
        if value in spec.values:
            return value, False
        if value in spec.aliases:
            return spec.aliases[value], True
        lowered = value.lower()
        for allowed in spec.values:
            if allowed.lower() == lowered:
                return allowed, True
        for alias, target in spec.aliases.items():
            if alias.lower() == lowered:
                return target, True
        return None, False

    def check_fields(self, pairs: Sequence[tuple[str, str]], *, strict: bool = True) -> list[Finding]:
        """Check ordered ``(name, value)`` pairs against the contract.

        ``strict`` (inference prompts) makes ``alias_value`` and ``field_order`` errors; datasets
        get them as warnings since training renders the canonical form anyway.
        """
        soft = "error" if strict else "warning"
        out: list[Finding] = []
        seen: list[str] = []
        for name, value in pairs:
            spec = self._by_name.get(name)
            if spec is None:
                close = [n for n in self.field_names if n.lower() == name.lower()]
                out.append(
                    Finding(
                        "unknown_field",
                        "error",
                        f"field {name!r} is not in the contract ({', '.join(self.field_names)})",
                        field=name,
                        suggestion=close[0] if close else None,
                    )
                )
                continue
            if name in seen:
                out.append(Finding("duplicate_field", "error", f"field {name!r} appears twice", field=name))
                continue
            seen.append(name)
            if LONE_SURROGATE_RE.search(value):
                out.append(Finding("invalid_text", "error", "value holds a lone UTF-16 surrogate (not valid text)",
                                   field=name))
                continue
            if CONTROL_TOKEN_RE.search(value):
                out.append(
                    Finding("control_token", "error", f"value holds control token(s) "
                            f"{find_control_tokens(value)}", field=name)
                )
                continue
            if not value.strip():
                if spec.required:  # an empty optional field counts as absent
                    out.append(Finding("missing_field", "error", f"field {name!r} is empty", field=name))
                continue
            if "\n" in value.strip() and not spec.multiline:
                out.append(Finding("unknown_value", "error", "value spans several lines", field=name))
                continue
            canonical, was_alias = self.canonical_value(spec, value)
            if canonical is None:
                out.append(
                    Finding(
                        "unknown_value",
                        "error",
                        f"{value.strip()!r} is not an allowed value of {name} ({', '.join(spec.values or [])})",
                        field=name,
                    )
                )
            elif was_alias:
                out.append(
                    Finding(
                        "alias_value",
                        soft,
                        f"{value.strip()!r} is an alias: the contract's value is {canonical!r}",
                        field=name,
                        suggestion=canonical,
                    )
                )
        for spec in self.fields:
            if spec.required and spec.default is None and spec.name not in seen:
                out.append(Finding("missing_field", "error", f"required field {spec.name!r} is missing",
                                   field=spec.name))
        known = [n for n in seen if n in self._by_name]
        expected = [n for n in self.field_names if n in known]
        if known != expected:
            out.append(
                Finding(
                    "field_order",
                    soft,
                    f"fields come as {' / '.join(known)}; the contract's order is {' / '.join(expected)}",
                    suggestion=" / ".join(expected),
                )
            )
        return out

    def normalize(self, fields: Mapping[str, Any]) -> dict[str, str]:
        """Map fields to the contract: aliases to canonical values, defaults filled, contract order.

        Raises :class:`ContractError` (with findings) for unknown fields, missing required fields,
        disallowed values and control tokens.
        """
        pairs: list[tuple[str, str]] = []
        for name, value in fields.items():
            if not isinstance(value, str):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ContractError(f"field {name!r} must be a string", key=str(name))
                value = str(value)
            pairs.append((str(name), value))
        findings = [
            f for f in self.check_fields(pairs, strict=False) if f.severity == "error"
        ]
        if findings:
            raise ContractError("; ".join(f"{f.code}: {f.message}" for f in findings), findings)
        given = {name: value for name, value in pairs if value.strip()}
        out: dict[str, str] = {}
        for spec in self.fields:
            if spec.name in given:
                canonical, _ = self.canonical_value(spec, given[spec.name])
                out[spec.name] = canonical if canonical is not None else given[spec.name].strip()
            elif spec.default is not None:
                out[spec.name] = spec.default
        return out

    def _clean_question(self, question: str) -> str:
        if not isinstance(question, str) or not question.strip():
            raise ContractError("the question is empty", [Finding("missing_question", "error", "empty question")],
                                key="question")
        if LONE_SURROGATE_RE.search(question):
            raise ContractError("the question holds a lone UTF-16 surrogate (not valid text)",
                                [Finding("invalid_text", "error", "question holds a lone UTF-16 surrogate")],
                                key="question")
        bad = find_control_tokens(question)
        if bad:
            raise ContractError(
                f"the question holds control token(s) {bad}",
                [Finding("control_token", "error", f"question holds control token(s) {bad}")],
                key="question",
            )
        return question.strip()

    def _clean_answer(self, answer: str) -> str:
        if not isinstance(answer, str):
            raise ContractError("the answer must be a string", key="answer")
        if LONE_SURROGATE_RE.search(answer):
            raise ContractError("the answer holds a lone UTF-16 surrogate (not valid text)",
                                [Finding("invalid_text", "error", "answer holds a lone UTF-16 surrogate")],
                                key="answer")
        bad = [t for t in find_control_tokens(answer) if t not in ("<think>", "</think>")]
        if bad:
            raise ContractError(f"the answer holds control token(s) {bad}", key="answer")
        return answer.strip()

    # ------------------------------------------------------------------ rendering
    def system_block(self, fields: Mapping[str, Any]) -> str:
        """The ``Name: value`` lines, canonical, in contract order."""
        lines = []
        for name, value in self.normalize(fields).items():
            if self._by_name[name].multiline:
                lines.append(f"{name}:\n{value}")
            else:
                lines.append(f"{name}: {value}")
        return "\n".join(lines)

    def messages(self, fields: Mapping[str, Any], question: str, answer: str | None = None) -> list[dict[str, str]]:
        """Chat messages; the exported chat template renders them exactly as :meth:`render_prompt`."""
        msgs = [
            {"role": "system", "content": self.system_block(fields)},
            {"role": "user", "content": self._clean_question(question)},
        ]
        if answer is not None:
            msgs.append({"role": "assistant", "content": self._clean_answer(answer)})
        return msgs

    def _prompt_parts(self, fields: Mapping[str, Any], question: str) -> list[tuple[str, bool]]:
        """The generation prompt as ``(text, is_user_text)`` segments."""
        return self.wrapper.prompt_parts(self.system_block(fields), self._clean_question(question))

    def render_prompt(self, fields: Mapping[str, Any], question: str) -> str:
        """The exact generation prompt (what inference feeds the model)."""
        return "".join(text for text, _ in self._prompt_parts(fields, question))

    # the brief's name for it
    render = render_prompt

    def completion(self, answer: str) -> str:
        """What the model is trained to produce after the prompt: the answer and end of turn."""
        return self._clean_answer(answer) + self.end_of_turn

    def render_conversation(self, fields: Mapping[str, Any], question: str, answer: str) -> str:
        """The full training text (what the official chat template renders for the conversation)."""
        return self.render_prompt(fields, question) + self.completion(answer) + "\n"

    def encode_prompt(self, tokenizer: Any, fields: Mapping[str, Any], question: str) -> list[int]:
        """Token ids of the generation prompt; user text can never become a control token.

        Template segments are encoded with special tokens recognised, user segments with
        ``split_special_tokens=True``.
        """
        ids: list[int] = []
        control_ids = set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
        for text, is_user in self._prompt_parts(fields, question):
            part = tokenizer(text, add_special_tokens=False, split_special_tokens=is_user)["input_ids"]
            if is_user and control_ids.intersection(part):
                raise ContractError("user text would encode to a control token",
                                    [Finding("control_token", "error", "user text encodes to a control token")])
            ids.extend(part)
        return ids

    def encode_example(
        self, tokenizer: Any, fields: Mapping[str, Any], question: str, answer: str
    ) -> EncodedExample:
        """``(input_ids, completion_mask)``: mask is 1 on the answer and its end-of-turn token only."""
        prompt_ids = self.encode_prompt(tokenizer, fields, question)
        answer_ids = tokenizer(self._clean_answer(answer), add_special_tokens=False,
                               split_special_tokens=True)["input_ids"]
        eot_ids = tokenizer(self.end_of_turn, add_special_tokens=False)["input_ids"]
        completion = answer_ids + eot_ids
        return EncodedExample(prompt_ids + completion, [0] * len(prompt_ids) + [1] * len(completion))

    def example_length(self, tokenizer: Any | None, fields: Mapping[str, Any], question: str, answer: str) -> int:
        """Tokens of the training example (prompt, answer, end of turn; nothing after it), as ``train`` encodes
        it; without a tokenizer an estimate from the bytes of the same text (:data:`BYTES_PER_TOKEN_ESTIMATE`)."""
        if tokenizer is None:
            text = self.render_prompt(fields, question) + self.completion(answer)
            return math.ceil(len(text.encode()) / BYTES_PER_TOKEN_ESTIMATE)
        return self.encode_example(tokenizer, fields, question, answer).length

    # ------------------------------------------------------------------ parsing
    def parse(self, text: str) -> ParsedPrompt:
        """Take rendered text (qwen3, tags, or ``System:``/``User:`` plain) back apart."""
        return parse_prompt(text)

    # ------------------------------------------------------------------ export
    def chat_template(self) -> str:
        """A Jinja chat template that renders :meth:`messages` byte-identically to this contract.

        The assistant answer and its end-of-turn marker sit inside ``{% generation %}`` so TRL's
        ``assistant_only_loss`` masks the same tokens as expertkit does. A wrapper with a thinking switch
        (``qwen3``) puts the empty think block in the generation prompt unless ``enable_thinking`` is true.
        """
        return self.wrapper.chat_template(self.fingerprint)

    # ------------------------------------------------------------------ drift
    def check_wrapper(self, parsed: ParsedPrompt) -> list[Finding]:
        """``wrapper_mismatch`` for a prompt in another wrapper, ``thinking_mismatch`` for one that lets the
        model think where the contract's wrapper switches thinking off."""
        findings: list[Finding] = []
        if parsed.wrapper != self.wrapper.name:
            findings.append(
                Finding("wrapper_mismatch", "error",
                        f"prompt uses the {parsed.wrapper!r} wrapper; the expert was trained on {self.wrapper.name!r}",
                        suggestion=self.wrapper.name)
            )
        thinking = self.wrapper.thinking_finding(parsed)
        if thinking is not None:
            findings.append(thinking)
        return findings

    def _field_line(self, name: str, value: str) -> str:
        return f"{name}:\n{value}" if self._by_name[name].multiline else f"{name}: {value}"

    def _raw_prompt(self, lines: Sequence[str], question: str, *, wrapper: Wrapper | None = None,
                    thinking: bool = False) -> str:
        """A prompt from system lines as given (not normalised: drift variants)."""
        style = wrapper or self.wrapper
        return "".join(t for t, _ in style.prompt_parts("\n".join(lines), self._clean_question(question),
                                                        thinking=thinking))

    def drift_variants(self, fields: Mapping[str, Any], question: str) -> list[DriftVariant]:
        """The prompt for ``fields`` and ``question`` drifted in each way of :data:`DRIFT_KINDS`, with the
        finding code ``check-prompt`` raises for it; a variant's ``prompt`` is None where the drift does not
        apply (no alias to use, fewer than two single-line fields, no other wrapper, no thinking switch)."""
        canonical = self.normalize(fields)
        names = list(canonical)
        lines = [self._field_line(n, v) for n, v in canonical.items()]
        single = [i for i, n in enumerate(names) if not self._by_name[n].multiline]
        variants: dict[str, str | None] = dict.fromkeys(DRIFT_KINDS)
        alias = self._alias_for(canonical)
        if alias is not None:
            name, alias_value = alias
            variants["alias"] = self._raw_prompt(
                [f"{name}: {alias_value}" if n == name else line for n, line in zip(names, lines, strict=True)],
                question)
        if len(single) >= 2:
            first, second = single[0], single[1]
            swapped = list(lines)
            swapped[first], swapped[second] = lines[second], lines[first]
            variants["order"] = self._raw_prompt(swapped, question)
        # a field that is required and has no default: leaving it out is a missing_field error
        droppable = [i for i in single if self._by_name[names[i]].required and self._by_name[names[i]].default is None]
        if len(single) >= 2 and droppable:
            variants["missing"] = self._raw_prompt([ln for i, ln in enumerate(lines) if i != droppable[-1]], question)
        other = next((w for w in wrappers() if w.name != self.wrapper.name), None)
        if other is not None:
            variants["other_wrapper"] = self._raw_prompt(lines, question, wrapper=other)
        if self.wrapper.thinking_switch:
            variants["thinking"] = self._raw_prompt(lines, question, thinking=True)
        descriptions = {**DRIFT_DESCRIPTIONS, "other_wrapper": DRIFT_DESCRIPTIONS["other_wrapper"].format(
            other=other.name if other is not None else "none", this=self.wrapper.name)}
        return [DriftVariant(kind, descriptions[kind], DRIFT_CODES[kind], variants[kind]) for kind in DRIFT_KINDS]

    def _alias_for(self, canonical: Mapping[str, str]) -> tuple[str, str] | None:
        """``(name, alias)`` for the first single-line field with a declared alias of its value, else the first
        with a case variant of its value."""
        for spec in self.fields:
            value = canonical.get(spec.name)
            if value is not None and not spec.multiline:
                aliases = [a for a, target in spec.aliases.items() if target == value]
                if aliases:
                    return spec.name, aliases[0]
        for spec in self.fields:
            value = canonical.get(spec.name)
            if value is not None and not spec.multiline and spec.values is not None and value.upper() != value:
                return spec.name, value.upper()
        return None


#: The ways a prompt drifts from the contract, in report order, with what each does and the finding it raises.
DRIFT_KINDS: tuple[str, ...] = ("alias", "order", "missing", "other_wrapper", "thinking")
DRIFT_DESCRIPTIONS: dict[str, str] = {
    "alias": "a field's canonical value replaced by one of its aliases",
    "order": "the first two field lines swapped",
    "missing": "the last single-line field left out",
    "other_wrapper": "the prompt in the other wrapper ({other} <-> {this})",
    "thinking": "the empty think block left out (thinking allowed)",
}
DRIFT_CODES: dict[str, str] = {
    "alias": "alias_value",
    "order": "field_order",
    "missing": "missing_field",
    "other_wrapper": "wrapper_mismatch",
    "thinking": "thinking_mismatch",
}


@dataclass(frozen=True)
class DriftVariant:
    """A prompt drifted from the contract in one way, and the finding code ``check-prompt`` gives it."""

    kind: str
    description: str
    code: str
    #: The drifted prompt as raw text; None where this drift does not apply to the prompt.
    prompt: str | None


# ---------------------------------------------------------------------- parsing helpers
_PLAIN_TURN_RE = re.compile(r"^(System|User|Assistant):[ \t]*", re.M)


def parse_system_block(block: str) -> tuple[list[tuple[str, str]], list[str]]:
    """``Name: value`` lines to ordered pairs; ``Name:`` alone starts a multi-line value to the end."""
    pairs: list[tuple[str, str]] = []
    stray: list[str] = []
    lines = block.strip("\n").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        m = FIELD_LINE_RE.match(line)
        if m is None:
            if line.strip():
                stray.append(line)
            i += 1
            continue
        name, value = m.group(1).strip(), (m.group(2) or "").strip()
        if not value and i + 1 < len(lines):
            pairs.append((name, "\n".join(lines[i + 1 :]).strip()))
            break
        pairs.append((name, value))
        i += 1
    return pairs, stray


def split_think(answer: str) -> tuple[str | None, str, bool]:
    """``(reasoning, answer, empty_think_first)`` for an assistant turn's text.

    Leading think blocks are taken off one after the other; ``empty_think_first`` says the turn
    opened with the empty block of non-thinking mode.
    """
    rest = answer.lstrip("\n")
    reasoning: list[str] = []
    empty_first = rest.startswith(QWEN_THINK_OFF.rstrip("\n"))
    while rest.startswith("<think>"):
        end = rest.find("</think>")
        if end == -1:
            reasoning.append(rest[len("<think>") :].strip())
            return "\n".join(r for r in reasoning if r), "", empty_first
        inner = rest[len("<think>") : end].strip()
        if inner:
            reasoning.append(inner)
        rest = rest[end + len("</think>") :].lstrip()
    return ("\n".join(reasoning) or None), rest.strip(), empty_first


def _detect(text: str) -> list[Wrapper]:
    return [w for w in wrappers() if w.detect(text)]


def detect_wrapper(text: str) -> str | None:
    """The name of the wrapper ``text`` is written in, ``"mixed"``, ``"plain"`` (``System:``/``User:``) or None."""
    found = _detect(text)
    if len(found) > 1:
        return "mixed"
    if found:
        return found[0].name
    if _PLAIN_TURN_RE.search(text):
        return "plain"
    return None


def _plain_turns(text: str) -> list[tuple[str, str, bool]]:
    turns: list[tuple[str, str, bool]] = []
    starts = list(_PLAIN_TURN_RE.finditer(text))
    for k, m in enumerate(starts):
        end = starts[k + 1].start() if k + 1 < len(starts) else len(text)
        content = text[m.end() : end].strip("\n")
        if m.group(1) == "System":
            content = content.replace("\\n", "\n")  # a script's escaped newlines
        turns.append((m.group(1).lower(), content, True))
    return turns


def parse_prompt(text: str) -> ParsedPrompt:
    """Parse a rendered prompt or conversation in any wrapper; raises :class:`PromptParseError`."""
    found = _detect(text)
    if len(found) > 1:
        raise PromptParseError(f"text mixes the {' and '.join(w.name for w in found)} wrappers")
    style = found[0] if found else None
    if style is None and not _PLAIN_TURN_RE.search(text):
        expected = ", ".join(w.markers[0] for w in wrappers() if w.markers)
        raise PromptParseError(f"no wrapper recognised (expected {expected} or System:/User: turns)")
    turns = style.turns(text) if style is not None else _plain_turns(text)  # role, content, closed
    roles = [t[0] for t in turns]
    if "system" not in roles or "user" not in roles:
        raise PromptParseError(f"expected a system and a user turn, found {roles or 'none'}")
    system = next(t[1] for t in turns if t[0] == "system")
    user = next(t[1] for t in turns if t[0] == "user")
    pairs, stray = parse_system_block(system)
    answer: str | None = None
    reasoning: str | None = None
    empty_think: bool | None = None
    assistant = [t for t in turns if t[0] == "assistant"]
    if assistant:
        _, content, closed = assistant[-1]
        reasoning, rest, empty_think = split_think(content)
        if rest or closed:
            answer = rest
    thinking = style.thinking(empty_think) if style is not None else (None if assistant else True)
    return ParsedPrompt(
        wrapper=style.name if style is not None else "plain",
        fields=pairs,
        question=user.strip(),
        answer=answer,
        thinking=thinking,
        reasoning=reasoning,
        stray_lines=stray,
        system=system,
    )


def diff_contracts(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between two canonical contracts (see :meth:`PromptContract.canonical`)."""
    changes: list[str] = []
    if old.get("wrapper") != new.get("wrapper"):
        changes.append(f"wrapper {old.get('wrapper')!r} -> {new.get('wrapper')!r}")
    old_fields = {f["name"]: f for f in old.get("fields", [])}
    new_fields = {f["name"]: f for f in new.get("fields", [])}
    for name in old_fields.keys() - new_fields.keys():
        changes.append(f"field {name!r} removed")
    for name in new_fields.keys() - old_fields.keys():
        changes.append(f"field {name!r} added")
    common_old = [n for n in old_fields if n in new_fields]
    common_new = [n for n in new_fields if n in old_fields]
    if common_old != common_new:
        changes.append(f"field order {' / '.join(common_old)} -> {' / '.join(common_new)}")
    for name in common_new:
        a, b = old_fields[name], new_fields[name]
        for key in sorted(set(a) | set(b)):
            if key != "description" and a.get(key) != b.get(key):
                changes.append(f"field {name!r} {key}: {a.get(key)!r} -> {b.get(key)!r}")
    return changes or ["contract text differs"]
