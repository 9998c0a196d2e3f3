"""The sql validator: parsing, read-only allow-list, schema references, equivalence, execution match."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from expertkit.core.manifest import OutputSpec
from expertkit.engines.sql.sandbox import close_connections
from expertkit.kinds import bind_kind
from expertkit.kinds.sql.validator import SqlValidator, check_statement, has_top_level_order, parse_statement

SCHEMA = """CREATE TABLE departments (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL
);
CREATE TABLE employees (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  salary NUMERIC(10, 2),
  dept_id INTEGER REFERENCES departments(id),
  hired DATE
);"""
DATA = """INSERT INTO departments VALUES (1, 'Eng'), (2, 'Ops'), (3, 'Empty');
INSERT INTO employees VALUES
  (1, 'Ann', 100.50, 1, '2020-01-01'),
  (2, 'Bob', 90.00, 2, '2021-03-04'),
  (3, 'Cy', 120.00, 1, '2019-05-06'),
  (4, 'Di', 90.00, 2, '2022-07-08');"""
F = {"Dialect": "postgres", "Task": "text_to_sql", "Schema": SCHEMA}
#: A dialect no engine runs: sqlglot checks tables and columns itself (with suggestions).
STATIC = {**F, "Dialect": "mysql"}


@pytest.fixture(scope="module")
def v(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlValidator]:
    root = tmp_path_factory.mktemp("expert")
    (root / "schemas").mkdir()
    (root / "schemas" / "hr.sql").write_text(SCHEMA + "\n")
    (root / "schemas" / "hr.data.sql").write_text(DATA)
    (root / "schemas" / "nodata.sql").write_text("CREATE TABLE lonely (a INT);")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPERTKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
        validator = bind_kind(root, OutputSpec(kind="sql", dialect="postgres", resources={"schemas": "schemas"}))
        assert isinstance(validator, SqlValidator)
        yield validator
    close_connections()


def errors_of(v: SqlValidator, sql: str, fields: dict[str, str] = F) -> list[str]:
    result = v.validate(sql, fields)
    assert result.valid == (not result.errors)
    return result.errors


# ------------------------------------------------------------------------------- valid
VALID = [
    "SELECT name FROM employees",
    "select Name, SALARY from Employees where salary > 100",
    "SELECT * FROM employees ORDER BY hired DESC LIMIT 3",
    "SELECT e.name, d.name AS dept FROM employees e JOIN departments d ON e.dept_id = d.id",
    "SELECT d.name, avg(e.salary) AS avg_salary FROM employees AS e JOIN departments AS d ON e.dept_id = d.id "
    "GROUP BY d.name HAVING avg(e.salary) > 95 ORDER BY avg_salary DESC",
    "SELECT name AS n, count(*) AS c FROM employees GROUP BY name HAVING count(*) > 1 ORDER BY n",
    "SELECT dept_id, count(*) AS c FROM employees GROUP BY dept_id ORDER BY c DESC",
    "WITH t AS (SELECT name, salary * 2 AS s2 FROM employees) SELECT s2, name FROM t ORDER BY s2",
    "WITH t(a, b) AS (SELECT id, name FROM employees) SELECT a, b FROM t",
    "SELECT name, rank() OVER (PARTITION BY dept_id ORDER BY salary DESC) AS r FROM employees",
    "SELECT sub.s FROM (SELECT salary AS s FROM employees) sub WHERE sub.s > 1",
    "SELECT * FROM employees e WHERE EXISTS (SELECT 1 FROM departments d WHERE d.id = e.dept_id)",
    "SELECT name FROM employees WHERE dept_id IN (SELECT id FROM departments WHERE name = 'Eng')",
    "SELECT name FROM employees UNION SELECT name FROM departments",
    "SELECT name FROM public.employees",
    "SELECT count(*) FROM employees WHERE hired >= DATE '2020-01-01' AND name ILIKE 'a%'",
    "SELECT salary::int FROM employees",
    "SELECT extract(year FROM hired) AS y, count(*) FROM employees GROUP BY 1",
    "SELECT e.* FROM employees e",
    "select name from employees;",
]


@pytest.mark.parametrize("sql", VALID)
def test_valid(v: SqlValidator, sql: str) -> None:
    assert errors_of(v, sql) == []


# ------------------------------------------------------------------------------- schema references
def test_missing_column(v: SqlValidator) -> None:
    assert errors_of(v, "SELECT salry FROM employees", STATIC) == [
        "column 'salry' does not exist in table employees; did you mean 'salary'?"]
    assert errors_of(v, "SELECT e.salry FROM employees e", STATIC) == [
        "column 'salry' does not exist in table employees; did you mean 'salary'?"]
    assert errors_of(v, "SELECT name FROM employees ORDER BY bonus", STATIC) == [
        "column 'bonus' does not exist in table employees"]
    assert errors_of(v, 'SELECT `Name` FROM employees', STATIC) == [
        "column 'Name' does not exist in table employees; did you mean 'name'?"]


def test_missing_column_in_derived_tables_and_correlation(v: SqlValidator) -> None:
    assert errors_of(v, "WITH t AS (SELECT name FROM employees) SELECT nope FROM t", STATIC) == [
        "column 'nope' does not exist in CTE t"]
    assert errors_of(v, "SELECT sub.nope FROM (SELECT salary AS s FROM employees) sub", STATIC) == [
        "column 'nope' does not exist in subquery sub"]
    assert errors_of(v, "SELECT * FROM employees e WHERE EXISTS "
                        "(SELECT 1 FROM departments d WHERE d.id = e.dept_idx)", STATIC) == [
        "column 'dept_idx' does not exist in table employees; did you mean 'dept_id'?"]


def test_ambiguous_and_unknown_alias(v: SqlValidator) -> None:
    assert errors_of(v, "SELECT name FROM employees e JOIN departments d ON e.dept_id = d.id", STATIC) == [
        "column 'name' is ambiguous: it is in table employees, table departments; qualify it"]
    assert errors_of(v, "SELECT x.name FROM employees e", STATIC) == [
        "column 'x.name': no table or alias 'x' in the query"]


def test_missing_table(v: SqlValidator) -> None:
    assert errors_of(v, "SELECT * FROM employes", STATIC) == [
        "table 'employes' does not exist (tables: departments, employees); did you mean 'employees'?"]
    assert errors_of(v, "SELECT * FROM hr.employees", STATIC) == [
        "table 'hr.employees' is not in the schema (use 'employees')"]


def test_schema_problems_and_fallbacks(v: SqlValidator) -> None:
    # no Schema: only syntax and read-only checks
    assert errors_of(v, "SELECT anything FROM anywhere", {"Dialect": "postgres"}) == []
    # an unusable Schema is a warning
    result = v.validate("SELECT 1", {"Dialect": "postgres", "Schema": "CREATE TABLE ((("})
    assert result.valid and result.warnings[0].startswith("the schema does not load in PostgreSQL: syntax error")
    assert "Schema field does not parse" in result.warnings[1]
    # unknown Dialect value: the manifest's dialect is used
    assert errors_of(v, "SELECT salary::int FROM employees", {**F, "Dialect": "PostgreSQL"}) == []
    assert v.dialect({"Dialect": "no-such-sql"}) == "postgres"
    assert v.dialect({"Dialect": "sqlite"}) == "sqlite"


# ------------------------------------------------------------------------------- read-only
NOT_READ_ONLY = [
    ("DROP TABLE employees", "only read-only SELECT queries are allowed, not DROP"),
    ("DELETE FROM employees", "not DELETE"),
    ("INSERT INTO employees (id) VALUES (9)", "not INSERT"),
    ("UPDATE employees SET salary = 0", "not UPDATE"),
    ("CREATE TABLE x AS SELECT * FROM employees", "not CREATE"),
    ("ATTACH '/tmp/x.db'", "ATTACH"),
    ("COPY employees TO '/tmp/out.csv'", "not COPY"),
    ("INSTALL httpfs", "not INSTALL"),
    ("LOAD httpfs", "not LOAD"),
    ("PRAGMA database_list", "not PRAGMA"),
    ("SET enable_external_access = true", "not SET"),
    ("CALL pragma_version()", "not CALL"),
    ("TRUNCATE employees", "not TRUNCATE"),
    ("SELECT * INTO backup FROM employees", "SELECT ... INTO creates a table"),
    ("WITH d AS (DELETE FROM employees RETURNING *) SELECT * FROM d", "DELETE inside the query"),
    ("SELECT * FROM read_csv('/etc/passwd')", "read_csv() reads files"),
    ("SELECT * FROM read_parquet('x.parquet')", "read_parquet() reads files"),
    ("SELECT * FROM read_json_auto('x.json')", "read_json_auto() reads files"),
    ("SELECT * FROM query('DROP TABLE employees')", "query() reads files or runs SQL text"),
    ("SELECT pg_read_file('/etc/passwd')", "pg_read_file() reads files"),
    ("SELECT * FROM employees; DROP TABLE employees", "expected exactly one SQL statement, got 2"),
]


@pytest.mark.parametrize(("sql", "reason"), NOT_READ_ONLY, ids=[s for s, _ in NOT_READ_ONLY])
def test_not_read_only(v: SqlValidator, sql: str, reason: str) -> None:
    errors = errors_of(v, sql)
    assert errors and reason in errors[0], errors


def test_check_statement_in_duckdb_dialect() -> None:
    assert check_statement("SELECT 1") is None
    assert check_statement("SELECT * FROM glob('/etc/*')") == "glob() reads files or runs SQL text; it is not allowed"
    assert check_statement("SELECT * FROM '/etc/passwd'") == (
        "FROM '/etc/passwd' reads a file; only tables of the schema are allowed")
    assert check_statement("SUMMARIZE employees") is not None
    assert check_statement("ATTACH '/tmp/x.db'") == "only read-only SELECT queries are allowed, not ATTACH"


def test_junk_never_raises(v: SqlValidator) -> None:
    assert errors_of(v, "") == ["no SQL statement"]
    assert errors_of(v, " ; ") == ["no SQL statement"]
    assert errors_of(v, "SELECT") == ["SELECT names nothing to select"]
    assert errors_of(v, "SELECT name FROM employees WHERE (")[0].startswith("not valid SQL (postgres)")
    assert errors_of(v, "\x00\xff") == ["SQL holds a NUL character"]
    assert errors_of(v, "(" * 2_400 + "1" + ")" * 2_400) == ["SQL nested too deeply"]
    assert errors_of(v, "(" * 20_000 + "1" + ")" * 20_000) == ["SQL has about 40001 tokens, over the 5000-token limit"]
    assert errors_of(v, "SELECT 1 " + "+ 1 " * 300_000)[0].startswith("SQL is")
    errors_of(v, "SELECT '\ud800'")  # a lone surrogate: valid or not, it must not raise


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("SELECT FROMWHERE()*,.;'\"employees name salary 0123=<>-\n")),
               max_size=60))
def test_never_raises_on_random_text(v: SqlValidator, text: str) -> None:
    result = v.validate(text, F)
    assert isinstance(result.valid, bool)
    assert not any(e.startswith("could not check") for e in result.errors), result.errors
    assert isinstance(v.equivalent(text, text, F), bool)


# ------------------------------------------------------------------------------- equivalence
EQUIVALENT = [
    ("SELECT name FROM employees", "select  NAME\nfrom EMPLOYEES"),
    ("SELECT name AS n FROM employees", 'SELECT name AS "n" FROM employees'),
    ("SELECT e.name FROM employees e", "SELECT name FROM employees"),
    ("SELECT e.name FROM employees AS e WHERE e.salary > 100",
     "SELECT employees.name FROM employees WHERE salary > 100"),
    ("SELECT * FROM departments", "SELECT id, name FROM departments"),
    ("SELECT name FROM employees WHERE salary > 1 AND dept_id = 2",
     "SELECT name FROM employees WHERE dept_id = 2 AND salary > 1"),
    ("SELECT e.name FROM employees e JOIN departments d ON e.dept_id = d.id",
     "SELECT employees.name FROM employees JOIN departments ON departments.id = employees.dept_id"),
    ("SELECT count(*) FROM employees", "SELECT COUNT(*) FROM employees;"),
]
NOT_EQUIVALENT = [
    ("SELECT name FROM employees", "SELECT salary FROM employees"),
    ("SELECT name FROM employees ORDER BY salary", "SELECT name FROM employees ORDER BY salary DESC"),
    ("SELECT name FROM employees WHERE salary > 1", "SELECT name FROM employees WHERE salary >= 1"),
    ("SELECT name FROM employees", "not sql at all ((("),
]


@pytest.mark.parametrize(("a", "b"), EQUIVALENT)
def test_equivalent(v: SqlValidator, a: str, b: str) -> None:
    assert v.equivalent(a, b, F)
    assert v.equivalent(b, a, F)


@pytest.mark.parametrize(("a", "b"), NOT_EQUIVALENT)
def test_not_equivalent(v: SqlValidator, a: str, b: str) -> None:
    assert not v.equivalent(a, b, F)


def test_equivalent_without_schema(v: SqlValidator) -> None:
    fields = {"Dialect": "postgres"}
    assert v.equivalent("select a from t", "SELECT A FROM T", fields)
    assert not v.equivalent("select a from t", "SELECT b FROM t", fields)


# ------------------------------------------------------------------------------- execution match
def test_top_level_order() -> None:
    def parsed(sql: str) -> exp.Expression:
        expr, _ = parse_statement(sql, "postgres")
        assert expr is not None
        return expr

    assert has_top_level_order(parsed("SELECT a FROM t ORDER BY a"))
    assert not has_top_level_order(parsed("SELECT a FROM (SELECT a FROM t ORDER BY a) s"))
    assert has_top_level_order(parsed("SELECT a FROM t UNION SELECT b FROM u ORDER BY 1"))
    assert has_top_level_order(parsed("(SELECT a FROM t ORDER BY a)"))


def test_execution_match(v: SqlValidator) -> None:
    fields = {**F, "Schema": "\n  " + SCHEMA.replace("\n", "\n\n   ") + "  "}  # whitespace differs
    em = v.execution_match
    assert em("SELECT name FROM employees WHERE salary > 95",
              "SELECT e.name FROM employees e WHERE e.salary > 95.0", fields) is True
    # same rows in another order: fine unless the gold orders them
    assert em("SELECT name FROM employees ORDER BY name DESC", "SELECT name FROM employees", fields) is True
    assert em("SELECT name FROM employees ORDER BY name DESC", "SELECT name FROM employees ORDER BY name",
              fields) is False
    assert em("SELECT name FROM employees ORDER BY salary DESC, name",
              "SELECT name FROM employees ORDER BY salary DESC, name", fields) is True
    # multisets: duplicates count
    assert em("SELECT salary FROM employees", "SELECT DISTINCT salary FROM employees", fields) is False
    assert em("SELECT avg(salary) FROM employees", "SELECT sum(salary) / count(*) FROM employees", fields) is True
    assert em("SELECT name FROM employees", "SELECT name, id FROM employees", fields) is False
    assert em("SELECT name FROM employees WHERE salary > 100", "SELECT name FROM employees", fields) is False


def test_execution_match_failures(v: SqlValidator) -> None:
    assert v.execution_match("DROP TABLE employees", "SELECT 1", F) is False
    assert v.execution_match("SELECT salry FROM employees", "SELECT salary FROM employees", F) is False
    assert v.execution_match("SELECT nonsense (", "SELECT 1", F) is False
    # the gold failing cannot judge
    assert v.execution_match("SELECT 1", "SELECT nope FROM employees", F) is None
    # no fixture for this schema, or a DDL file with no data file
    assert v.execution_match("SELECT 1", "SELECT 1", {**F, "Schema": "CREATE TABLE other (a INT);"}) is None
    assert v.execution_match("SELECT 1", "SELECT 1", {**F, "Schema": "CREATE TABLE lonely (a INT);"}) is None
    assert v.execution_match("SELECT 1", "SELECT 1", {"Dialect": "postgres"}) is None


def test_fixture_is_built_once(v: SqlValidator, tmp_path: Path) -> None:
    duck = {**F, "Dialect": "duckdb"}
    db = v.fixture_db(SCHEMA, duck)
    assert db is not None and db.location.endswith(".duckdb")
    again = bind_kind(v.expert_root, v.output)
    assert isinstance(again, SqlValidator)
    mtime = Path(db.location).stat().st_mtime_ns
    assert again.fixture_db(SCHEMA, duck) == db
    assert Path(db.location).stat().st_mtime_ns == mtime
    # postgres: one database per fixture, reused by another validator
    pg = v.fixture_db(SCHEMA, F)
    assert pg is not None and pg.engine == "postgres" and pg.location.startswith("ek_")
    assert again.fixture_db(SCHEMA, F) == pg


def test_validate_speed(v: SqlValidator) -> None:
    sql = ("SELECT d.name, avg(e.salary) AS avg_salary FROM employees e JOIN departments d ON e.dept_id = d.id "
           "WHERE e.hired >= '2020-01-01' GROUP BY d.name ORDER BY avg_salary DESC LIMIT 5")
    assert v.validate(sql, F).valid
    n = 50
    start = time.perf_counter()
    for _ in range(n):
        v.validate(sql, F)
    assert (time.perf_counter() - start) / n < 0.02  # ~1 ms measured
