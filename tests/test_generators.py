"""The seeded dataset generators: determinism, sizes, coverage, and a held-out eval split."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from expertkit.authoring.generators import Record, generate_dataset, generate_records, question_key
from expertkit.core.errors import ExpertkitError
from expertkit.expert import Expert
from expertkit_experts.elastic import generator as gen_elastic
from expertkit_experts.sql import generator as gen_sql

REPO = Path(__file__).resolve().parents[1]
ELASTIC = REPO / "experts" / "elastic"
SQL = REPO / "experts" / "sql"
GENERATORS = {"elastic": gen_elastic, "sql": gen_sql}


@pytest.fixture(scope="module")
def records() -> dict[str, dict[str, list[Record]]]:
    """Full-size records of both experts (well under a second each)."""
    return {"elastic": generate_records(Expert.load(ELASTIC)), "sql": generate_records(Expert.load(SQL))}


# ---------------------------------------------------------------------- generate_dataset
@pytest.mark.parametrize("expert_dir", [ELASTIC, SQL], ids=["elastic", "sql"])
def test_same_seed_same_bytes_other_seed_differs(expert_dir: Path, tmp_path: Path) -> None:
    expert = Expert.load(expert_dir)
    a = generate_dataset(expert, train_size=400, eval_size=60, out_dir=tmp_path / "a")
    b = generate_dataset(expert, train_size=400, eval_size=60, out_dir=tmp_path / "b")
    c = generate_dataset(expert, train_size=400, eval_size=60, seed=7, out_dir=tmp_path / "c")
    for split in ("train", "eval"):
        assert a[split][1] == (400 if split == "train" else 60)
        assert a[split][0] == tmp_path / "a" / f"{split}.jsonl"
        assert a[split][0].read_bytes() == b[split][0].read_bytes()
        assert a[split][0].read_bytes() != c[split][0].read_bytes()
        lines = a[split][0].read_text(encoding="utf-8").splitlines()
        assert len(lines) == a[split][1]
        for line in lines:
            rec = json.loads(line)
            assert list(rec) == ["fields", "question", "answer"]
            assert list(rec["fields"]) == expert.contract.field_names


def test_eval_does_not_depend_on_train_size(tmp_path: Path) -> None:
    expert = Expert.load(ELASTIC)
    small = generate_dataset(expert, train_size=50, eval_size=40, out_dir=tmp_path / "s")
    large = generate_dataset(expert, train_size=500, eval_size=40, out_dir=tmp_path / "l")
    assert small["eval"][0].read_bytes() == large["eval"][0].read_bytes()


def test_no_generator_and_unknown_generator_are_errors(tmp_path: Path) -> None:
    folder = tmp_path / "x"
    shutil.copytree(ELASTIC, folder, ignore=shutil.ignore_patterns("data"))
    text = (folder / "expert.yaml").read_text(encoding="utf-8")
    (folder / "expert.yaml").write_text(text.replace("generator: elastic", "generator: nope"), encoding="utf-8")
    with pytest.raises(ExpertkitError, match="unknown generator 'nope'"):
        generate_dataset(Expert.load(folder), out_dir=tmp_path / "out")
    (folder / "expert.yaml").write_text(text.replace("  generator: elastic\n", ""), encoding="utf-8")
    with pytest.raises(ExpertkitError, match="names no generator"):
        generate_dataset(Expert.load(folder), out_dir=tmp_path / "out")


def test_manifest_paths_are_the_default_target(tmp_path: Path) -> None:
    folder = tmp_path / "sql"
    shutil.copytree(SQL, folder, ignore=shutil.ignore_patterns("data", "schemas"))
    (folder / "schemas").mkdir()
    (folder / "schemas" / "shop.sql").write_text("stale", encoding="utf-8")
    result = generate_dataset(Expert.load(folder), train_size=30, eval_size=10)
    assert result["train"] == (folder / "data" / "train.jsonl", 30)
    assert result["eval"] == (folder / "data" / "eval.jsonl", 10)
    # the sql generator also writes the schema files its questions are about
    files = gen_sql.schema_files()
    assert sorted(p.name for p in (folder / "schemas").iterdir()) == sorted(files)
    assert (folder / "schemas" / "shop.sql").read_text(encoding="utf-8") == files["shop.sql"]


# ---------------------------------------------------------------------- sizes and the held-out split
@pytest.mark.parametrize("name", ["elastic", "sql"])
def test_sizes_and_distinct_questions(records: dict[str, dict[str, list[Record]]], name: str) -> None:
    train, evals = records[name]["train"], records[name]["eval"]
    assert len(train) >= 5000 and len(evals) >= 300
    assert len({question_key(r.question) for r in train}) == len(train)
    assert len({question_key(r.question) for r in evals}) == len(evals)


@pytest.mark.parametrize("name", ["elastic", "sql"])
def test_eval_is_held_out(records: dict[str, dict[str, list[Record]]], name: str) -> None:
    mod: Any = GENERATORS[name]
    train, evals = records[name]["train"], records[name]["eval"]
    # no eval question in train
    assert not {question_key(r.question) for r in evals} & {question_key(r.question) for r in train}
    # templates: every intent has >= 6 train phrasings and its own held-out ones, used by eval only
    for intent in mod.INTENTS:
        assert len(intent.templates.train) >= 6, intent.name
        assert intent.templates.held_out and not set(intent.templates.held_out) & set(intent.templates.train)
    held_templates = {t for i in mod.INTENTS for t in i.templates.held_out}
    assert {r.template for r in evals} <= held_templates
    assert not {r.template for r in train} & held_templates
    # held-out values and words: drawn by eval, never present in any train question or answer
    held = mod.held_out_values() | mod.held_out_words()
    assert held
    used = {v for r in evals for v in r.values} & mod.held_out_values()
    assert len(used) >= len(mod.held_out_values()) // 2
    patterns = {v: re.compile(r"(?<![\w@/.-])" + re.escape(v) + r"(?![\w-])") for v in held}
    train_text = "\n".join(r.question + "\n" + r.answer for r in train)
    leaks = [v for v, pat in patterns.items() if pat.search(train_text)]
    assert not leaks
    assert not {v for r in train for v in r.values} & mod.held_out_values()


def test_every_intent_and_target_is_drawn(records: dict[str, dict[str, list[Record]]]) -> None:
    for name, mod in GENERATORS.items():
        intents = {i.name for i in mod.INTENTS}
        assert {r.intent for r in records[name]["train"]} == intents
        assert {r.intent for r in records[name]["eval"]} >= intents - {"ip_term", "flag", "is_null", "not_null"}
    assert {r.fields["Index"] for r in records["elastic"]["eval"]} == set(gen_elastic.INDICES)
    assert {r.fields["Schema"] for r in records["sql"]["eval"]} == set(gen_sql.DDL.values())


# ---------------------------------------------------------------------- Elasticsearch coverage
def _walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key), value
            yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, path)


def _features(body: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for path, value in _walk(body):
        key = path[-1]
        if "query" in path[:1] and key in {"match", "match_phrase", "multi_match", "term", "terms", "range",
                                            "exists", "prefix", "wildcard"}:
            out.add(key)
            if key == "range":
                bounds = next(iter(value.values()))
                kind = "date" if any(isinstance(v, str) for v in bounds.values()) else "numeric"
                out.add(f"range_{kind}")
        if len(path) >= 2 and path[-2] == "bool":
            out.add(f"bool.{key}")
        if key in {"sort", "size"} and len(path) == 1:
            out.add(key)
        if len(path) >= 3 and "aggs" in path and path[-3] == "aggs":
            out.add(f"agg.{key}")
    return out


def test_elastic_covers_the_query_dsl(records: dict[str, dict[str, list[Record]]]) -> None:
    required = {"match", "match_phrase", "multi_match", "term", "terms", "range_numeric", "range_date", "exists",
                "prefix", "wildcard", "bool.must", "bool.filter", "bool.should", "bool.must_not", "sort", "size",
                "agg.terms", "agg.avg", "agg.sum", "agg.min", "agg.max", "agg.cardinality", "agg.date_histogram"}
    per_index: dict[str, set[str]] = {}
    for r in records["elastic"]["train"]:
        per_index.setdefault(r.fields["Index"], set()).update(_features(json.loads(r.answer)))
    assert required <= set().union(*per_index.values())
    for index, feats in per_index.items():  # every index gets the core of it
        assert {"term", "terms", "range_numeric", "range_date", "bool.filter", "sort", "agg.terms",
                "agg.date_histogram"} <= feats, index
    eval_feats = set().union(*(_features(json.loads(r.answer)) for r in records["elastic"]["eval"]))
    assert required <= eval_feats


def test_elastic_answers_are_compact_and_short(records: dict[str, dict[str, list[Record]]]) -> None:
    answers = [r.answer for split in records["elastic"].values() for r in split]
    for a in answers:
        assert a == json.dumps(json.loads(a), separators=(",", ":"), ensure_ascii=False)
    assert sum(len(a) < 250 for a in answers) / len(answers) > 0.95


def test_elastic_fields_fit_the_mapping_types(records: dict[str, dict[str, list[Record]]]) -> None:
    """term/prefix/wildcard on keyword-like fields, match on text, range on numeric/date, histograms on dates."""
    from expertkit.kinds.elastic.validator import ElasticDslValidator

    validator = Expert.load(ELASTIC).validator
    assert isinstance(validator, ElasticDslValidator)
    for r in records["elastic"]["train"][:1500] + records["elastic"]["eval"]:
        result = validator.validate(r.answer, r.fields)
        assert result.valid and not result.warnings, (r.answer, result.errors, result.warnings)


def test_elastic_values_come_from_the_question(records: dict[str, dict[str, list[Record]]]) -> None:
    for r in records["elastic"]["train"]:
        for path, value in _walk(json.loads(r.answer)):
            if path[-1] in {"term", "match", "match_phrase", "prefix"}:
                text = str(next(iter(value.values())))
                if not isinstance(next(iter(value.values())), bool):
                    assert text in r.question, (r.question, r.answer)


# ---------------------------------------------------------------------- SQL coverage
def _sql_features(sql: str) -> set[str]:
    tree = sqlglot.parse_one(sql, read="postgres")
    out: set[str] = set()
    joins = list(tree.find_all(exp.Join))
    if joins:
        out.add(f"join{min(len(joins) + 1, 3)}")
        if len(joins) >= 2:
            out.add("join2")
    checks = {
        "where": exp.Where, "group_by": exp.Group, "having": exp.Having, "order_by": exp.Order, "limit": exp.Limit,
        "cte": exp.CTE, "window": exp.Window, "in": exp.In, "exists": exp.Exists, "like": exp.Like,
        "between": exp.Between, "distinct": exp.Distinct, "is_null": exp.Is, "extract": exp.Extract,
        "date_trunc": exp.TimestampTrunc,
    }
    out.update(name for name, node in checks.items() if tree.find(node) is not None)
    if any(isinstance(s.parent, exp.Where | exp.GT | exp.LT | exp.In | exp.From) for s in tree.find_all(exp.Subquery)):
        out.add("subquery")
    if any(s.find(exp.Select) is not None for s in tree.find_all(exp.In)):
        out.add("subquery")
    if re.search(r"DATE '\d{4}-\d\d-\d\d'", sql):
        out.add("date_literal")
    return out


def test_sql_covers_the_required_features(records: dict[str, dict[str, list[Record]]]) -> None:
    feats: set[str] = set()
    for answer in {r.answer for r in records["sql"]["train"]}:
        feats |= _sql_features(answer)
    assert {"where", "join2", "join3", "group_by", "having", "order_by", "limit", "subquery", "cte", "window",
            "date_literal", "extract", "exists", "in", "like", "between", "distinct", "is_null"} <= feats
    eval_feats = set().union(*(_sql_features(a) for a in {r.answer for r in records["sql"]["eval"]}))
    assert {"join2", "join3", "group_by", "having", "subquery", "cte", "window", "date_literal"} <= eval_feats


def test_sql_schema_field_is_the_ddl_file(records: dict[str, dict[str, list[Record]]]) -> None:
    files = gen_sql.schema_files()
    ddls = {files[f"{n}.sql"].strip() for n in gen_sql.SCHEMA_NAMES}
    assert {r.fields["Schema"] for r in records["sql"]["train"]} == ddls
    for r in records["sql"]["train"][:200]:
        assert r.fields["Dialect"] == "postgres" and r.fields["Task"] == "text_to_sql"
        assert sqlglot.parse_one(r.answer, read="postgres") is not None


def test_sql_fixture_rows_cover_every_vocabulary_value() -> None:
    """Held-out values live in the data too, so eval questions about them have answers."""
    in_data = {
        v for name in gen_sql.SCHEMA_NAMES for _, rows in gen_sql.schema_data(name).tables.values()
        for row in rows for v in row.values()
    }
    for key, vocab in gen_sql.V.items():
        missing = [v for v in (*vocab.train, *vocab.held_out) if v not in in_data]
        assert not missing, (key, missing)


TOY_GENERATOR = '''
from expertkit.authoring.generators import Record, Templates, build_splits, fill

NUMBERS = Templates(train=("what is {n} plus one", "add one to {n}"), held_out=("{n} and one more makes",))


def build(expert, train_size, eval_size, seed):
    def make(pick):
        n = pick.rng.randrange(10_000)
        return Record({"Task": "count"}, fill(pick.template(NUMBERS), {"n": n}), str(n + 1), "add", "t")
    return build_splits(make, expert.name, train_size, eval_size, seed)
'''


def test_a_users_generator_is_found_through_its_entry_point(tmp_path: Path) -> None:
    """A generator in a package of the user's own, registered in the ``expertkit.generators`` group as the
    shipped ones are: ``data generate`` runs it, and the unknown-name error lists it."""
    site = tmp_path / "site"
    (site / "toygen-0.1.dist-info").mkdir(parents=True)
    (site / "toygen.py").write_text(TOY_GENERATOR, encoding="utf-8")
    (site / "toygen-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: toygen\nVersion: 0.1\n")
    (site / "toygen-0.1.dist-info" / "entry_points.txt").write_text("[expertkit.generators]\ntoy = toygen\n")
    expert = tmp_path / "counter"
    expert.mkdir()
    (expert / "expert.yaml").write_text("name: counter\noutput:\n  kind: json\ncontract:\n  fields:\n"
                                        "    - name: Task\n      values: [count]\ndata:\n  generator: toy\n"
                                        "  train_size: 30\n  eval_size: 5\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "expertkit.cli", *args], capture_output=True, text=True, env=env,
                              timeout=120)

    done = cli("data", "generate", str(expert))
    assert done.returncode == 0, done.stderr
    train = [json.loads(line) for line in (expert / "data" / "train.jsonl").read_text().splitlines()]
    assert len(train) == 30
    assert all(int(r["answer"]) == int(re.findall(r"\d+", r["question"])[0]) + 1 for r in train)
    (expert / "expert.yaml").write_text((expert / "expert.yaml").read_text().replace("generator: toy",
                                                                                     "generator: nope"))
    failed = cli("data", "generate", str(expert), "--out-dir", str(tmp_path / "out"))
    assert failed.returncode == 2 and "unknown generator 'nope' (known: elastic, sql, toy)" in failed.stderr
