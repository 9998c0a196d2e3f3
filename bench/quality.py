"""Task quality and its cost: scoring while training, and validator-guided decoding vs greedy.

For each shipped expert (``--experts``, default elastic and sql), on the tiny base with its training
defaults (``expertkit.training.train.TINY_TRAINING``: 1200 steps, a checkpoint every 100):

1. **Training without and with scoring.** One run as ``expertkit train`` does by default (no scoring),
   one as ``quickstart`` does (``expertkit.training.train_eval.QUICKSTART_EVAL``: every checkpoint scored on the
   whole eval set, early stopping with patience 3). Reported: wall seconds of each (training loop,
   scoring included; preparation apart), the seconds spent scoring and their **share of the scored
   run's wall time** (target ≤ 20 %), the steps reached and why it stopped.
2. **Decoding the best checkpoint** (the scored run's, by the expert's metric) on the first ``--cases``
   eval cases: greedy, then ``--samples`` N candidates per case voted (execution voting for SQL,
   canonical-form voting for Elasticsearch; ``decoding.temperature``/``top_p``/``seed`` of the
   manifest). Reported for each: validity, correctness (execution match for SQL, equivalence
   otherwise), the share of cases that fell back to greedy, and the seconds it took (generation and
   voting; the same code as ``compare``, without the base model's pass).

    .venv/bin/python -m bench.quality [--experts elastic,sql] [--samples 4,8] [--cases 96] [--steps N]
                                      [--no-baseline-train]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import record


def _train(expert: Any, out: Path, steps: int | None, scored: bool) -> dict[str, Any]:
    from expertkit.training.train import TINY_TRAINING, TrainOptions, train_expert
    from expertkit.training.train_eval import QUICKSTART_EVAL

    scoring = {**QUICKSTART_EVAL, "eval_every": TINY_TRAINING["save_every"]} if scored else {}
    t0 = time.perf_counter()
    result = train_expert(expert, TrainOptions(base="tiny", out_dir=out, steps=steps, **scoring))
    wall = time.perf_counter() - t0
    return {
        "scored": scored,
        "steps": result.steps,
        "planned_steps": result.planned_steps,
        "train_s": round(result.seconds, 1),
        "prepare_s": round(result.prepare_seconds, 1),
        "wall_s": round(wall, 1),
        "evaluations": result.evaluations,
        "eval_s": round(result.eval_seconds, 1),
        "eval_share": round(result.eval_seconds / result.seconds, 3) if result.seconds else None,
        "stop_reason": result.stop_reason,
        "best": result.best,
    }


def _decode(expert: Any, run_dir: Path, step: int, cases_n: int, samples: list[int]) -> dict[str, Any]:
    from rich.progress import Progress

    from expertkit.core.checkpoints import load_checkpoint
    from expertkit.engines.inference import create_engine
    from expertkit.engines.inference.generation import Sampling
    from expertkit.evaluation.compare import EngineBackend, _generate_scored, _generate_voted, load_cases
    from expertkit.kinds.scoring import summarize
    from expertkit.training.train_eval import correct_rate

    ck = load_checkpoint(run_dir / f"checkpoint-{step}")
    base = str(ck.record.base_path)
    cases = load_cases(expert, expert.eval_path, cases_n)
    engine = create_engine("hf", base, {ck.name: ck.path})
    backend = EngineBackend(engine, expert, max_new_tokens=expert.manifest.decoding.max_new_tokens,
                            batch_size=expert.manifest.evaluation.batch_size)
    prompts = [expert.contract.encode_prompt(backend.tokenizer, c.fields, c.question) for c in cases]
    out: dict[str, Any] = {"checkpoint": ck.name, "cases": len(cases)}
    progress = Progress(disable=True)
    t0 = time.perf_counter()
    scores, _ = _generate_scored(backend, expert, ck.name, "greedy", prompts, cases, progress)
    greedy_s = time.perf_counter() - t0
    s = summarize(scores)
    out["greedy"] = {"valid": s["valid"], "correct": correct_rate(s), "seconds": round(greedy_s, 1)}
    dec = expert.manifest.decoding
    for n in samples:
        sampling = Sampling(n=n, temperature=dec.temperature, top_p=dec.top_p, seed=dec.seed)
        t0 = time.perf_counter()
        scores, votes, _ = _generate_voted(backend, expert, ck.name, f"x{n}", prompts, cases, sampling, progress)
        seconds = time.perf_counter() - t0
        s = summarize(scores)
        out[f"samples_{n}"] = {
            "valid": s["valid"], "correct": correct_rate(s), "seconds": round(seconds, 1),
            "cost_vs_greedy": round(seconds / greedy_s, 2) if greedy_s else None,
            "greedy_fallback": sum(v["chosen"] is None for v in votes) / len(votes),
            "agreement": sorted({v["agreement"] for v in votes if v["agreement"]}),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experts", default="elastic,sql")
    parser.add_argument("--samples", default="4,8")
    parser.add_argument("--cases", type=int, default=96)
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the tiny base's)")
    parser.add_argument("--no-baseline-train", action="store_true", help="skip the run without scoring")
    args = parser.parse_args()

    from expertkit.expert import Expert
    from expertkit.models.base import shipped_experts_dir

    samples = [int(x) for x in args.samples.split(",") if x.strip()]
    for name in [x.strip() for x in args.experts.split(",") if x.strip()]:
        expert = Expert.load(shipped_experts_dir() / name)
        with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
            figures: dict[str, Any] = {"expert": name, "base": "tiny"}
            if not args.no_baseline_train:
                figures["train_plain"] = _train(expert, Path(tmp) / "plain", args.steps, scored=False)
            scored = _train(expert, Path(tmp) / "scored", args.steps, scored=True)
            figures["train_scored"] = scored
            if "train_plain" in figures and figures["train_plain"]["train_s"]:
                plain = figures["train_plain"]
                figures["scored_vs_plain_s_per_step"] = round(
                    (scored["train_s"] / max(scored["steps"], 1)) / (plain["train_s"] / max(plain["steps"], 1)), 3)
            best = scored["best"]
            if best is not None:
                figures["decoding"] = _decode(expert, Path(tmp) / "scored", int(best["step"]), args.cases, samples)
            record("quality", figures)


if __name__ == "__main__":
    main()
