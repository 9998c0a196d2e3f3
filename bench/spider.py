"""Spider dev through ``expertkit score``: each published predictions file in
``../shared/realdata/spider/predictions/`` (and the gold queries themselves), scored against the 1,034 dev
questions imported with ``expertkit data import spider``. Prints execution accuracy on the 972 runnable
examples (wta_1 has no database file), with variants off (the published setting: one database) and with
``--variants`` seeded variants (the test-suite method), per database, the validity rate and the seconds.

Published dev execution accuracy: DAIL-SQL + GPT-4 with self-consistency 84.4, C3 + ChatGPT 81.8.

    .venv/bin/python -m bench.spider [--variants 3] [--realdata ../shared/realdata]
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import record

REPO = Path(__file__).resolve().parents[1]
EXPERT = REPO / "bench" / "spider_expert"
PUBLISHED = {"dailsql_gpt4_dev": 84.4, "c3sql_gpt35_dev_predicted_sql": 81.8}


def _score(cases: Path, outputs: Path, variants: int) -> tuple[dict, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "expertkit.cli", "score", str(EXPERT), "--cases", str(cases),
                           "--outputs", str(outputs), "--variants", str(variants), "--json"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"expertkit score failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--realdata", type=Path, default=REPO.parent / "shared" / "realdata")
    parser.add_argument("--variants", type=int, default=3)
    args = parser.parse_args()
    spider = args.realdata / "spider"
    with tempfile.TemporaryDirectory() as tmp:
        cases = Path(tmp) / "dev.jsonl"
        subprocess.run([sys.executable, "-m", "expertkit.cli", "data", "import", "spider", "--questions",
                        str(spider / "dev.json"), "--tables", str(spider / "tables.json"), "--databases",
                        str(spider / "database"), "--out", str(cases)], check=True, capture_output=True)
        gold = Path(tmp) / "gold.txt"
        gold.write_text("".join(json.loads(line)["answer"].replace("\n", " ") + "\n"
                                for line in cases.read_text().splitlines()))
        files = [("gold", gold), *((p.stem, p) for p in sorted((spider / "predictions").glob("*.txt")))]
        for name, path in files:
            row: dict = {"system": name, "published": PUBLISHED.get(name)}
            for variants in (0, args.variants):
                report, seconds = _score(cases, path, variants)
                s = report["summary"]
                per_db: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
                for case in report["cases"]:
                    if case["execution_match"] is not None:
                        per_db[case.get("database", "?")][0] += case["execution_match"] is True
                        per_db[case.get("database", "?")][1] += 1
                key = "variants_off" if variants == 0 else f"variants_{variants}"
                row[key] = {
                    "execution_accuracy": round(100 * s["execution_match"], 1),
                    "matched": s["execution_match_count"],
                    "runnable": s["execution_known"],
                    "valid_rate": round(100 * s["valid"], 1),
                    "seconds": round(seconds, 1),
                    "per_database": {db: round(100 * m / n, 1) for db, (m, n) in sorted(per_db.items())},
                }
            off = row["variants_off"]["execution_accuracy"]
            if row["published"] is not None:
                row["within_2_points"] = abs(off - row["published"]) <= 2
            record("spider", row)


if __name__ == "__main__":
    main()
