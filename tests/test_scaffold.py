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


@pytest.mark.parametrize("kind", ["json", "elastic_dsl", "sql"])
def test_the_scaffold_loads_and_its_example_fits(tmp_path: Path, kind: str) -> None:
    path = new_expert("my-expert", dialect="postgres", task="text_to_sql", fields=["Schema:required", "Hint"],
                      output_kind=kind, root=tmp_path)
    assert path == tmp_path / "experts" / "my-expert"
    assert sorted(str(p.relative_to(path)) for p in path.rglob("*")) == [
        "README.md", "data", "data/eval.jsonl", "data/train.jsonl", "expert.yaml"]
    expert = Expert.load(path)
    assert expert.manifest.output.kind == kind and expert.contract.wrapper.name == "qwen3"
    assert [(f.name, f.required, f.values) for f in expert.contract.fields] == [
        ("Dialect", True, ["postgres"]), ("Task", True, ["text_to_sql"]), ("Schema", True, None), ("Hint", False, None)]
    assert expert.train_path.read_text() == ""
    examples, problems = read_examples(expert.eval_path)
    assert problems == [] and len(examples) == 1
    example = examples[0]
    assert example.answer is not None
    assert expert.validate(example.answer, example.field_dict).valid
    readme = (path / "README.md").read_text()
    assert expert.contract.render_prompt(example.field_dict, example.question) in readme
    assert expert.fingerprint in readme
    assert list((tmp_path / "experts").iterdir()) == [path]  # no temporary folder left


def test_expertkit_render_works_on_the_scaffold(tmp_path: Path) -> None:
    runner = CliRunner()
    created = runner.invoke(app, ["new", "logs", "--dialect", "elastic", "--task", "query_dsl", "--field", "Index",
                                  "--output-kind", "elastic_dsl", "--root", str(tmp_path)])
    assert created.exit_code == 0, created.output
    folder = tmp_path / "experts" / "logs"
    rendered = runner.invoke(app, ["render", str(folder), "--field", "Dialect=elastic", "--field", "Task=query_dsl",
                                   "--question", "errors today", "--json"])
    assert rendered.exit_code == 0, rendered.output
    prompt = json.loads(rendered.stdout)["prompt"]
    assert prompt == ("<|im_start|>system\nDialect: elastic\nTask: query_dsl<|im_end|>\n<|im_start|>user\n"
                      "errors today<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    path = new_expert("one", dialect="json", task="extract", root=tmp_path)
    (path / "expert.yaml").write_text("# mine\n")
    with pytest.raises(ExpertkitError, match="already exists"):
        new_expert("one", dialect="json", task="extract", root=tmp_path)
    assert (path / "expert.yaml").read_text() == "# mine\n"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "Bad Name"}, "expert name"),
    ({"name": "../escape"}, "expert name"),
    ({"fields": ["Index:optional"]}, "NAME:required"),
    ({"fields": ["9lives"]}, "field name"),
    ({"fields": ["Task"]}, "always in the contract"),
    ({"fields": ["Index", "Index"]}, "twice"),
    ({"output_kind": "yaml"}, "output kind"),
    ({"dialect": "a<|im_start|>b"}, "control token"),
])
def test_bad_arguments_are_refused(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"name": "ok", "dialect": "json", "task": "extract", "root": tmp_path, **kwargs}
    with pytest.raises(ExpertkitError, match=message):
        new_expert(**args)  # type: ignore[arg-type]
    assert not (tmp_path / "experts").exists() or list((tmp_path / "experts").iterdir()) == []
