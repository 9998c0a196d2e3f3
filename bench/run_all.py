"""All CPU benches, one after another (``make bench``), then the table of the latest figures.

    .venv/bin/python bench/run_all.py [--only lint,train,compare,serve]

Each bench runs as ``python -m bench.NAME`` from the repository root, appends its JSON line to
``bench/results/NAME.jsonl`` and prints it; a bench that fails is reported and the others still run
(exit code 1 if any failed). The GPU bench is not among them: it runs on a GPU machine (``bench/gpu.sh``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHES = ("lint", "train", "compare", "serve")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated benches to run")
    args = parser.parse_args()
    wanted = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = [b for b in wanted if b not in BENCHES]
    if unknown:
        parser.error(f"unknown bench(es): {', '.join(unknown)} (known: {', '.join(BENCHES)})")
    failed = []
    for name in wanted:
        print(f"== bench.{name}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=ROOT).returncode
        print(f"== bench.{name}: exit code {rc}, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        if rc != 0:
            failed.append(name)
    subprocess.run([sys.executable, "-m", "bench.table"], cwd=ROOT)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
