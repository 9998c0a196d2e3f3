"""Training throughput: ``expertkit train`` (``train_expert``) against the usual recipe, side by side.

Both sides train the same base on the same data (the shipped elastic expert's training set), with the
same batch size, number of steps, learning rate and LoRA settings (r 16, alpha 32, dropout 0.05, all
linear layers):

* **expertkit**: ``train_expert(expert, TrainOptions(method=..., steps=..., batch_size=...))`` — lint,
  contract encoding, TRL ``SFTTrainer`` with answer-only loss, one checkpoint saved at the end;
* **baseline**: ``bench._hf.train_baseline`` — the conversation rendered by the chat template,
  ``DataCollatorForLanguageModeling(mlm=False)`` padding per batch (labels = input_ids, padding
  masked), plain ``transformers.Trainer`` + ``peft.get_peft_model``, one checkpoint saved at the end.

The figure is training tokens per second: real (non-pad) tokens fed to the model, over the wall time of
``Trainer.train()`` (model loading, tokenising and expertkit's lint/encoding are reported apart as
``prepare_s``). Each side runs ``--rounds`` short runs, alternating (baseline then expertkit, then
expertkit then baseline, ...), so that load from other processes falls on both sides alike; each side's
figure sums its rounds (``tokens_per_s_by_round`` shows them one by one). ``median_step_s`` (the median
optimizer step) is a second, spike-proof view. On a shared machine the figures swing many times over
with other processes' load (torch's default threads on 2 cores); compare ratios, not absolute figures.

Rows: ``lora`` (like for like, LoRA on both sides) and ``full`` (expertkit's tiny-base default, full
fine-tuning at lr 3e-3, against the Trainer doing the same).

    .venv/bin/python -m bench.train [--base tiny] [--steps 50] [--rounds 6] [--batch-size 16] [--rows lora,full]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import _hf
from bench.common import record

ROOT = Path(__file__).resolve().parents[1]


def source_state() -> dict[str, Any]:
    """The commit and the hash of train.py as it ran (train.py may be uncommitted work)."""
    train_py = ROOT / "src" / "expertkit" / "train.py"
    state: dict[str, Any] = {"train_py_sha256": hashlib.sha256(train_py.read_bytes()).hexdigest()[:16]}
    try:
        state["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                         text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src/expertkit/train.py"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        state["train_py_uncommitted"] = bool(dirty)
    except (OSError, subprocess.SubprocessError):
        pass
    return state


def run_expertkit(expert: Any, base_path: str, out: Path, *, method: str, steps: int, batch_size: int,
                  learning_rate: float | None, budget_s: float | None) -> dict[str, Any]:
    from expertkit.train import TrainOptions, train_expert

    metered = _hf.meter(budget_s)
    t0 = time.perf_counter()
    result = train_expert(expert, TrainOptions(
        base=base_path, out_dir=out, method=method, steps=steps, save_every=steps, batch_size=batch_size,
        learning_rate=learning_rate, callbacks=[metered],
    ))
    total = time.perf_counter() - t0
    return {"steps": result.steps - result.start_step, "tokens": metered.counter.tokens,
            "padded_tokens": metered.counter.padded, "own_count": result.tokens, "seconds": result.seconds,
            "prepare_s": total - result.seconds, "loss": result.final_loss, "step_s": metered.durations,
            "stopped_early": metered.stopped_early}


def run_baseline(base_path: str, tokenizer: Any, features: list[dict[str, Any]], out: Path, *, method: str,
                 steps: int, batch_size: int, learning_rate: float, scheduler: str,
                 budget_s: float | None) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32, attn_implementation="sdpa")
    prepare = time.perf_counter() - t0
    out_row = _hf.train_baseline(
        model, tokenizer, features, out_dir=out, batch_size=batch_size, steps=steps,
        learning_rate=learning_rate, lora=_hf.lora_config() if method == "lora" else None, scheduler=scheduler,
        budget_s=budget_s,
    )
    return {**out_row, "prepare_s": prepare}


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    tokens = sum(r["tokens"] for r in runs)
    seconds = sum(r["seconds"] for r in runs)
    steps = sum(r["steps"] for r in runs)
    durations = [d for r in runs for d in r["step_s"]]
    median_step = _hf.median(durations)
    padded = sum(r["padded_tokens"] for r in runs)
    extra = {"own_count": sum(r["own_count"] for r in runs)} if "own_count" in runs[0] else {}
    return {
        "steps": steps,
        "tokens": tokens,
        "padding_share": round(1 - tokens / padded, 3) if padded else None,
        **extra,
        "seconds": round(seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1) if seconds else None,
        "tokens_per_step": round(tokens / steps, 1) if steps else None,
        "median_step_s": round(median_step, 4),
        "step_s_p10_p90": [round(_quantile(durations, 0.1), 4), round(_quantile(durations, 0.9), 4)],
        "median_tokens_per_s": round(tokens / steps / median_step, 1) if steps and median_step else None,
        "prepare_s": round(sum(r["prepare_s"] for r in runs) / len(runs), 2),
        "rounds": len(runs),
        "tokens_per_s_by_round": [round(r["tokens"] / r["seconds"], 1) if r["seconds"] else None for r in runs],
        "stopped_early": sum(bool(r.get("stopped_early")) for r in runs),
        "final_loss": runs[-1].get("loss"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="tiny")
    parser.add_argument("--steps", type=int, default=50, help="optimizer steps per run (each side runs --rounds)")
    parser.add_argument("--rounds", type=int, default=6,
                        help="runs per side, alternating which side goes first (short runs, many rounds: load "
                             "from other processes falls on both sides alike)")
    parser.add_argument("--budget-s", type=float, default=45.0,
                        help="a run stops early past this many seconds of training (a loaded machine); the "
                             "figures then cover the steps done, and stopped_early counts such runs")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rows", default="lora,full", help="lora, full, or both")
    args = parser.parse_args()

    from expertkit.expert import Expert
    from expertkit.model import load_tokenizer, resolve_base, shipped_experts_dir
    from expertkit.train import TINY_TRAINING

    state_before = source_state()
    expert = Expert.load(shipped_experts_dir() / "elastic")
    base_path = resolve_base(args.base)
    tokenizer = load_tokenizer(base_path)
    records = _hf.read_records(expert.train_path)
    texts = _hf.render_texts(tokenizer, records)
    mismatched = sum(t != expert.contract.render_conversation(r["fields"], r["question"], r["answer"])
                     for r, t in zip(records, texts, strict=True))
    features = _hf.tokenize_texts(tokenizer, texts, max_length=expert.manifest.training.max_length)
    mean_len = sum(len(f["input_ids"]) for f in features) / len(features)

    spec = expert.manifest.training
    rows_wanted = [r.strip() for r in args.rows.split(",") if r.strip()]
    settings = {
        "lora": {"method": "lora", "learning_rate": spec.learning_rate, "scheduler": "linear"},
        "full": {"method": "full", "learning_rate": TINY_TRAINING["learning_rate"],
                 "scheduler": TINY_TRAINING["lr_scheduler"]},
    }
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        for name in rows_wanted:
            cfg = settings[name]
            ek_runs, bl_runs = [], []
            for rnd in range(args.rounds):
                order = ("baseline", "expertkit") if rnd % 2 == 0 else ("expertkit", "baseline")
                for side in order:
                    out = Path(tmp) / f"{name}-{side}-{rnd}"
                    if side == "expertkit":
                        # the tiny base's defaults are full fine-tuning at lr 3e-3: keep them for `full`
                        lr = cfg["learning_rate"] if name == "lora" else None
                        ek_runs.append(run_expertkit(expert, base_path, out, method=cfg["method"], steps=args.steps,
                                                     batch_size=args.batch_size, learning_rate=lr,
                                                     budget_s=args.budget_s))
                    else:
                        bl_runs.append(run_baseline(base_path, tokenizer, features, out, method=cfg["method"],
                                                    steps=args.steps, batch_size=args.batch_size,
                                                    learning_rate=cfg["learning_rate"], scheduler=cfg["scheduler"],
                                                    budget_s=args.budget_s))
            ek, bl = combine(ek_runs), combine(bl_runs)
            rows.append({
                "row": name,
                "method": cfg["method"],
                "expertkit": ek,
                "baseline": bl,
                "ratio": round(ek["tokens_per_s"] / bl["tokens_per_s"], 3),
                "median_ratio": round(ek["median_tokens_per_s"] / bl["median_tokens_per_s"], 3),
            })
    state_after = source_state()
    import torch

    record("train", {
        "base": args.base,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "torch_threads": torch.get_num_threads(),
        "expert": expert.name,
        "examples": len(records),
        "mean_tokens_per_example": round(mean_len, 1),
        "baseline_texts_differing_from_contract": mismatched,
        "batch_size": args.batch_size,
        "steps_per_run": args.steps,
        "rounds": args.rounds,
        "rows": rows,
        "source": state_after,
        "train_py_changed_during_run": state_before.get("train_py_sha256") != state_after.get("train_py_sha256"),
        "figure": "real (non-pad) training tokens per second of Trainer.train(); ratio = expertkit / baseline",
    })


if __name__ == "__main__":
    main()
