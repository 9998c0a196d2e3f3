"""Training throughput: ``expertkit train`` (``train_expert``) against the usual recipe, side by side.

Both sides train the same base on the same data (the shipped elastic expert's training set), with the
same batch size, number of steps, learning rate and LoRA settings (r 16, alpha 32, dropout 0.05, all
linear layers):

* **expertkit**: ``train_expert(expert, TrainOptions(method=..., steps=..., batch_size=...))`` — lint,
  contract encoding, TRL ``SFTTrainer`` with answer-only loss, one checkpoint saved at the end;
* **baseline**: ``bench._hf.train_baseline`` — the conversation rendered by the chat template,
  ``DataCollatorForLanguageModeling(mlm=False)`` padding per batch (labels = input_ids, padding
  masked), plain ``transformers.Trainer`` + ``peft.get_peft_model``, one checkpoint saved at the end.

The figure is training tokens per second: real (non-pad) tokens reaching the model's forward (counted
the same way on both sides, by a forward hook), over the time from the start of ``Trainer.train()``'s
loop to its end — data loading, logging and the final checkpoint save included; model loading,
tokenising and expertkit's lint/encoding are reported apart as ``prepare_s``.

Both sides train at the same time, in two threads of this process that take their optimizer steps in
turn (``bench._hf.Baton``): while one steps the other waits, and the waiting is not counted. Load from
other processes — on a shared 2-core machine it changes the speed of everything many times over, from
one minute to the next — so falls on both sides alike, step by step. ``--rounds`` repeats the pair,
alternating which side steps first; each side's figure sums its rounds (``tokens_per_s_by_round`` shows
them one by one). ``median_step_s`` (the median optimizer step, forward + backward + optimizer only) is
a second, spike-proof view.

Rows: ``lora`` (like for like, LoRA on both sides, padded batches) and ``full`` (expertkit's tiny-base
default, full fine-tuning at lr 3e-3, against the Trainer doing the same); ``lora-packed`` and
``full-packed`` the same with expertkit's padding-free batches (``expertkit.training.packing``; a budget of about
``--batch-size`` examples' tokens, so about as many examples per step) against the padded baseline.

    .venv/bin/python -m bench.train [--base tiny] [--steps 150] [--rounds 2] [--batch-size 16] [--rows lora,full,...]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
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
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src/expertkit/training/train.py"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        state["train_py_uncommitted"] = bool(dirty)
    except (OSError, subprocess.SubprocessError):
        pass
    return state


def run_expertkit(expert: Any, base_path: str, out: Path, metered: Any, *, method: str, steps: int,
                  batch_size: int, learning_rate: float | None, max_tokens_per_batch: int | None) -> dict[str, Any]:
    from expertkit.training.train import TrainOptions, train_expert

    t0 = time.perf_counter()
    result = train_expert(expert, TrainOptions(
        base=base_path, out_dir=out, method=method, steps=steps, save_every=steps, batch_size=batch_size,
        learning_rate=learning_rate, callbacks=[metered], max_tokens_per_batch=max_tokens_per_batch,
    ))
    return {"steps": result.steps - result.start_step, "tokens": metered.counter.tokens,
            "padded_tokens": metered.counter.padded, "own_count": result.tokens, "seconds": metered.seconds,
            "prepare_s": (metered.began_at or t0) - t0, "loss": result.final_loss, "step_s": metered.durations,
            "stopped_early": metered.stopped_early}


def run_baseline(base_path: str, tokenizer: Any, features: list[dict[str, Any]], out: Path, metered: Any, *,
                 method: str, steps: int, batch_size: int, learning_rate: float, scheduler: str) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32, attn_implementation="sdpa")
    out_row = _hf.train_baseline(
        model, tokenizer, features, out_dir=out, batch_size=batch_size, steps=steps,
        learning_rate=learning_rate, lora=_hf.lora_config() if method == "lora" else None, scheduler=scheduler,
        metered=metered,
    )
    return {**out_row, "prepare_s": (metered.began_at or t0) - t0}


def run_pair(jobs: dict[str, Callable[[Any], dict[str, Any]]], first: str, budget_s: float,
             pad_id: int | None = None) -> tuple[dict[str, dict[str, Any]], bool]:
    """Run the trainings in threads that take optimizer steps in turn (``first`` first); their figures, and
    whether the turn-taking broke down (a side waited past its limit)."""
    names = [first, *(n for n in jobs if n != first)]
    baton = _hf.Baton(names)
    results: dict[str, dict[str, Any]] = {}
    errors: dict[str, BaseException] = {}

    def work(name: str) -> None:
        try:
            results[name] = jobs[name](_hf.meter(budget_s, baton, name, pad_id))
        except BaseException as exc:
            errors[name] = exc
        finally:
            baton.leave(name)

    threads = [threading.Thread(target=work, args=(n,), name=f"bench-{n}") for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        name, exc = next(iter(errors.items()))
        raise RuntimeError(f"the {name} side failed: {type(exc).__name__}: {exc}") from exc
    return results, baton.broken


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
    parser.add_argument("--steps", type=int, default=150, help="optimizer steps per run (each side runs --rounds)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per side (the side that steps first alternates)")
    parser.add_argument("--budget-s", type=float, default=60.0,
                        help="a run stops early past this many seconds of training (a loaded machine); the "
                             "figures then cover the steps done, and stopped_early counts such runs")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rows", default="lora,full,lora-packed,full-packed",
                        help="lora, full (padded batches on both sides), lora-packed, full-packed (expertkit's "
                             "padding-free batches of about --batch-size examples' tokens against padded ones)")
    args = parser.parse_args()

    from expertkit.expert import Expert
    from expertkit.models.base import load_tokenizer, resolve_base, shipped_experts_dir
    from expertkit.training.train import TINY_TRAINING, token_budget

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
    # the padding-free budget of about --batch-size examples (what an unset manifest value gives)
    budget = token_budget(None, args.batch_size, [len(f["input_ids"]) for f in features], spec.max_length)
    for name in ("lora", "full"):
        settings[f"{name}-packed"] = {**settings[name], "max_tokens_per_batch": budget}
        settings[name]["max_tokens_per_batch"] = 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        for name in rows_wanted:
            cfg = settings[name]
            ek_runs, bl_runs = [], []
            broken = 0
            for rnd in range(args.rounds):
                # the tiny base's defaults are full fine-tuning at lr 3e-3: keep them for `full`
                ek_lr = cfg["learning_rate"] if cfg["method"] == "lora" else None
                jobs = {
                    "baseline": functools.partial(
                        run_baseline, base_path, tokenizer, features, Path(tmp) / f"{name}-baseline-{rnd}",
                        method=cfg["method"], steps=args.steps, batch_size=args.batch_size,
                        learning_rate=cfg["learning_rate"], scheduler=cfg["scheduler"]),
                    "expertkit": functools.partial(
                        run_expertkit, expert, base_path, Path(tmp) / f"{name}-expertkit-{rnd}",
                        method=cfg["method"], steps=args.steps, batch_size=args.batch_size, learning_rate=ek_lr,
                        max_tokens_per_batch=cfg["max_tokens_per_batch"]),
                }
                first = "baseline" if rnd % 2 == 0 else "expertkit"
                results, was_broken = run_pair(jobs, first, args.budget_s, tokenizer.pad_token_id)
                bl_runs.append(results["baseline"])
                ek_runs.append(results["expertkit"])
                broken += was_broken
            ek, bl = combine(ek_runs), combine(bl_runs)
            rows.append({
                "row": name,
                "method": cfg["method"],
                "expertkit_batches": "padded" if cfg["max_tokens_per_batch"] == 0 else "padding-free",
                "expertkit": ek,
                "baseline": bl,
                "ratio": round(ek["tokens_per_s"] / bl["tokens_per_s"], 3),
                "median_ratio": round(ek["median_tokens_per_s"] / bl["median_tokens_per_s"], 3),
                "rounds_with_broken_turns": broken,
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
