"""Constrained decoding: validity, correctness and speed of ``--constrain none|json|schema``, side by side.

One trained run (by default the quickstart's: ``expertkit quickstart --out quickstart`` first), its last
checkpoint, the shipped elastic expert's held-out eval set (320 cases), ``evaluate.compare_run`` once per
mode, one after another on the same machine. Per mode: ``valid`` and ``equivalent`` over all outputs,
the outputs cut by the token limit (counted apart: a grammar cannot finish them), the validity of the
finished ones, and the checkpoint's generation time (grammar compilation included) with its ratio to
``none``.

    .venv/bin/python -m bench.constrain [--run quickstart/run] [--max-cases N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
from pathlib import Path
from typing import Any

from bench.common import record
from expertkit.core.checkpoints import Run
from expertkit.evaluation.compare import CompareOptions, compare_run
from expertkit.expert import Expert
from expertkit.models.base import shipped_experts_dir

MODES = ("none", "json", "schema")


def measure(run: Path, max_cases: int | None) -> dict[str, Any]:
    expert = Expert.load(shipped_experts_dir() / "elastic")
    checkpoints = Run(run).checkpoints()
    if not checkpoints:
        raise SystemExit(f"no checkpoints in {run}: run `expertkit quickstart --out {run.parent}` first")
    last = checkpoints[-1]
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in MODES:
            with contextlib.redirect_stdout(io.StringIO()):
                options = CompareOptions(run_dir=run, checkpoints=str(last.step), max_cases=max_cases,
                                         out_dir=Path(tmp) / mode, constrain=mode)
                result = compare_run(expert, options)
            row = next(m for m in result.report["models"] if m["name"] == last.name)
            outputs = [c["outputs"][last.name] for c in result.report["cases"]]
            finished = [o for o in outputs if o["finished"]]
            rows[mode] = {
                "valid": row["valid"], "equivalent": row["equivalent"], "cases": len(outputs),
                "unfinished": len(outputs) - len(finished),
                "finished_valid": sum(o["valid"] for o in finished) / len(finished) if finished else None,
                "generation_s": row["generation_s"],
            }
    for mode in MODES:
        rows[mode]["slowdown"] = round(rows[mode]["generation_s"] / rows["none"]["generation_s"], 2)
    return {"run": str(run), "checkpoint": last.name, "modes": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("quickstart/run"))
    parser.add_argument("--max-cases", type=int, default=None)
    args = parser.parse_args()
    record("constrain", measure(args.run, args.max_cases))


if __name__ == "__main__":
    main()
