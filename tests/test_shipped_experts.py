"""The shipped experts: committed data is what the generators make, every gold answer is valid, lint is clean."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from expertkit.authoring.generators import generate_dataset
from expertkit.core.data import read_examples
from expertkit.expert import Expert
from expertkit_experts.sql import generator as gen_sql

REPO = Path(__file__).resolve().parents[1]
EXPERTS = {"elastic": REPO / "experts" / "elastic", "sql": REPO / "experts" / "sql"}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", sorted(EXPERTS))
def test_committed_data_equals_a_fresh_generation(name: str, tmp_path: Path) -> None:
    expert = Expert.load(EXPERTS[name])
    result = generate_dataset(expert, out_dir=tmp_path)
    assert _sha(result["train"][0]) == _sha(expert.train_path)
    assert _sha(result["eval"][0]) == _sha(expert.eval_path)
    assert result["train"][1] == expert.manifest.data.train_size
    assert result["eval"][1] == expert.manifest.data.eval_size


def test_committed_schema_files_equal_the_generator() -> None:
    folder = EXPERTS["sql"] / "schemas"
    files = gen_sql.schema_files()
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)
    for name, text in files.items():
        assert (folder / name).read_text(encoding="utf-8") == text, name


def test_elastic_mappings_are_the_shared_ones() -> None:
    folder = EXPERTS["elastic"] / "mappings"
    names = sorted(p.stem for p in folder.glob("*.json"))
    spec = next(f for f in Expert.load(EXPERTS["elastic"]).contract.fields if f.name == "Index")
    assert names == sorted(spec.values or [])


@pytest.mark.parametrize("name", sorted(EXPERTS))
def test_every_gold_answer_is_valid(name: str) -> None:
    expert = Expert.load(EXPERTS[name])
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for path in (expert.train_path, expert.eval_path):
        examples, problems = read_examples(path)
        assert not problems
        for ex in examples:
            key = (ex.answer or "", tuple(ex.fields))
            if key in seen:
                continue
            seen.add(key)
            result = expert.validate(ex.answer or "", dict(ex.fields))
            assert result.valid, (path.name, ex.line, ex.answer, result.errors)
            assert not result.warnings, (path.name, ex.line, ex.answer, result.warnings)


def test_sql_gold_answers_return_rows_on_postgres() -> None:
    """Every distinct gold answer (train and eval) runs on the fixture in PostgreSQL and returns rows."""
    from expertkit.engines.sql import get_engine

    engine = get_engine("postgres")
    assert engine is not None
    files = gen_sql.schema_files()
    fixtures = {files[f"{n}.sql"].strip(): engine.fixture(files[f"{n}.sql"], files[f"{n}.data.sql"])
                for n in gen_sql.SCHEMA_NAMES}
    expert = Expert.load(EXPERTS["sql"])
    answers: set[tuple[str, str]] = set()
    for path in (expert.train_path, expert.eval_path):
        examples, _ = read_examples(path)
        answers |= {(ex.field_dict["Schema"].strip(), ex.answer or "") for ex in examples}
    empty = []
    for schema, answer in sorted(answers):
        result = engine.run(fixtures[schema], answer)
        assert result.ok, (answer, result.error)
        if not result.rows:
            empty.append(answer)
    assert not empty, empty[:5]


@pytest.mark.parametrize("name", sorted(EXPERTS))
def test_lint_is_clean(name: str) -> None:
    expert = Expert.load(EXPERTS[name])
    for path in (expert.train_path, expert.eval_path):
        report = expert.lint(path)
        assert report.records == (expert.manifest.data.train_size if path == expert.train_path
                                  else expert.manifest.data.eval_size)
        assert report.errors == 0 and report.warnings == 0, report.counts


def test_decoding_budget_covers_the_longest_answer() -> None:
    for path in EXPERTS.values():
        expert = Expert.load(path)
        longest = 0
        for split in (expert.train_path, expert.eval_path):
            examples, _ = read_examples(split)
            longest = max(longest, *(len((ex.answer or "").encode()) for ex in examples))
        assert longest / 3 < expert.manifest.decoding.max_new_tokens
