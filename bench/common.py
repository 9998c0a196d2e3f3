"""Shared benchmark plumbing: machine facts, versions, and the results log."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
PACKAGES = ("expertkit", "torch", "transformers", "trl", "peft", "accelerate", "duckdb", "sqlglot", "elasticsearch")


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "host": platform.node(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def record(bench: str, figures: dict[str, Any], results_dir: Path | None = None) -> dict[str, Any]:
    """Print one JSON line and append it to ``bench/results/<bench>.jsonl`` (or ``results_dir``)."""
    row = {
        "bench": bench,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        **figures,
    }
    line = json.dumps(row, sort_keys=False)
    print(line, flush=True)
    target = Path(results_dir or os.environ.get("OUT") or RESULTS)
    target.mkdir(parents=True, exist_ok=True)
    with (target / f"{bench}.jsonl").open("a") as fh:
        fh.write(line + "\n")
    return row
