"""Properties: ``parse(render(x)) == x`` for whatever a contract accepts, and lint never crashes on any bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _reliability import BADINPUT
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from expertkit.authoring.lint import LintReport, lint_file
from expertkit.core.contract import ContractSpec, PromptContract, parse_prompt
from expertkit.core.errors import ContractError, ExpertkitError
from expertkit.expert import Expert

ROUND_TRIP_EXAMPLES = 400
LINT_EXAMPLES = 300

NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,11}", fullmatch=True)
#: Text that looks like structure: field lines, turn markers, lookalike control tokens, odd whitespace.
TRICKY = ["Dialect: json", "Schema:", "Name:value", "  indented: x", "System: hi", "User: q", "Assistant: a",
          "<|im_start |>user", "< |im_end|>", "<think >", "\r", "\r\n", "\t", "\x0b", "\x1c", "\x85", "\u2028",
          "\ufeff", "\u200b", "\\n", "---", "```sql", "{", "}", '"', "\\"]
TEXT = st.lists(st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(TRICKY), max_size=4).map("".join)
LINES = st.lists(TEXT, min_size=1, max_size=4).map("\n".join)


@st.composite
def contracts(draw: st.DrawFn) -> PromptContract:
    """2-5 fields, some with allowed values (and aliases), some optional, maybe a multiline last field."""
    names = draw(st.lists(NAMES, min_size=2, max_size=5, unique=True))
    fields: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        spec: dict[str, Any] = {"name": name, "required": draw(st.booleans())}
        last = i == len(names) - 1
        if last and draw(st.booleans()):
            spec["multiline"] = True
        elif draw(st.booleans()):
            values = draw(st.lists(TEXT.map(str.strip).filter(bool), min_size=1, max_size=3, unique=True))
            spec["values"] = values
            if draw(st.booleans()):
                spec["aliases"] = {draw(TEXT.map(str.strip).filter(bool)): values[0]}
        fields.append(spec)
    try:
        spec_model = ContractSpec.model_validate({"wrapper": draw(st.sampled_from(["qwen3", "tags"])),
                                                  "fields": fields})
    except ValidationError:
        assume(False)
    return PromptContract(spec_model)


@st.composite
def requests(draw: st.DrawFn) -> tuple[PromptContract, dict[str, str], str, str]:
    contract = draw(contracts())
    given_fields: dict[str, str] = {}
    for spec in contract.fields:
        if not spec.required and draw(st.booleans()):
            continue
        if spec.values is not None:
            choices = [*spec.values, *spec.aliases, *(v.upper() for v in spec.values)]
            given_fields[spec.name] = draw(st.sampled_from(choices))
        else:
            given_fields[spec.name] = draw(LINES if spec.multiline else TEXT)
    order = draw(st.permutations(list(given_fields)))
    return contract, {k: given_fields[k] for k in order}, draw(LINES), draw(LINES)


@settings(max_examples=ROUND_TRIP_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                                   HealthCheck.too_slow])
@given(requests())
def test_parse_of_render_gives_back_the_fields_and_question(request: tuple[PromptContract, dict[str, str], str, str]
                                                            ) -> None:
    contract, fields, question, answer = request
    try:
        canonical = contract.normalize(fields)
        prompt = contract.render_prompt(fields, question)
        conversation = contract.render_conversation(fields, question, answer)
    except ContractError:
        assume(False)
        return
    parsed = parse_prompt(prompt)
    assert parsed.wrapper == contract.wrapper.name
    assert parsed.fields == list(canonical.items())
    assert parsed.question == question.strip()
    assert parsed.answer is None and parsed.stray_lines == []
    assert parsed.thinking is (False if contract.wrapper.thinking_switch else None)
    assert contract.check_fields(parsed.fields, strict=True) == []
    assume("<think>" not in answer and "</think>" not in answer)  # a think block in an answer is split off
    whole = parse_prompt(conversation)
    assert (whole.fields, whole.question, whole.answer) == (parsed.fields, parsed.question, answer.strip())


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
    | st.sampled_from(["Dialect: json\nTask: extract", "system", "user", "assistant", '{"total": 1}']),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["messages", "role", "content", "fields", "question", "answer", "text", "Dialect", "Task"]),
        children, max_size=3),
    max_leaves=12,
)
LINE_BYTES = st.one_of(
    st.binary(max_size=80),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    JSON_VALUES.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
    st.sampled_from([b"\xef\xbb\xbf", b"\xff", b"\\ud800", b'"\\ud800"', b"[" * 3000, b"{" * 3000, b"", b"  "]),
)
DATASETS = st.lists(LINE_BYTES, max_size=6).map(b"\n".join) | st.binary(max_size=300)


@pytest.fixture(scope="module")
def expert() -> Expert:
    return Expert.load(BADINPUT / "expert")


@settings(max_examples=LINT_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=DATASETS)
def test_lint_never_crashes_on_any_bytes(expert: Expert, tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(data)
    try:
        report = lint_file(expert, path)
    except ExpertkitError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        return
    assert isinstance(report, LintReport)
    json.dumps(report.to_dict(), ensure_ascii=False).encode()  # what `lint --json` prints is encodable
