"""SQL engine latency and lint throughput on the embedded PostgreSQL.

* ``server``: the embedded PostgreSQL started in a fresh process (the data folder already initialised,
  as after the first run; target <= 2 s), then the median ``EXPLAIN`` validation of shipped gold answers
  (target <= 10 ms);
* ``lint``: ``expertkit lint`` of the shipped SQL expert's 6,000 training records with engine validation
  (target <= 30 s on 2 cores);
* ``hostile``: the 14,000-term ``OR`` chain and 4,000 ``UNION`` statements (target < 1 s each).

    .venv/bin/python -m bench.sql [--part server|lint|hostile]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import record

REPO = Path(__file__).resolve().parents[1]
PROBE = """
import json, statistics, sys, time
t0 = time.perf_counter()
from expertkit.engines.sql.postgres import server
server().start()
started = time.perf_counter() - t0
from expertkit.expert import Expert
e = Expert.load(sys.argv[1])
records = [json.loads(l) for l in open(e.eval_path)][:200]
fields = [e.contract.normalize(r["fields"]) for r in records]
e.validator.validate(records[0]["answer"], fields[0])  # schema databases loaded
times = []
for r, f in zip(records, fields):
    t = time.perf_counter(); e.validator.validate(r["answer"], f); times.append(time.perf_counter() - t)
print(json.dumps({"start_s": started, "median_validate_ms": 1000 * statistics.median(times)}))
"""


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--part", choices=("server", "lint", "hostile"), action="append")
    parts = set(parser.parse_args().part or ("server", "lint", "hostile"))
    expert = REPO / "experts" / "sql"
    if "server" in parts:
        server_bench(expert)
    if "lint" in parts:
        lint_bench(expert)
    if "hostile" in parts:
        hostile_bench(expert)


def server_bench(expert: Path) -> None:
    env = dict(os.environ)
    subprocess.run([sys.executable, "-c", PROBE, str(expert)], env=env, check=True, capture_output=True)  # initdb
    runs = [json.loads(subprocess.run([sys.executable, "-c", PROBE, str(expert)], env=env, check=True,
                                      capture_output=True, text=True).stdout) for _ in range(3)]
    start = statistics.median(r["start_s"] for r in runs)
    median_ms = statistics.median(r["median_validate_ms"] for r in runs)
    record("sql_server", {"start_s": round(start, 3), "median_validate_ms": round(median_ms, 2),
                          "targets": {"start_s": 2, "median_validate_ms": 10},
                          "meets_target": start <= 2 and median_ms <= 10})


def lint_bench(expert: Path) -> None:
    env = dict(os.environ)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "expertkit.cli", "lint", str(expert), "--data",
                           str(expert / "data" / "train.jsonl"), "--json"], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    report = json.loads(proc.stdout)["reports"][0] if proc.stdout.strip() else {}
    record("sql_lint", {"records": report.get("records"), "seconds": round(seconds, 2),
                        "errors": report.get("errors"), "target_seconds": 30, "meets_target": seconds <= 30})


def hostile_bench(expert: Path) -> None:
    from expertkit.expert import Expert

    e = Expert.load(expert)
    fields = e.contract.normalize({"Dialect": "postgres", "Task": "text_to_sql",
                                   "Schema": (expert / "schemas" / "hr.sql").read_text()})
    ors = " OR ".join(f"id = {i}" for i in range(14_000))
    hostile = {"or_chain_14000": f"SELECT name FROM departments WHERE {ors}",
               "unions_4000": " UNION ".join(f"SELECT {i}" for i in range(4_000))}
    figures = {}
    for name, sql in hostile.items():
        t0 = time.perf_counter()
        result = e.validator.validate(sql, fields)
        figures[name] = {"seconds": round(time.perf_counter() - t0, 3), "finding": result.errors[:1]}
    record("sql_hostile", {**figures, "target_seconds": 1,
                           "meets_target": all(f["seconds"] < 1 for f in figures.values())})


if __name__ == "__main__":
    main()
