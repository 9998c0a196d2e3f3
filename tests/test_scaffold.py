"""``expertkit new``: the scaffolded folder loads, renders, documents its exact prompt, and is never overwritten."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from expertkit.authoring.scaffold import new_expert
from expertkit.cli import app
from expertkit.core.data import read_examples
from expertkit.core.errors import ExpertkitError
from expertkit.expert import Expert

#: Per kind: the fields a role adds to the routing ones (name, required).
ROLE_FIELDS = {"json": [], "elastic_dsl": [("Index", True)], "sql": [("Schema", False)]}


@pytest.mark.parametrize("kind", ["json", "elastic_dsl", "sql"])
def test_the_scaffold_loads_and_its_example_fits(tmp_path: Path, kind: str) -> None:
    path = new_expert("my-expert", values={"Dialect": "sqlite"}, fields=["Task=text_to_sql", "Hint:required", "Note"],
                      output_kind=kind, root=tmp_path)
    assert path == tmp_path / "experts" / "my-expert"
    assert sorted(str(p.relative_to(path)) for p in path.rglob("*")) == [
        "README.md", "data", "data/eval.jsonl", "data/train.jsonl", "expert.yaml"]
    expert = Expert.load(path)
    assert expert.manifest.output.kind == kind and expert.contract.wrapper.name == "qwen3"
    assert [(f.name, f.required, f.values) for f in expert.contract.fields] == [
        ("Dialect", True, ["sqlite"]), ("Task", True, ["text_to_sql"]),
        *((name, required, None) for name, required in ROLE_FIELDS[kind]), ("Hint", True, None), ("Note", False, None)]
    assert expert.manifest.description == "Answers questions (Dialect: sqlite, Task: text_to_sql), directly, without " \
                                          "reasoning."
    assert expert.train_path.read_text() == ""
    examples, problems = read_examples(expert.eval_path)
    assert problems == [] and len(examples) == 1
    example = examples[0]
    assert example.answer is not None
    result = expert.validate(example.answer, example.field_dict)
    assert result.valid and not result.warnings  # the role fields' example values fit the example answer
    readme = (path / "README.md").read_text()
    assert expert.contract.render_prompt(example.field_dict, example.question) in readme
    assert expert.fingerprint in readme and "(ChatML, non-thinking" in readme  # the wrapper's own description
    assert list((tmp_path / "experts").iterdir()) == [path]  # no temporary folder left


def test_expertkit_render_works_on_the_scaffold(tmp_path: Path) -> None:
    runner = CliRunner()
    created = runner.invoke(app, ["new", "logs", "--dialect", "elastic", "--task", "query_dsl", "--field", "Hint",
                                  "--output-kind", "elastic_dsl", "--root", str(tmp_path)])
    assert created.exit_code == 0, created.output
    folder = tmp_path / "experts" / "logs"
    rendered = runner.invoke(app, ["render", str(folder), "--field", "Dialect=elastic", "--field", "Task=query_dsl",
                                   "--field", "Index=logs", "--question", "errors today", "--json"])
    assert rendered.exit_code == 0, rendered.output
    prompt = json.loads(rendered.stdout)["prompt"]
    assert prompt == ("<|im_start|>system\nDialect: elastic\nTask: query_dsl\nIndex: logs<|im_end|>\n<|im_start|>user\n"
                      "errors today<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")


JSON_EXTRACT = {"Dialect": "json", "Task": "extract"}


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    path = new_expert("one", values=JSON_EXTRACT, root=tmp_path)
    (path / "expert.yaml").write_text("# mine\n")
    with pytest.raises(ExpertkitError, match="already exists"):
        new_expert("one", values=JSON_EXTRACT, root=tmp_path)
    assert (path / "expert.yaml").read_text() == "# mine\n"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "Bad Name"}, "expert name"),
    ({"name": "../escape"}, "expert name"),
    ({"fields": ["Index:optional"]}, "NAME:required"),
    ({"fields": ["9lives"]}, "field name"),
    ({"fields": ["Task"]}, "always in the contract"),
    ({"fields": ["Index", "Index"]}, "twice"),
    ({"fields": ["Dialect=a"]}, "field 'Dialect' is given twice"),
    ({"values": {}, "fields": ["Dialect=a", "Dialect=b", "Task=t"]}, "field 'Dialect' is given twice"),
    ({"output_kind": "yaml"}, "output kind"),
    ({"values": {"Dialect": "a<|im_start|>b", "Task": "t"}}, "control token"),
    ({"values": {"Dialect": "json"}}, r"routing field 'Task': give its value with --field Task=VALUE"),
    ({"fields": ["Colour=red"]}, r"--field Colour=VALUE sets a field output kind 'json' starts the contract with "
                                 r"\(its fields: Dialect, Task\)"),
])
def test_bad_arguments_are_refused(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"name": "ok", "values": JSON_EXTRACT, "root": tmp_path, **kwargs}
    with pytest.raises(ExpertkitError, match=message):
        new_expert(**args)  # type: ignore[arg-type]
    assert not (tmp_path / "experts").exists() or list((tmp_path / "experts").iterdir()) == []
