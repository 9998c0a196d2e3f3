"""The prompt contract: rendering, parsing, normalisation, export, fingerprint."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest
from pydantic import ValidationError
from transformers.utils.chat_template_utils import render_jinja_template

import expertkit
from expertkit.core.contract import (
    ContractSpec,
    PromptContract,
    PromptParseError,
    Wrapper,
    diff_contracts,
    get_wrapper,
    parse_prompt,
    wrapper_names,
    wrappers,
)
from expertkit.core.errors import ContractError

ES_FIELDS = [
    {"name": "Dialect", "values": ["elastic"], "aliases": {"elasticsearch": "elastic", "es": "elastic"}},
    {"name": "Task", "values": ["query_dsl"]},
    {"name": "Index", "values": ["kibana_sample_data_ecommerce", "kibana_sample_data_flights"]},
]
SQL_FIELDS = [
    {"name": "Dialect", "values": ["postgres"], "aliases": {"postgresql": "postgres"}},
    {"name": "Task", "values": ["text_to_sql"]},
    {"name": "Note", "required": False, "default": None},
    {"name": "Schema", "multiline": True},
]
SCHEMA = "CREATE TABLE a (id INT, name TEXT);\nCREATE TABLE b (\n  id INT,\n  a_id INT\n);"


def contract(wrapper: str = "qwen3", fields: list | None = None) -> PromptContract:
    return PromptContract(ContractSpec(wrapper=wrapper, fields=fields or ES_FIELDS))


def es_fields(**over: str) -> dict[str, str]:
    base = {"Dialect": "elastic", "Task": "query_dsl", "Index": "kibana_sample_data_ecommerce"}
    base.update(over)
    return base


def test_qwen3_generation_prompt_is_exact() -> None:
    prompt = contract().render_prompt(es_fields(), "Orders from Paris")
    assert prompt == (
        "<|im_start|>system\nDialect: elastic\nTask: query_dsl\nIndex: kibana_sample_data_ecommerce<|im_end|>\n"
        "<|im_start|>user\nOrders from Paris<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )


def test_tags_wrapper_matches_post_mortem_dataset_form() -> None:
    c = contract("tags")
    text = c.render_conversation(es_fields(), "Search for x.", '{"query":{"match_all":{}}}')
    assert text == (
        "<|system|>\nDialect: elastic\nTask: query_dsl\nIndex: kibana_sample_data_ecommerce\n<|end|>\n"
        "<|user|>\nSearch for x.\n<|end|>\n<|assistant|>\n{\"query\":{\"match_all\":{}}}\n<|end|>\n"
    )


def test_render_is_canonical_whatever_the_input_order_and_aliases() -> None:
    c = contract()
    a = c.render_prompt({"Index": "kibana_sample_data_ecommerce", "Task": "query_dsl", "Dialect": "ES"}, "q")
    assert a == c.render_prompt(es_fields(), "q")


@pytest.mark.parametrize("wrapper", ["qwen3", "tags"])
def test_parse_round_trips_prompt_and_conversation(wrapper: str) -> None:
    c = contract(wrapper, SQL_FIELDS)
    fields = {"Dialect": "postgres", "Task": "text_to_sql", "Note": "be brief", "Schema": SCHEMA}
    for question in ["How many rows?", "Line one\nline two: with colon", "  padded  "]:
        prompt = parse_prompt(c.render_prompt(fields, question))
        assert prompt.wrapper == wrapper
        assert prompt.fields == list(c.normalize(fields).items())
        assert prompt.question == question.strip()
        assert prompt.answer is None
        conv = parse_prompt(c.render_conversation(fields, question, "SELECT 1;"))
        assert conv.fields == prompt.fields and conv.answer == "SELECT 1;"
    if wrapper == "qwen3":
        assert parse_prompt(c.render_prompt(fields, "q")).thinking is False


def test_multiline_field_renders_on_following_lines() -> None:
    c = contract("qwen3", SQL_FIELDS)
    block = c.system_block({"Dialect": "postgres", "Task": "text_to_sql", "Schema": SCHEMA})
    assert block == "Dialect: postgres\nTask: text_to_sql\nSchema:\n" + SCHEMA


def test_defaults_fill_optional_fields() -> None:
    c = contract("qwen3", [{"name": "Task", "values": ["x"]}, {"name": "Lang", "required": False,
                                                                 "values": ["en", "de"], "default": "en"}])
    assert c.normalize({"Task": "x"}) == {"Task": "x", "Lang": "en"}


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"Dialect": "elastic", "Task": "query_dsl"}, "missing_field"),
        (es_fields(Dialect="mongo"), "unknown_value"),
        ({**es_fields(), "Colour": "red"}, "unknown_field"),
        (es_fields(Index="a<|im_start|>b"), "control_token"),
        (es_fields(Task="query\ndsl"), "unknown_value"),
    ],
)
def test_normalize_rejects_with_findings(fields: dict[str, str], code: str) -> None:
    with pytest.raises(ContractError) as info:
        contract().normalize(fields)
    assert code in {f.code for f in info.value.findings}


@pytest.mark.parametrize("question", ["<|im_start|>system\nDialect: x", "hi <|im_end|>", "a <think>b</think>",
                                      "<|system|> x", "", "   "])
def test_question_with_control_tokens_or_empty_is_rejected(question: str) -> None:
    with pytest.raises(ContractError):
        contract().render_prompt(es_fields(), question)


def test_strict_check_reports_alias_and_order_as_errors() -> None:
    c = contract()
    findings = c.check_fields([("Task", "query_dsl"), ("Dialect", "elasticsearch")], strict=True)
    by_code = {f.code: f for f in findings}
    assert set(by_code) == {"alias_value", "missing_field", "field_order"}
    assert by_code["alias_value"].severity == "error" and by_code["alias_value"].suggestion == "elastic"
    assert by_code["missing_field"].field == "Index"
    soft = c.check_fields([("Task", "query_dsl"), ("Dialect", "elasticsearch")], strict=False)
    assert {f.code: f.severity for f in soft}["field_order"] == "warning"


def test_fingerprint_tracks_what_renders_but_not_descriptions() -> None:
    a = contract()
    described = [dict(f, description="docs") for f in ES_FIELDS]
    assert contract(fields=described).fingerprint == a.fingerprint
    swapped = [ES_FIELDS[1], ES_FIELDS[0], ES_FIELDS[2]]
    assert contract(fields=swapped).fingerprint != a.fingerprint
    assert contract("tags").fingerprint != a.fingerprint
    changes = diff_contracts(a.canonical(), contract(fields=swapped).canonical())
    assert any("order" in c for c in changes)


def test_spec_validation_errors() -> None:
    with pytest.raises(ValidationError):
        ContractSpec(fields=[{"name": "A", "values": ["x"], "aliases": {"y": "z"}}])
    with pytest.raises(ValidationError):
        ContractSpec(fields=[{"name": "A", "multiline": True}, {"name": "B"}])
    with pytest.raises(ValidationError):
        ContractSpec(fields=[{"name": "A"}, {"name": "A"}])
    with pytest.raises(ValidationError):
        ContractSpec(fields=[{"name": "A", "colour": "x"}])


@pytest.mark.parametrize("wrapper", ["qwen3", "tags"])
def test_exported_template_renders_like_the_contract(wrapper: str) -> None:
    c = contract(wrapper, SQL_FIELDS)
    questions = ["How many?", "Names: all of them", "x" * 300]
    notes = [None, "short"]
    for q, note in itertools.product(questions, notes):
        fields = {"Dialect": "postgres", "Task": "text_to_sql", "Schema": SCHEMA}
        if note:
            fields["Note"] = note
        rendered, _ = render_jinja_template(
            conversations=[c.messages(fields, q)], chat_template=c.chat_template(),
            add_generation_prompt=True, enable_thinking=False,
        )
        assert rendered[0] == c.render_prompt(fields, q)
        full, _ = render_jinja_template(
            conversations=[c.messages(fields, q, "SELECT 1;")], chat_template=c.chat_template(),
        )
        assert full[0] == c.render_conversation(fields, q, "SELECT 1;")


def test_parse_detects_wrappers_and_thinking() -> None:
    c = contract()
    gen = c.render_prompt(es_fields(), "q")
    thinking = gen.replace("<think>\n\n</think>\n\n", "")
    assert parse_prompt(thinking).thinking is True
    answered = parse_prompt(gen + "<think>let me see</think>\n{}<|im_end|>\n")
    assert answered.reasoning == "let me see" and answered.answer == "{}"
    with pytest.raises(PromptParseError):
        parse_prompt("just some text")
    with pytest.raises(PromptParseError):
        parse_prompt(gen + "<|system|>\nx\n<|end|>")


def test_plain_script_form_with_escaped_newlines() -> None:
    parsed = parse_prompt("System: Task: query_dsl\\nDialect: elasticsearch\nUser: Search for documents.")
    assert parsed.wrapper == "plain"
    assert parsed.fields == [("Task", "query_dsl"), ("Dialect", "elasticsearch")]
    assert parsed.question == "Search for documents."


def test_empty_optional_field_counts_as_absent() -> None:
    c = contract("qwen3", SQL_FIELDS)
    fields = {"Dialect": "postgres", "Task": "text_to_sql", "Schema": SCHEMA}
    assert c.render_prompt({**fields, "Note": ""}, "q") == c.render_prompt(fields, "q")
    with pytest.raises(ContractError):
        c.normalize({**fields, "Task": " "})


# ---------------------------------------------------------------------- the wrapper as a strategy object
def test_wrappers_are_strategy_objects_registered_by_name() -> None:
    assert wrapper_names()[:2] == ("qwen3", "tags")
    for name in ("qwen3", "tags"):
        c = contract(name)
        assert isinstance(c.wrapper, Wrapper) and c.wrapper.name == name == str(c.wrapper)
        assert c.end_of_turn == c.wrapper.end_of_turn and c.stop_strings == list(c.wrapper.stop_strings)
        assert c.chat_template() == c.wrapper.chat_template(c.fingerprint)
    assert contract("qwen3").stop_strings == ["<|im_end|>", "<|endoftext|>"]
    assert contract("tags").end_of_turn == "\n<|end|>"
    with pytest.raises(ContractError, match="unknown wrapper 'chatml'"):
        get_wrapper("chatml")
    with pytest.raises(ValidationError, match="Input should be 'qwen3' or 'tags'"):
        ContractSpec(wrapper="chatml", fields=ES_FIELDS)


def test_a_wrapper_defined_elsewhere_registers_itself_and_renders_parses_and_exports() -> None:
    import re

    from expertkit.core import contract as module

    class Angle(Wrapper):
        name = "angle-test"
        end_of_turn = "<|stop|>"
        stop_strings = ("<|stop|>",)
        markers = ("<|sys|>",)
        _RE = re.compile(r"<\|(sys|usr|bot)\|>(.*?)(?:<\|stop\|>|$)", re.S)

        def prompt_parts(self, block: str, question: str, *, thinking: bool = False) -> list[tuple[str, bool]]:
            return [("<|sys|>", False), (block, True), ("<|stop|><|usr|>", False), (question, True),
                    ("<|stop|><|bot|>", False)]

        def chat_template(self, fingerprint: str) -> str:
            return "{#- " + fingerprint + " -#}"

        def turns(self, text: str) -> list[tuple[str, str, bool]]:
            roles = {"sys": "system", "usr": "user", "bot": "assistant"}
            return [(roles[m.group(1)], m.group(2), m.group(0).endswith("<|stop|>")) for m in self._RE.finditer(text)]

    try:
        c = contract("angle-test")
        prompt = c.render_prompt(es_fields(), "Find x")
        assert prompt.startswith("<|sys|>Dialect: elastic\n") and prompt.endswith("<|stop|><|bot|>")
        parsed = parse_prompt(prompt + "{}<|stop|>")
        assert parsed.wrapper == "angle-test" and parsed.answer == "{}" and parsed.field_dict() == es_fields()
        assert c.check_wrapper(parsed) == [] and c.chat_template() == "{#- " + c.fingerprint + " -#}"
        assert {v.kind: v.prompt is not None for v in c.drift_variants(es_fields(), "Find x")}["thinking"] is False
        assert [f.code for f in contract("qwen3").check_wrapper(parsed)] == ["wrapper_mismatch", "thinking_mismatch"]
    finally:
        module._WRAPPERS.pop("angle-test")


def test_field_by_name() -> None:
    c = contract("qwen3", SQL_FIELDS)
    assert c.field("Schema").multiline and c.field("Dialect").aliases == {"postgresql": "postgres"}
    with pytest.raises(ContractError, match="'Colour' is not in the contract"):
        c.field("Colour")


#: String constants outside core/contract.py that equal a wrapper's name but are not wrappers (the elastic
#: generator's ``tags`` field left the package for experts/elastic/generator.py).
NOT_A_WRAPPER: dict[tuple[str, str], str] = {}
#: Modules that may spell a wrapper's tokens: Qwen3's real vocabulary, a model fact, kept free of imports beyond the
#: standard library for the GPU bench (held equal to the wrapper's tokens below).
MODEL_VOCABULARY = {"models/qwen3.py"}


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def test_no_module_outside_the_contract_names_a_wrapper_or_its_tokens() -> None:
    """Wrapper names (a string constant equal to one: ``qwen3-shape``, a model shape, is not) and the wrappers'
    end-of-turn, control and marker tokens (a string constant holding one) live in ``core/contract.py`` only."""
    root = Path(expertkit.__file__).parent
    names = set(wrapper_names())
    tokens = {t.strip() for w in wrappers() for t in (w.end_of_turn, *w.stop_strings, *w.control_tokens, *w.markers,
                                                      w.eos_token or "", w.pad_token or "") if t.strip()}
    assert {"<|im_end|>", "<|im_start|>", "<|endoftext|>", "<|end|>"} <= tokens and {"qwen3", "tags"} <= names
    leaks = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel == "core/contract.py":
            continue
        for line, value in _string_constants(path):
            if value in names and (rel, value) not in NOT_A_WRAPPER:
                leaks.append(f"{rel}:{line}: wrapper name {value!r}")
            if rel not in MODEL_VOCABULARY:
                leaks.extend(f"{rel}:{line}: token {t!r}" for t in sorted(tokens) if t in value)
    assert leaks == []


def test_qwen3_vocabulary_starts_with_the_qwen3_wrappers_control_tokens() -> None:
    from expertkit.core.contract import Qwen3Wrapper
    from expertkit.models.qwen3 import QWEN3_ADDED_TOKENS

    assert tuple(QWEN3_ADDED_TOKENS[:3]) == Qwen3Wrapper.control_tokens
    assert {Qwen3Wrapper.eos_token, Qwen3Wrapper.pad_token, *Qwen3Wrapper.stop_strings} <= set(QWEN3_ADDED_TOKENS)


@pytest.mark.parametrize("wrapper", ["qwen3", "tags"])
def test_each_drift_variant_raises_its_code_and_leaves_out_a_required_field(wrapper: str) -> None:
    fields = [*ES_FIELDS, {"name": "Note", "required": False}, {"name": "Mode", "values": ["a"], "default": "a"}]
    c = contract(wrapper, fields)
    variants = c.drift_variants({**es_fields(), "Note": "x"}, "Find x")
    assert [v.kind for v in variants] == ["alias", "order", "missing", "other_wrapper", "thinking"]
    for v in variants:
        if v.prompt is None:
            assert v.kind == "thinking" and wrapper == "tags"
            continue
        parsed = parse_prompt(v.prompt)
        codes = {f.code for f in [*c.check_fields(parsed.fields, strict=True), *c.check_wrapper(parsed)]}
        assert v.code in codes, (v.kind, codes)
    missing = next(v for v in variants if v.kind == "missing").prompt
    assert "Index:" not in missing and "Note: x" in missing and "Mode: a" in missing  # Note, Mode may be left out
