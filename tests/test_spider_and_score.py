"""``expertkit data import spider`` and ``expertkit score``: Spider-layout cases judged on their SQLite
databases, outputs from anywhere scored with compare's scoring function."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from expertkit.cli import app
from expertkit.core.errors import ExpertkitError
from expertkit.evaluation.judge import read_outputs, score_file
from expertkit.expert import Expert
from expertkit.kinds.sql.spider import import_spider

REPO = Path(__file__).resolve().parents[1]
SPIDER_EXPERT = REPO / "bench" / "spider_expert"


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """A Spider-layout folder: two databases, one of which has no file."""
    db_dir = tmp_path / "database" / "shop"
    db_dir.mkdir(parents=True)
    con = sqlite3.connect(db_dir / "shop.sqlite")
    con.executescript("""
        CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, price REAL, maker_id INTEGER REFERENCES maker(id));
        CREATE TABLE maker (id INTEGER PRIMARY KEY, country TEXT);
        INSERT INTO maker VALUES (1, 'FR'), (2, 'DE');
        INSERT INTO item VALUES (1, 'pen', 1.5, 1), (2, 'ink', 3.0, 2), (3, 'pad', 2.25, 1), (4, 'cap', 2.25, 2);
    """)
    con.commit()
    con.close()
    questions = [
        {"db_id": "shop", "question": "Names of items over 2?", "query": "SELECT name FROM item WHERE price > 2"},
        {"db_id": "gone", "question": "How many rows?", "query": "SELECT count(*) FROM t"},
        {"db_id": "shop", "question": "Most expensive item?",
         "query": "SELECT name FROM item ORDER BY price DESC LIMIT 1"},
        {"db_id": "shop", "question": "Makers from France?", "query": 'SELECT id FROM maker WHERE country = "FR"'},
    ]
    tables = [{"db_id": "gone", "table_names_original": ["t"], "column_names_original": [[-1, "*"], [0, "a"]],
               "column_types": ["text", "number"], "primary_keys": [1], "foreign_keys": []}]
    (tmp_path / "dev.json").write_text(json.dumps(questions))
    (tmp_path / "tables.json").write_text(json.dumps(tables))
    return tmp_path


def test_import_keeps_order_and_ties_records_to_their_database(layout: Path) -> None:
    out = layout / "cases" / "dev.jsonl"
    result = CliRunner().invoke(app, ["data", "import", "spider", "--questions", str(layout / "dev.json"),
                                      "--tables", str(layout / "tables.json"), "--databases",
                                      str(layout / "database"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "4 records (1 databases)" in result.output and "gone (1)" in result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["db_id"] for r in records] == ["shop", "gone", "shop", "shop"]
    assert records[0]["fields"]["Dialect"] == "sqlite" and records[0]["fields"]["Task"] == "text_to_sql"
    assert records[0]["fields"]["Schema"].startswith("CREATE TABLE item (id INTEGER PRIMARY KEY")
    assert records[0]["database"] == "../database/shop/shop.sqlite"
    assert "database" not in records[1]
    assert records[1]["fields"]["Schema"] == 'CREATE TABLE "t" (\n  "a" NUMERIC PRIMARY KEY\n);'


def test_score_judges_outputs_from_anywhere(layout: Path) -> None:
    cases = layout / "dev.jsonl"
    import_spider(layout / "dev.json", layout / "tables.json", layout / "database", cases)
    outputs = layout / "outputs.txt"
    outputs.write_text("\n".join([
        "SELECT name FROM item WHERE price >= 2.25",  # the same rows on the fixture
        "SELECT count(*) FROM t",  # no database file: execution unknown
        "SELECT name FROM item ORDER BY price LIMIT 1",  # wrong
        "SELECT nope FROM maker",  # invalid, SQLite's own message
    ]) + "\n")
    expert = Expert.load(SPIDER_EXPERT)
    report = score_file(expert, cases, outputs, variants=0).to_dict()
    cases_out = report["cases"]
    assert [c["line"] for c in cases_out] == [1, 2, 3, 4]
    assert [c["execution_match"] for c in cases_out] == [True, None, False, False]
    assert [c["valid"] for c in cases_out] == [True, True, True, False]
    assert cases_out[3]["errors"] == ["no such column: nope"]
    assert cases_out[2]["decided_by"] == "fixture" and cases_out[0]["decided_by"] is None
    summary = report["summary"]
    assert summary["cases"] == 4 and summary["valid_count"] == 3
    assert summary["execution_match_count"] == 1 and summary["execution_known"] == 3
    # with variants: price >= 2.25 and price > 2 differ once a drawn price sits between them
    varied = score_file(expert, cases, outputs, variants=3).to_dict()["cases"][0]
    assert varied["databases"] >= 2
    # JSONL outputs, and the CLI's --json object
    jsonl = layout / "outputs.jsonl"
    jsonl.write_text("\n".join(json.dumps({"output": o}) for o in outputs.read_text().splitlines()) + "\n")
    assert read_outputs(jsonl) == outputs.read_text().splitlines()
    result = CliRunner().invoke(app, ["score", str(SPIDER_EXPERT), "--cases", str(cases), "--outputs", str(jsonl),
                                      "--variants", "0", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"summary", "cases"}
    keys = {"line", "verdict", "valid", "errors", "equivalent", "execution_match", "decided_by"}
    assert keys <= set(data["cases"][0])


def test_score_refuses_misaligned_outputs(layout: Path) -> None:
    cases = layout / "dev.jsonl"
    import_spider(layout / "dev.json", layout / "tables.json", layout / "database", cases)
    outputs = layout / "short.txt"
    outputs.write_text("SELECT 1\n")
    with pytest.raises(ExpertkitError, match="1 outputs for 4 cases"):
        score_file(Expert.load(SPIDER_EXPERT), cases, outputs)


def test_spider_dev_gold_is_valid_and_matches_itself(realdata: Path, tmp_path: Path) -> None:
    spider = realdata / "spider"
    cases = tmp_path / "dev.jsonl"
    import_spider(spider / "dev.json", spider / "tables.json", spider / "database", cases)
    records = [json.loads(line) for line in cases.read_text().splitlines()]
    assert len(records) == 1034 and sum("database" not in r for r in records) == 62  # wta_1 has no file
    sample = tmp_path / "sample.jsonl"
    first = {r["db_id"]: i for i, r in reversed(list(enumerate(records)))}  # one question of every database
    chosen = sorted(set(range(0, len(records), 25)) | set(first.values()))
    picked = [dict(records[i], database=str((tmp_path / records[i]["database"]).resolve()))
              for i in chosen if "database" in records[i]]
    assert len({r["db_id"] for r in picked}) == 19
    sample.write_text("".join(json.dumps(r) + "\n" for r in picked))
    gold = tmp_path / "gold.txt"
    gold.write_text("".join(r["answer"].replace("\n", " ") + "\n" for r in picked))
    report = score_file(Expert.load(SPIDER_EXPERT), sample, gold, variants=2).to_dict()
    assert report["summary"]["valid_count"] == len(picked)
    assert all(c["execution_match"] is True for c in report["cases"])
    # every variant of every database builds (a variant that does not is left out silently): fixture + 2
    assert {c["database"]: c["databases"] for c in report["cases"] if c["databases"] != 3} == {}


def test_score_works_for_every_output_kind(tmp_path: Path) -> None:
    expert = Expert.load(REPO / "experts" / "elastic")
    lines = expert.eval_path.read_text().splitlines()[:3]
    cases = tmp_path / "cases.jsonl"
    cases.write_text("\n".join(lines) + "\n")
    golds = [json.loads(line)["answer"] for line in lines]
    outputs = tmp_path / "outputs.jsonl"
    outputs.write_text("".join(json.dumps({"output": o}) + "\n" for o in [golds[0], "<think>hm</think>" + golds[1],
                                                                         "not json"]))
    report = score_file(expert, cases, outputs).to_dict()
    assert [c["verdict"] for c in report["cases"]] == ["direct_valid", "reasoning_and_valid", "invalid"]
    assert [c["equivalent"] for c in report["cases"]] == [True, True, False]
    assert all(c["execution_match"] is None for c in report["cases"])
    assert report["summary"]["valid_count"] == 2


def test_import_never_overwrites_its_own_input(layout: Path) -> None:
    """``--out`` naming an input file is refused even with ``--force``."""
    import subprocess
    import sys

    before = (layout / "dev.json").read_bytes()
    for target in (layout / "dev.json", layout / "tables.json"):
        proc = subprocess.run([sys.executable, "-m", "expertkit.cli", "data", "import", "spider", "--questions",
                               str(layout / "dev.json"), "--tables", str(layout / "tables.json"), "--databases",
                               str(layout / "database"), "--out", str(target), "--force"],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert "which this command reads" in proc.stderr and "Traceback" not in proc.stderr
    assert (layout / "dev.json").read_bytes() == before
