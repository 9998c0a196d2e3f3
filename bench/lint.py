"""Lint throughput: the shipped Elasticsearch expert's generator at 100k records, linted with its
validator (target: the whole 100k-record dataset in <= 30 s on a 2-core machine). ``--shipped`` lints
the expert's committed dataset instead (6,000 + 320 records; target <= 30 s as well).

    .venv/bin/python -m bench.lint [--records 100000 | --shipped]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import record
from expertkit.authoring.generators import generate_dataset
from expertkit.authoring.lint import lint_file
from expertkit.expert import Expert
from expertkit.models.base import shipped_experts_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--shipped", action="store_true", help="lint the expert's committed dataset")
    args = parser.parse_args()
    expert = Expert.load(shipped_experts_dir() / "elastic")
    if args.shipped:
        t0 = time.perf_counter()
        report = lint_file(expert, expert.train_path, eval_path=expert.eval_path)
        seconds = time.perf_counter() - t0
        record("lint_shipped", {
            "records": report.records,
            "seconds": round(seconds, 2),
            "records_per_s": round(report.records / seconds),
            "errors": report.errors,
            "warnings": report.warnings,
            "target_seconds": 30,
            "meets_target": seconds <= 30,
        })
        return
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths = generate_dataset(expert, train_size=args.records, eval_size=320, out_dir=Path(tmp))
        generated = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = lint_file(expert, paths["train"][0], eval_path=paths["eval"][0])
        seconds = time.perf_counter() - t0
    record("lint", {
        "records": report.records,
        "seconds": round(seconds, 2),
        "records_per_s": round(report.records / seconds),
        "generate_seconds": round(generated, 2),
        "errors": report.errors,
        "warnings": report.warnings,
        "target_seconds": 30,
        "meets_target": seconds <= 30,
    })


if __name__ == "__main__":
    main()
