"""Output kinds as plug-ins: nothing outside ``kinds/`` names a kind or a shipped field; a user's kind, in its
own package and registered through an entry point, is used by lint, validate and compare; roles and
routing come from the manifest."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from expertkit.core.contract import ContractSpec, PromptContract
from expertkit.core.errors import ExpertkitError
from expertkit.expert import Expert, parse_manifest
from expertkit.kinds import BUILTIN_KINDS, ENTRY_POINT_GROUP, kind_class, kind_names

SRC = Path(__file__).resolve().parents[1] / "src" / "expertkit"
#: The shipped kinds' names (a string constant equal to one is a mention).
KIND_NAMES = frozenset({"json", "sql", "elastic_dsl"})
#: The shipped experts' field names (a string constant holding one as a word is a mention).
FIELD_NAMES = ("Index", "Dialect", "Task", "Schema")
FIELD_RE = re.compile(r"\b(" + "|".join(FIELD_NAMES) + r")\b")
#: The packages allowed to name them: the shipped kind plug-ins (not ``kinds/`` itself: its registry and base,
#: correctness, scoring and validation modules are the core of every kind).
OWNERS = ("kinds/json/", "kinds/elastic/", "kinds/sql/")
#: (module, top-level definition) where a constant may equal a kind's name, and why.
OTHER_MEANINGS = {
    ("core/manifest.py", "DecodingSpec"): "decoding.constrain's `json` mode: any JSON",
    ("engines/inference/constrain.py", "CONSTRAIN_MODES"): "the constrained-decoding modes none/json/schema",
    ("kinds/__init__.py", "BUILTIN_KINDS"): "the registry's table of the modules to import for a built-in name",
    ("kinds/__init__.py", "DEFAULT_KIND"): "the kind `expertkit new` scaffolds when none is given",
}


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring constants of the module, its classes and functions."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _mode_keywords(tree: ast.Module) -> set[int]:
    """ids of constants passed as a ``mode=`` keyword (pydantic's ``model_dump(mode="json")``)."""
    return {id(k.value) for node in ast.walk(tree) if isinstance(node, ast.Call) for k in node.keywords
            if k.arg == "mode" and isinstance(k.value, ast.Constant)}


def _top_level_name(stmt: ast.stmt) -> str:
    if isinstance(stmt, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
        return stmt.name
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
    names = [t.id for t in targets if isinstance(t, ast.Name)]
    return names[0] if names else ""


def _mentions(source: str, rel: str = "") -> list[str]:
    """The string constants of ``source`` (f-string parts included; docstrings not) that equal a shipped kind's
    name or hold a shipped field name as a word, as ``line: 'text'``."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    modes = _mode_keywords(tree)
    found: list[str] = []
    for stmt in tree.body:
        other = (rel, _top_level_name(stmt)) in OTHER_MEANINGS
        for node in ast.walk(stmt):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in docs:
                continue
            kind = node.value in KIND_NAMES and id(node) not in modes and not other
            if kind or FIELD_RE.search(node.value):
                found.append(f"{node.lineno}: {node.value!r}")
    return found


def test_no_module_outside_the_kind_plugins_names_a_kind_or_a_shipped_field() -> None:
    """The rule: in every module under ``src/expertkit/`` except the plug-in packages :data:`OWNERS`, no string
    constant (an ``ast.Constant`` holding a ``str``, f-string parts included) equals a shipped kind's name
    (``json``, ``sql``, ``elastic_dsl``) or holds a shipped expert's field name (``Index``, ``Dialect``, ``Task``,
    ``Schema``, case-sensitive) as a word — a message or a help line included. Docstrings do not count, nor do
    comments or names (``import json``). The exemptions, for kind names only: a ``mode=`` keyword argument
    (pydantic's ``model_dump(mode="json")``: the JSON format) and the top-level definitions of
    :data:`OTHER_MEANINGS`: the ``json`` constrained-decoding mode (the JSON format again), and the registry's
    lazy-import table of the built-in kinds and ``new``'s default kind (the registry must know where the
    built-ins live without importing them; neither is branched on)."""
    offences: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(OWNERS):
            continue
        offences += [f"{rel}:{hit}" for hit in _mentions(path.read_text(encoding="utf-8"), rel)]
    assert not offences, "kind or field names outside the kind plug-ins:\n" + "\n".join(offences)


def test_the_rule_catches_a_kind_comparison_and_a_field_in_a_message() -> None:
    """The walk above sees a kind name where the core would branch on it, and a field name inside a message or
    an f-string (the test can fail); docstrings and ``import json`` do not count."""
    source = ('"""json and Schema in a docstring."""\nimport json\nif output.kind == "sql":\n    pass\n'
              'raise E(f"the Schema of {name} does not load")\nhelp = "the Dialect field"\nok = "Indexes, tasks"\n')
    assert _mentions(source) == ["3: 'sql'", "5: 'the Schema of '", "6: 'the Dialect field'"]


# ---------------------------------------------------------------------------- registry and manifest
def test_built_in_kinds_are_registered_lazily_by_name() -> None:
    assert set(BUILTIN_KINDS) <= set(kind_names())
    for name in BUILTIN_KINDS:
        assert kind_class(name).name == name


MANIFEST = """\
name: toy
output:
  kind: {kind}
contract:
  fields:
    - name: Palette
      {role}
    - name: Mood
      values: [calm]
      {route}
"""


def _dist_info(site: Path, package: str, entry_point: str) -> None:
    """Install ``package``'s metadata into ``site``: one entry point (``name = module:attr``) of the kinds' group."""
    info = site / f"{package}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_point}\n")


def test_an_entry_point_that_loads_no_kind_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _dist_info(tmp_path, "notakind", "notakind = json:dumps")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ExpertkitError, match=r"^output.kind: output kind 'notakind': entry point 'json:dumps' in "
                                             r"group expertkit.kinds loads a function, not a subclass of "
                                             r"expertkit.kinds.OutputKind$"):
        kind_class("notakind")


def test_a_plugin_that_does_not_load_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _dist_info(tmp_path, "brokenkind", "broken = brokenkind_missing:Kind")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "broken" in kind_names()
    with pytest.raises(ExpertkitError, match=r"^output.kind: output kind 'broken' \(entry point "
                                             r"'brokenkind_missing:Kind' in group expertkit.kinds\) cannot be "
                                             r"loaded: ModuleNotFoundError"):
        kind_class("broken")


def test_an_unknown_kind_or_role_is_one_line_naming_the_file_and_key() -> None:
    with pytest.raises(ExpertkitError) as exc:
        parse_manifest(MANIFEST.format(kind="colour", role="", route=""), "experts/toy/expert.yaml")
    message = str(exc.value)
    assert message.startswith("experts/toy/expert.yaml:3: output.kind: unknown output kind 'colour' (known: ")
    assert all(name in message for name in BUILTIN_KINDS) and "\n" not in message
    with pytest.raises(ExpertkitError, match=r"expert.yaml:7: contract.fields.0.role: unknown role 'palette' for "
                                             r"output kind 'sql' \(its roles: dialect, schema\)"):
        parse_manifest(MANIFEST.format(kind="sql", role="role: palette", route=""))


def test_roles_and_routing_come_from_the_manifest(tmp_path: Path) -> None:
    text = MANIFEST.format(kind="sql", role="role: schema", route="route: true")
    (tmp_path / "expert.yaml").write_text(text)
    expert = Expert.load(tmp_path)
    assert expert.kind.role_fields == {"dialect": "Dialect", "schema": "Palette"}  # undeclared: the default name
    assert [f.name for f in expert.routing_fields] == ["Mood"]
    result = expert.validate("SELECT nope FROM t", {"Palette": "CREATE TABLE t (id INT);", "Mood": "calm"})
    assert not result.valid and "nope" in " ".join(result.errors)  # the schema came from the Palette field
    # roles and routing do not change the prompt: the fingerprint ignores them
    bare = Expert(tmp_path, parse_manifest(MANIFEST.format(kind="sql", role="", route="")))
    assert bare.fingerprint == expert.fingerprint
    assert [f.name for f in bare.routing_fields] == []  # no route declared, no default routing field here


# ---------------------------------------------------------------------------- a user's kind
TOY_KIND = r'''
"""A user's output kind: the answer is one colour of the prompt's palette."""
import re

from expertkit.kinds import OutputKind, Role
from expertkit.kinds.correctness import ErrorKind, Matcher
from expertkit.kinds.validation import ValidationResult


class Words(Matcher):
    broken = "broken_colour"

    def parses(self, answer):  # a word without a vowel is no colour at all
        return any(v in answer for v in "aeiou")

    def parts(self, answer):
        return [("colour", "", "", word) for word in answer.split()]


class Colour(OutputKind):
    name = "colour"
    roles = (Role("palette", "Palette", "the colours allowed", needed=True, example="red,green,blue"),)
    example_answer = "red"
    resource_notes = "No resources."
    matcher_class = Words
    errors = (ErrorKind("broken_colour", "colour", "the answer is not a word"),)
    report_columns = ("component_f1",)

    def validate(self, output, fields):
        allowed = (self.value(fields, "palette") or "").split(",")
        if output.strip() in allowed:
            return ValidationResult(True)
        return ValidationResult(False, [f"{output.strip()!r} is not a colour of the palette"])

    def equivalent(self, a, b, fields):
        return a.strip().lower() == b.strip().lower()

    @classmethod
    def find_answer(cls, text):
        m = re.search(r"\b[a-z]+\b", text)
        return (m.start(), m.group(0)) if m else None
'''


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A package ``colourkind`` installed into a folder of its own (its dist-info registers the entry point);
    the environment that puts it on the path of a subprocess."""
    site = tmp_path_factory.mktemp("site")
    (site / "colourkind.py").write_text(textwrap.dedent(TOY_KIND))
    _dist_info(site, "colourkind", "colour = colourkind:Colour")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def _expertkit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "expertkit.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def _colour_expert(root: Path, train: list[tuple[str, str]]) -> Path:
    root.mkdir(parents=True)
    (root / "expert.yaml").write_text(textwrap.dedent("""\
        name: colours
        output:
          kind: colour
        contract:
          fields:
            - name: Shades
              role: palette
        decoding:
          max_new_tokens: 4
        evaluation:
          batch_size: 2
        """))
    (root / "data").mkdir()
    for split, pairs in (("train", train), ("eval", [("A ripe tomato?", "red"), ("A leaf?", "green")])):
        rows = [{"fields": {"Shades": "red,green,blue"}, "question": q, "answer": a} for q, a in pairs]
        (root / "data" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_a_kind_from_an_entry_point_is_used_by_lint_validate_and_compare(plugin: dict[str, str],
                                                                         tmp_path: Path) -> None:
    assert "colour" not in kind_names()  # not installed in this process: expertkit itself is untouched
    root = _colour_expert(tmp_path / "colours", [("The colour of grass?", "green"), ("Of the sky?", "blue"),
                                                 ("Of blood?", "crimson")])
    lint = _expertkit(plugin, "lint", str(root), "--data", str(root / "data" / "train.jsonl"), "--json")
    assert lint.returncode == 1, lint.stderr
    (report,) = json.loads(lint.stdout)["reports"]
    findings = report["findings"]
    assert [(f["code"], f["line"]) for f in findings] == [("invalid_answer", 3)]
    assert "'crimson' is not a colour of the palette" in findings[0]["message"]

    valid = _expertkit(plugin, "validate", str(root), "--field", "Shades=red,green", "--output", "Sure: green",
                       "--json")
    assert valid.returncode == 0, valid.stderr
    judged = json.loads(valid.stdout)
    assert judged["answer"] == "green" and judged["valid"] and judged["verdict"] == "answer_with_text"
    invalid = _expertkit(plugin, "validate", str(root), "--field", "Shades=red", "--output", "blue")
    assert invalid.returncode == 1 and "not a colour of the palette" in invalid.stdout

    # the kind's own error kind, through validate and score (in the kind's taxonomy order, counted in the summary)
    broken = _expertkit(plugin, "validate", str(root), "--field", "Shades=red", "--output", "xkcd", "--gold", "red",
                        "--json")
    assert broken.returncode == 1 and broken.stderr == ""
    assert json.loads(broken.stdout)["verdict"] == "invalid"
    cases, outputs = tmp_path / "cases.jsonl", tmp_path / "outputs.txt"
    cases.write_text("".join(json.dumps({"fields": {"Shades": "red,green"}, "question": q, "answer": "red"}) + "\n"
                             for q in ("A tomato?", "A cherry?")))
    outputs.write_text("<think>hm</think>xkcd\nred\n")
    scored = _expertkit(plugin, "score", str(root), "--cases", str(cases), "--outputs", str(outputs), "--json")
    assert scored.returncode in (0, 1), scored.stderr
    judged = json.loads(scored.stdout)
    assert [c["error_kinds"] for c in judged["cases"]] == [["wrong_value", "broken_colour", "reasoning"], []]
    assert judged["summary"]["errors"]["broken_colour"] == 1

    # compare: a tiny base and one LoRA checkpoint of it, scored by the plug-in
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from expertkit.core.checkpoints import RECORD_NAME
    from expertkit.models.base import build_tiny_base

    # the kind is not importable here: the contract alone renders the corpus and the checkpoint's record
    spec = yaml.safe_load((root / "expert.yaml").read_text())["contract"]
    contract = PromptContract(ContractSpec.model_validate(spec))
    rows = [json.loads(line) for line in (root / "data" / "train.jsonl").read_text().splitlines()]
    corpus = [contract.render_conversation(r["fields"], r["question"], r["answer"]) for r in rows] * 8
    base = build_tiny_base(tmp_path / "base", corpus=corpus, vocab_size=300)
    torch.manual_seed(0)
    lora = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                          LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"], init_lora_weights=False))
    checkpoint = tmp_path / "run" / "checkpoint-1"
    lora.save_pretrained(checkpoint)
    (checkpoint / RECORD_NAME).write_text(json.dumps({
        "step": 1, "expert": "colours", "fingerprint": contract.fingerprint, "contract": contract.canonical(),
        "method": "lora", "base": str(base)}))
    compared = _expertkit(plugin, "compare", str(root), "--run", str(tmp_path / "run"), "--base", str(base),
                          "--out", str(tmp_path / "cmp"), "--json")
    assert compared.returncode == 0, compared.stderr
    report = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert report["output_kind"] == "colour"
    assert [m["name"] for m in report["models"]] == ["base", "checkpoint-1"]
    for case in report["cases"]:
        for out in case["outputs"].values():  # judged by the plug-in: its answer finder, validator and matcher
            assert out["valid"] == (out["answer"] in ("red", "green", "blue"))
            words = out["answer"].split()
            assert out["component"]["recall"] == (1.0 if words == [case["gold"]] else 0.0)
            assert ("missing_clause" in out["error_kinds"]) == (case["gold"] not in words)


def test_new_scaffolds_a_user_kind_whose_example_passes_lint(plugin: dict[str, str], tmp_path: Path) -> None:
    created = _expertkit(plugin, "new", "palettes", "--output-kind", "colour", "--field", "Hint", "--root",
                         str(tmp_path))
    assert created.returncode == 0, created.stderr
    root = tmp_path / "experts" / "palettes"
    manifest = yaml.safe_load((root / "expert.yaml").read_text())
    assert [f["name"] for f in manifest["contract"]["fields"]] == ["Palette", "Hint"]  # the role's field first
    assert manifest["contract"]["fields"][0]["role"] == "palette" and manifest["contract"]["fields"][0]["required"]
    lint = _expertkit(plugin, "lint", str(root), "--data", str(root / "data" / "eval.jsonl"), "--json")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    (report,) = json.loads(lint.stdout)["reports"]
    assert report["not_validated"] == 0 and not [f for f in report["findings"] if f["severity"] != "info"]


def test_an_error_kind_no_installed_kind_declares_is_shown_by_its_name() -> None:
    """A report of a kind not installed here (or an error kind its taxonomy lacks) still prints: the generic
    error kinds in their order, the unknown one last under its own name."""
    from rich.console import Console

    from expertkit.evaluation.report import errors_table

    report = {"output_kind": "colour", "models": [{"name": "m", "errors": {"broken_colour": 2, "reasoning": 0,
                                                                           "invalid": 1}}]}
    console = Console(width=200, record=True)
    console.print(errors_table(report))
    header = next(line for line in console.export_text().splitlines() if "model" in line)
    assert header.split() == ["model", "inv.", "broken_colour"]
