"""Comparison throughput: ``expertkit compare`` against the post-mortem's loop, side by side.

A run with ``--checkpoints`` LoRA checkpoints (random, untrained adapters with the expert's LoRA settings,
made in seconds by ``bench._run``) over the tiny base; the same ``--cases`` eval cases of the shipped
elastic expert for the base and every checkpoint; the same ``max_new_tokens`` (the manifest's, 96);
greedy decoding on both sides.

* **expertkit**: ``evaluate.compare_run`` — the whole command: base loaded once, adapters switched in
  place, batched generation, scoring, reports written.
* **baseline**: per model, the base loaded from disk with ``AutoModelForCausalLM.from_pretrained``, the
  adapter applied with ``PeftModel.from_pretrained`` and merged, then one prompt at a time through
  ``model.generate`` (prompt rendered with the chat template); each output scored with the same scorer.

Untrained models rarely emit an end-of-turn token, so nearly every output runs to ``max_new_tokens`` on
both sides; the bench reports new tokens per second as well as outputs per second and checks that both
sides generated about as many tokens (``tokens_ratio``: expertkit's over the baseline's total). The
headline ratio is outputs/s, which on these untrained checkpoints equals the tokens/s ratio up to that
check. The baseline is bounded by ``--baseline-budget-s``: past it, the remaining outputs of each model
are not generated and the baseline's time is extrapolated from its measured per-output time (flagged
as ``extrapolated``).

Threads: expertkit compare generates on one CPU thread for a model this small (``SMALL_MODEL_PARAMS``).
The baseline runs once per ``--baseline-threads`` value: ``1`` (the same setting, and the baseline's
fastest on the tiny base) and ``0`` (torch's default, what a user's script gets; on a shared 2-core
machine, many times slower whenever other processes run). The headline ``ratio`` is against the
fastest baseline run; ``ratios`` has each.

    .venv/bin/python -m bench.compare [--cases 64] [--checkpoints 3] [--baseline-budget-s 60] [--baseline-threads 1,0]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import _hf
from bench._run import make_lora_run
from bench.common import record


def run_expertkit(expert: Any, run_dir: Path, cases: int, out_dir: Path) -> dict[str, Any]:
    from expertkit.evaluation.compare import CompareOptions, compare_run

    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the summary table; this bench prints one JSON line
        result = compare_run(expert, CompareOptions(run_dir=run_dir, max_cases=cases, out_dir=out_dir))
    seconds = time.perf_counter() - t0
    models = result.report["models"]
    outputs = sum(m["cases"] for m in models)
    tokens = sum(round(m["mean_output_tokens"] * m["cases"]) for m in models)
    generation = sum(m["generation_s"] for m in models)
    return {
        "models": len(models),
        "outputs": outputs,
        "new_tokens": tokens,
        "seconds": round(seconds, 2),
        "generation_s": round(generation, 2),
        "outputs_per_s": round(outputs / seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1),
        "unfinished_share": round(sum(m["unfinished"] * m["cases"] for m in models) / outputs, 3),
        "batch_size": result.report["batch_size"],
    }


def run_baseline(expert: Any, base_path: str, run_dir: Path, records: list[dict[str, Any]], max_new_tokens: int,
                 budget_s: float, threads: int | None) -> dict[str, Any]:
    import torch

    from expertkit.core.checkpoints import Run
    from expertkit.evaluation.compare import score_output

    def score(record: dict[str, Any], text: str) -> None:
        score_output(expert, text, expert.contract.normalize(record["fields"]), record.get("answer"))

    adapters: list[str | None] = [None, *(str(ck.path) for ck in Run(run_dir).checkpoints())]
    default_threads = torch.get_num_threads()
    torch.set_num_threads(threads or default_threads)
    try:
        return _hf.compare_baseline(base_path, adapters, records, max_new_tokens=max_new_tokens, budget_s=budget_s,
                                    device="cpu", dtype=torch.float32, score=score)
    finally:
        torch.set_num_threads(default_threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="tiny")
    parser.add_argument("--cases", type=int, default=64)
    parser.add_argument("--checkpoints", type=int, default=3)
    parser.add_argument("--baseline-threads", default="1,0",
                        help="torch thread counts to run the baseline with, one baseline run each (0 = torch's "
                             "default, what a user gets; 1 = what expertkit compare uses for a model this small on "
                             "CPU, also the baseline's fastest here). The headline ratio is against the fastest")
    parser.add_argument("--baseline-budget-s", type=float, default=60.0,
                        help="time for the baseline's generation (split evenly over the models); past it the "
                             "baseline's figure is extrapolated from the outputs generated")
    args = parser.parse_args()

    from expertkit.expert import Expert
    from expertkit.models.base import resolve_base, shipped_experts_dir

    expert = Expert.load(shipped_experts_dir() / "elastic")
    base_path = resolve_base(args.base)
    records = _hf.read_records(expert.eval_path, limit=args.cases)
    max_new = expert.manifest.decoding.max_new_tokens
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        run_dir = make_lora_run(expert, base_path, Path(tmp) / "run",
                                steps=[100 * (i + 1) for i in range(args.checkpoints)])
        ek = run_expertkit(expert, run_dir, len(records), Path(tmp) / "report")
        baselines = {}
        for threads in (int(t) for t in args.baseline_threads.split(",") if t.strip()):
            key = f"threads_{threads}" if threads else "threads_default"
            baselines[key] = run_baseline(expert, base_path, run_dir, records, max_new, args.baseline_budget_s,
                                          threads or None)
    best_key = max(baselines, key=lambda k: baselines[k]["outputs_per_s"])
    bl = baselines[best_key]
    import torch

    record("compare", {
        "base": args.base,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "expert": expert.name,
        "cases": len(records),
        "checkpoints": args.checkpoints,
        "checkpoint_kind": "lora (random, untrained)",
        "max_new_tokens": max_new,
        "expertkit": ek,
        "baseline": bl,
        "baseline_used": best_key,
        "baselines": baselines,
        "ratio": round(ek["outputs_per_s"] / bl["outputs_per_s"], 2),
        "ratios": {k: round(ek["outputs_per_s"] / b["outputs_per_s"], 2) for k, b in baselines.items()},
        "tokens_ratio": round(ek["new_tokens"] / bl["new_tokens"], 3) if bl["new_tokens"] else None,
        "tokens_per_s_ratio": round(ek["tokens_per_s"] / bl["tokens_per_s"], 2),
        "target_ratio": 10,
        "meets_target": ek["outputs_per_s"] / bl["outputs_per_s"] >= 10,
        "figure": "outputs (base + checkpoints) x cases per second of wall time, loading, generation and "
                  "scoring included; ratio = expertkit / the fastest baseline run",
    })


if __name__ == "__main__":
    main()
