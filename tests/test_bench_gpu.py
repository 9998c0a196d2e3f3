"""``bench/gpu.sh --smoke``: the GPU bench's every part, end to end on CPU (tiny shape, a few steps)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_bench_smoke_runs_every_part_and_records_its_json(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path / "out"), "OMP_NUM_THREADS": "2"}
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh"), "--smoke", "--tokenizer", "bpe",
                           "--work", str(tmp_path / "work")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=480)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads((tmp_path / "out" / "gpu.json").read_text())
    assert report["smoke"] is True and report["environment"]["expertkit_import_error"] is None
    parts = report["parts"]
    assert list(parts) == ["setup", "train_baseline", "train_expertkit_padded", "train_expertkit", "compare"]
    assert not {name: p["error"] for name, p in parts.items() if "error" in p}
    assert parts["setup"]["tokenizer"] == "bpe"
    for name in ("train_baseline", "train_expertkit_padded", "train_expertkit"):
        assert parts[name]["steps"] >= 2 and parts[name]["steady_tokens_per_s"] > 0, parts[name]
    assert parts["train_expertkit"]["batches"].startswith("padding-free")
    assert "no CUDA device" in parts["train_expertkit"]["liger"]
    assert parts["compare"]["expertkit"]["outputs"] == 4 and parts["compare"]["ratio"] > 0
    assert {"train_ratio", "train_padded_ratio", "compare_ratio"} <= set(report["summary"])
    (line,) = (tmp_path / "out" / "gpu.jsonl").read_text().splitlines()
    assert json.loads(line)["bench"] == "gpu"
