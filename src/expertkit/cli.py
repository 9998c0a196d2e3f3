"""The ``expertkit`` command line: a thin layer over the Python API.

Exit codes: 0 success, 1 findings (lint/check-prompt errors, invalid output), 2 unreadable input or
refused operation (one line on stderr naming file, line and key; ``--debug`` shows the traceback).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from expertkit.core.errors import ExpertkitError, from_os_error, one_line
from expertkit.core.findings import Finding, has_errors
from expertkit.core.settings import describe
from expertkit.kinds import DEFAULT_KIND, kind_names

app = typer.Typer(
    name="expertkit",
    help="Build small task experts with one prompt contract from data to serving.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Dataset tools.", no_args_is_help=True)
base_app = typer.Typer(help="Base models.", no_args_is_help=True)
import_app = typer.Typer(help="Import benchmark datasets as expertkit cases.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(base_app, name="base")
data_app.add_typer(import_app, name="import")

console = Console(stderr=True)
out = Console(soft_wrap=True)

ExpertDir = Annotated[Path, typer.Argument(help="Expert folder (holding expert.yaml).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
SetOption = Annotated[list[str] | None, typer.Option(
    "--set", metavar="SECTION.KEY=VALUE",
    help="Override a training (or decoding, evaluation) setting of the manifest (repeatable), e.g. "
    "training.lora_r=8; the named options win.")]
ConstrainOption = Annotated[str | None, typer.Option(
    "--constrain", help="Constrained decoding: none | json | schema (default: the manifest's decoding.constrain).")]


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    if debug:
        os.environ["EXPERTKIT_DEBUG"] = "1"


def _load(expert_dir: Path) -> Any:
    from expertkit.expert import Expert

    return Expert.load(expert_dir)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def _parse_field_options(items: list[str] | None) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ExpertkitError(f"--field expects NAME=VALUE, got {item!r}", key="--field")
        fields[name.strip()] = value.replace("\\n", "\n")
    return fields


def _print_findings(findings: list[Finding], title: str) -> None:
    if not findings:
        out.print(f"[green]{escape(title)}: no findings[/green]")
        return
    table = Table(title=escape(title), show_lines=False)
    for col in ("line", "severity", "code", "field", "message"):
        table.add_column(col)
    for f in findings[:200]:
        colour = "red" if f.severity == "error" else "yellow"
        table.add_row(str(f.line or ""), f"[{colour}]{f.severity}[/{colour}]", escape(f.code), escape(f.field or ""),
                      escape(f.message + (f" → {f.suggestion}" if f.suggestion else "")))
    out.print(table)
    if len(findings) > 200:
        out.print(f"… and {len(findings) - 200} more (use --json for all)")


# ---------------------------------------------------------------------- contract, lint, drift
@app.command()
def render(
    expert_dir: ExpertDir,
    field: Annotated[list[str] | None, typer.Option("--field", help="NAME=VALUE (repeatable).")] = None,
    question: Annotated[str, typer.Option("--question", help="The user's question.")] = ...,  # type: ignore[assignment]
    as_json: JsonFlag = False,
) -> None:
    """Print the exact generation prompt the expert is trained and served with."""
    expert = _load(expert_dir)
    fields = _parse_field_options(field)
    prompt = expert.render(fields, question)
    if as_json:
        _print_json({
            "prompt": prompt,
            "fingerprint": expert.fingerprint,
            "wrapper": expert.contract.wrapper.name,
            "fields": expert.contract.normalize(fields),
            "messages": expert.contract.messages(fields, question),
        })
    else:
        sys.stdout.write(prompt)
        if not prompt.endswith("\n"):
            sys.stdout.write("\n")


@app.command()
def lint(
    expert_dir: ExpertDir,
    data: Annotated[Path | None, typer.Option("--data", help="Dataset to lint (default: train and eval).")] = None,
    tokenizer: Annotated[str | None, typer.Option("--tokenizer", help="Tokenizer for too_long (path or hub id).")]
    = None,
    as_json: JsonFlag = False,
) -> None:
    """Check every record against the contract and the output validator."""
    from expertkit.authoring.lint import lint_file

    expert = _load(expert_dir)
    tok = _maybe_tokenizer(tokenizer)
    targets = [data] if data is not None else [expert.train_path, expert.eval_path]
    reports = []
    for target in targets:
        eval_path = expert.eval_path if target != expert.eval_path else None
        reports.append(lint_file(expert, target, eval_path=eval_path, tokenizer=tok))
    if as_json:
        _print_json({"reports": [r.to_dict() for r in reports], "fingerprint": expert.fingerprint})
    else:
        for r in reports:
            _print_findings(r.findings, f"lint {r.path}: {r.records} records")
            out.print(escape(f"  counts: {r.counts or '{}'}"))
            out.print(escape(f"  field orders: {dict(r.field_orders.most_common(5))}"))
            for name, values in r.field_values.items():
                top = dict(values.most_common(6))
                out.print(escape(f"  {name}: {top}{' …' if len(values) > 6 else ''}"))
    if any(r.errors for r in reports):
        raise typer.Exit(1)


def _maybe_tokenizer(name: str | None) -> Any:
    if name is None:
        return None
    from expertkit.models.base import load_tokenizer

    return load_tokenizer(name)


@app.command("check-prompt")
def check_prompt(
    expert_dir: ExpertDir,
    prompt: Annotated[str | None, typer.Option("--prompt", help="A raw prompt in any wrapper.")] = None,
    prompts: Annotated[Path | None, typer.Option("--prompts", help="JSONL of {messages} or {text}/{prompt}.")]
    = None,
    as_json: JsonFlag = False,
) -> None:
    """Check inference prompts against the contract and the training data (exit 1 on drift)."""
    from expertkit.authoring.lint import check_messages
    from expertkit.core.fileio import iter_jsonl

    if (prompt is None) == (prompts is None):
        raise ExpertkitError("give exactly one of --prompt TEXT or --prompts FILE", key="--prompt")
    expert = _load(expert_dir)
    results: list[tuple[int | None, list[Finding]]] = []
    if prompt is not None:
        results.append((None, expert.check_prompt(prompt)))
    else:
        assert prompts is not None
        for line, record in iter_jsonl(prompts):
            if isinstance(record, dict) and isinstance(record.get("messages"), list):
                found = check_messages(expert, record["messages"])
            elif isinstance(record, dict) and isinstance(record.get("text", record.get("prompt")), str):
                found = expert.check_prompt(record.get("text", record.get("prompt")))
            elif isinstance(record, str):
                found = expert.check_prompt(record)
            else:
                raise ExpertkitError("expected {\"messages\": [...]}, {\"text\": ...} or {\"prompt\": ...}",
                                     path=prompts, line=line)
            results.append((line, [f.at_line(line) for f in found]))
        if not results:
            raise ExpertkitError("no prompts in file", path=prompts)
    all_findings = [f for _, fs in results for f in fs]
    if as_json:
        _print_json({
            "fingerprint": expert.fingerprint,
            "prompts": len(results),
            "ok": not has_errors(all_findings),
            "findings": [f.to_dict() for f in all_findings],
        })
    else:
        _print_findings(all_findings, f"check-prompt: {len(results)} prompt(s)")
    if has_errors(all_findings):
        raise typer.Exit(1)


@app.command()
def validate(
    expert_dir: ExpertDir,
    output: Annotated[str, typer.Option("--output", help="The raw model output to judge.")] = ...,  # type: ignore[assignment]
    field: Annotated[list[str] | None, typer.Option("--field", help="NAME=VALUE (repeatable).")] = None,
    gold: Annotated[str | None, typer.Option("--gold", help="The gold answer: also judge equivalence.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Judge one raw model output as compare does: reasoning, text around the answer, validity (exit 1
    when the answer is invalid)."""
    expert = _load(expert_dir)
    score = expert.score(output, _parse_field_options(field), gold)
    if as_json:
        _print_json({"verdict": score.verdict, "valid": score.valid, "answer": score.answer,
                     "reasoning_kind": score.reasoning_kind, "text": score.text, "errors": score.errors,
                     "warnings": score.warnings, "equivalent": score.equivalent,
                     "execution_match": score.execution_match})
    else:
        colour = {"direct_valid": "green", "answer_with_text": "yellow"}.get(score.verdict, "red")
        out.print(f"[{colour}]{score.verdict}[/{colour}]: answer {'valid' if score.valid else 'invalid'}")
        if score.reasoning_kind:
            out.print(f"  reasoning: {score.reasoning_kind}")
        for note in score.text:
            out.print(f"  text: {escape(note)}")
        if score.answer != output.strip():
            out.print(f"  answer: {escape(score.answer or '(none)')}")
        for e in score.errors:
            out.print(f"  error: {escape(e)}")
        for w in score.warnings:
            out.print(f"  warning: {escape(w)}")
        if score.equivalent is not None:
            out.print(f"  equivalent to the gold answer: {'yes' if score.equivalent else 'no'}")
        if score.execution_match is not None:
            out.print(f"  same result as the gold answer: {'yes' if score.execution_match else 'no'}")
    if not score.valid:
        raise typer.Exit(1)


# ---------------------------------------------------------------------- data and bases
@data_app.command("generate")
def data_generate(
    expert_dir: ExpertDir,
    train_size: Annotated[int | None, typer.Option(help="Training records (default: manifest).")] = None,
    eval_size: Annotated[int | None, typer.Option(help="Eval records (default: manifest).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (default: manifest).")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out-dir", help="Write here instead of the manifest paths.")]
    = None,
    force: Annotated[bool, typer.Option("--force", help="Replace existing datasets that differ.")] = False,
) -> None:
    """Generate the expert's deterministic, seeded dataset (train and held-out eval)."""
    from expertkit.authoring.generators import generate_dataset
    from expertkit.core.settings import check_setting

    for key, value, option in (("data.train_size", train_size, "--train-size"),
                               ("data.eval_size", eval_size, "--eval-size"), ("data.seed", seed, "--seed")):
        if value is not None:  # checked as the manifest's own value would be
            check_setting(key, value, option)
    expert = _load(expert_dir)
    result = generate_dataset(expert, train_size=train_size, eval_size=eval_size, seed=seed, out_dir=out_dir,
                              force=force)
    for split, (path, n) in result.items():
        out.print(escape(f"{split}: {n} records -> {path}"))


@base_app.command("tiny")
def base_tiny(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the tiny base into.")],
    seed: Annotated[int, typer.Option(help="Seed for weights.")] = 0,
) -> None:
    """Build the tiny Qwen3-architecture base (model + byte-level BPE tokenizer) locally."""
    from expertkit.models.base import build_tiny_base

    path = build_tiny_base(out_dir, seed=seed)
    out.print(escape(f"tiny base written to {path}"))


@base_app.command("qwen3-shape")
def base_qwen3_shape(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the base into.")],
    layers: Annotated[int, typer.Option(help="Layers (Qwen3-0.6B has 28).")] = 2,
    seed: Annotated[int, typer.Option(help="Seed for weights.")] = 0,
) -> None:
    """Qwen3's real tokenizer and chat template on Qwen3-0.6B's configuration, N layers, random weights."""
    from expertkit.models.qwen3 import build_qwen3_shape_base

    path = build_qwen3_shape_base(out_dir, layers=layers, seed=seed)
    out.print(escape(f"qwen3-shape base ({layers} layers, random weights) written to {path}"))


# ---------------------------------------------------------------------- training (train.py)
@app.command()
def train(
    expert_dir: ExpertDir,
    base: Annotated[str | None, typer.Option("--base", help="Hub id, local folder, or 'tiny' (default: the "
                                             "manifest's base_model; a resumed run keeps its own).")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder.")] = Path("runs/run"),
    method: Annotated[str | None, typer.Option(help=describe("training.method", "Full for the tiny profile."))]
    = None,
    steps: Annotated[int | None, typer.Option(help=describe("training.steps"))] = None,
    epochs: Annotated[float | None, typer.Option(help=describe("training.epochs"))] = None,
    save_every: Annotated[int | None, typer.Option("--save-every", help=describe("training.save_every"))] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the latest complete checkpoint.")] = False,
    continue_to: Annotated[int | None, typer.Option("--continue-to", help="Extend a finished run to N steps.")]
    = None,
    force: Annotated[bool, typer.Option("--force", help="Train even if lint finds errors.")] = False,
    allow_drift: Annotated[bool, typer.Option("--allow-drift", help="Resume across a contract change.")] = False,
    max_examples: Annotated[int | None, typer.Option("--max-examples", help="Use the first N records.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help=describe("training.batch_size"))] = None,
    learning_rate: Annotated[float | None, typer.Option("--lr", help=describe("training.learning_rate"))] = None,
    seed: Annotated[int | None, typer.Option(help=describe("training.seed"))] = None,
    max_tokens_per_batch: Annotated[int | None, typer.Option(
        "--max-tokens-per-batch", help=describe("training.max_tokens_per_batch"))] = None,
    eval_every: Annotated[int | None, typer.Option(
        "--eval-every", help=describe("training.eval_every", "Scored as compare does."))] = None,
    eval_cases: Annotated[int | None, typer.Option("--eval-cases", help=describe("training.eval_cases"))] = None,
    early_stop: Annotated[int | None, typer.Option("--early-stop", help=describe("training.early_stop"))] = None,
    min_delta: Annotated[float | None, typer.Option("--min-delta", help=describe("training.min_delta"))] = None,
    keep: Annotated[str | None, typer.Option("--keep", help=describe("training.keep"))] = None,
    profile: Annotated[str | None, typer.Option(
        "--profile", help="Named overrides of the manifest's settings: tiny | none (default: tiny on a tiny base).")]
    = None,
    settings: SetOption = None,
) -> None:
    """Fine-tune the expert (answer-only loss) with resumable checkpoints."""
    import os

    from expertkit.core.settings import parse_set
    from expertkit.models.base import check_base_available
    from expertkit.training.train import TRAIN_SECTIONS, TrainOptions, train_expert

    overrides = parse_set(settings or [], TRAIN_SECTIONS)
    expert = _load(expert_dir)
    options = TrainOptions(
        base=base, out_dir=out_dir, profile=profile, settings=overrides,
        method=method, steps=steps, epochs=epochs, save_every=save_every,
        resume=resume, continue_to=continue_to, force=force, allow_drift=allow_drift,
        max_examples=max_examples, batch_size=batch_size, learning_rate=learning_rate, seed=seed,
        max_tokens_per_batch=max_tokens_per_batch,
        eval_every=eval_every, eval_cases=eval_cases, early_stop=early_stop, min_delta=min_delta, keep=keep,
    )
    options.check()
    if not resume and continue_to is None:  # a hub base that cannot load fails now, not after the data work
        check_base_available(base or expert.manifest.base_model)
    result = train_expert(expert, options)
    if int(os.environ.get("RANK", "0")) == 0:  # under accelerate launch, the main process reports
        out.print(escape(str(result)))
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():  # every process leaves the group before exit (no abort)
        dist.destroy_process_group()
    if result.interrupted:
        raise typer.Exit(130)


@import_app.command("spider")
def data_import_spider(
    questions: Annotated[Path, typer.Option("--questions", help="Spider questions (dev.json).")],
    tables: Annotated[Path, typer.Option("--tables", help="Spider schemas (tables.json).")],
    databases: Annotated[Path, typer.Option("--databases", help="Folder of <db_id>/<db_id>.sqlite.")],
    out_file: Annotated[Path, typer.Option("--out", help="JSONL cases to write.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --out file.")] = False,
) -> None:
    """Spider-layout questions as cases (Dialect: sqlite) tied to their SQLite databases."""
    from expertkit.core.fileio import check_output_file
    from expertkit.kinds.sql.spider import import_spider

    check_output_file(out_file, key="--out", force=force, protect=(questions, tables))  # never an input

    result = import_spider(questions, tables, databases, out_file)
    line = f"{result.records} records ({result.databases} databases) -> {result.out}"
    if result.missing:
        missing = ", ".join(f"{k} ({v})" for k, v in sorted(result.missing.items()))
        line += f"; no database file for {missing}: their schema comes from the tables file"
    out.print(escape(line))


@app.command()
def score(
    expert_dir: ExpertDir,
    cases: Annotated[Path, typer.Option("--cases", help="JSONL cases (fields, question, gold answer).")],
    outputs: Annotated[Path, typer.Option("--outputs", help="One output per line, or JSONL with an 'output' key.")],
    variants: Annotated[int | None, typer.Option("--variants", help="SQL: seeded fixture variants (default 3).")]
    = None,
    as_json: JsonFlag = False,
) -> None:
    """Judge outputs from anywhere against the cases, with the same scoring as compare."""
    from expertkit.core.options import MAX_COUNT, check_number
    from expertkit.evaluation.judge import score_file

    check_number(variants, "--variants", ge=0, le=MAX_COUNT)  # 0: the fixture alone

    expert = _load(expert_dir)
    report = score_file(expert, cases, outputs, variants=variants)
    if as_json:
        _print_json(report.to_dict())
        return
    s = report.summary
    table = Table(title=escape(f"score {outputs}: {s['cases']} cases"))
    for col in ("line", "verdict", "valid", "execution_match", "decided_by", "error"):
        table.add_column(col)
    for case in report.cases[:200]:
        table.add_row(str(case["line"]), case["verdict"], str(case["valid"]), str(case["execution_match"]),
                      escape(str(case.get("decided_by") or "")), escape((case["errors"] or [""])[0][:100]))
    out.print(table)

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}%"

    out.print(f"valid {s['valid_count']}/{s['cases']} ({pct(s['valid'])}); execution match "
              f"{s['execution_match_count']}/{s['execution_known']} ({pct(s['execution_match'])}); "
              f"equivalent {pct(s['equivalent'])}; verdicts {s['verdicts']}; {s['seconds']:.1f} s")


# ---------------------------------------------------------------------- comparison (evaluation/compare.py, report.py)
@app.command()
def compare(
    expert_dir: ExpertDir,
    run: Annotated[Path, typer.Option("--run", help="Run folder with checkpoint-N folders.")],
    base: Annotated[str | None, typer.Option("--base", help="Base model (default: the run's).")] = None,
    cases: Annotated[Path | None, typer.Option("--cases", help="JSONL cases (default: the eval set).")] = None,
    checkpoints: Annotated[str | None, typer.Option("--checkpoints", help="Steps, e.g. 100,150.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Report folder (default: RUN/compare).")] = None,
    drift: Annotated[bool, typer.Option("--drift", help="Also score drifted prompts.")] = False,
    engine: Annotated[str, typer.Option("--engine", help="hf | vllm")] = "hf",
    max_cases: Annotated[int | None, typer.Option("--max-cases", help="Score the first N cases.")] = None,
    allow_drift: Annotated[bool, typer.Option("--allow-drift", help="Accept checkpoints of another contract.")]
    = False,
    rescore: Annotated[bool, typer.Option(
        "--rescore", help="Generate again instead of reusing the scores recorded while training.")] = False,
    samples: Annotated[int, typer.Option(
        "--samples", help="Validator-guided decoding: N sampled candidates per case, chosen by vote.")] = 1,
    constrain: ConstrainOption = None,
    settings: Annotated[list[str] | None, typer.Option(
        "--set", metavar="SECTION.KEY=VALUE", help="Override a decoding or evaluation setting of the manifest "
        "(repeatable), e.g. decoding.max_new_tokens=128; the named options win.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Score the base and every checkpoint on the eval set; pick the best; write reports."""
    from expertkit.console import print_compared, progress
    from expertkit.core.settings import parse_set
    from expertkit.evaluation.compare import SETTINGS_SECTIONS, CompareOptions, compare_run

    overrides = parse_set(settings or [], SETTINGS_SECTIONS)
    expert = _load(expert_dir)
    with progress() as bars:
        result = compare_run(expert, CompareOptions(
            run_dir=run, base=base, cases=cases, checkpoints=checkpoints, out_dir=out_dir, drift=drift,
            engine=engine, max_cases=max_cases, allow_drift=allow_drift, rescore=rescore, samples=samples,
            constrain=constrain, settings=overrides,
        ), progress=bars)
    print_compared(result, as_json=as_json)


@app.command()
def quickstart(
    out_dir: Annotated[Path, typer.Option("--out", help="Where the run and reports go.")] = Path("quickstart"),
) -> None:
    """The main job: tiny base, data, CPU training with checkpoints, comparison, reports."""
    from expertkit.quickstart import run_quickstart

    run_quickstart(out_dir)


# ---------------------------------------------------------------------- serving (serve.py)
@app.command()
def serve(
    experts: Annotated[list[str], typer.Argument(help="Expert folders or installed names (NAME[@VERSION]).")],
    base: Annotated[str | None, typer.Option("--base", help="Hub id, local folder, or 'tiny' (default: the base "
                                             "the checkpoints were trained on).")] = None,
    host: Annotated[str, typer.Option(help="Bind address (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    api_key_file: Annotated[Path | None, typer.Option("--api-key-file", help="File holding the bearer key.")]
    = None,
    engine: Annotated[str, typer.Option("--engine", help="hf | vllm")] = "hf",
    allow_drift: Annotated[bool, typer.Option("--allow-drift", help="Serve checkpoints of another contract.")]
    = False,
    constrain: ConstrainOption = None,
    samples: Annotated[int, typer.Option(
        "--samples", help="Validator-guided decoding: N sampled candidates per request, chosen by vote.")] = 1,
    settings: Annotated[list[str] | None, typer.Option(
        "--set", metavar="decoding.KEY=VALUE", help="Override a decoding setting of every expert's manifest "
        "(repeatable), e.g. decoding.temperature=0.5; the named options win.")] = None,
) -> None:
    """Serve several experts over one base model (REST + OpenAI-compatible, streaming too)."""
    from expertkit.core.settings import parse_set
    from expertkit.serving.serve import ServeOptions, run_server

    overrides = parse_set(settings or [], ["decoding"])
    run_server(experts, ServeOptions(base=base, host=host, port=port, api_key_file=api_key_file,
                                     engine=engine, allow_drift=allow_drift, constrain=constrain, samples=samples,
                                     settings=overrides))


# ---------------------------------------------------------------------- asking (ask.py)
@app.command()
def ask(
    expert: Annotated[str, typer.Argument(help="Expert folder or installed NAME[@VERSION].")],
    question: Annotated[str | None, typer.Argument(help="The question (none: an interactive session).")] = None,
    checkpoint: Annotated[Path | None, typer.Option("--checkpoint", help="Checkpoint folder (default for an "
                                                    "installed expert: its own).")] = None,
    field: Annotated[list[str] | None, typer.Option("--field", help="NAME=VALUE (repeatable).")] = None,
    jsonl: Annotated[Path | None, typer.Option("--jsonl", help="Answer every {question, fields} line of FILE.")]
    = None,
    base: Annotated[str | None, typer.Option("--base", help="Base model (default: the checkpoint's).")] = None,
    engine: Annotated[str, typer.Option("--engine", help="hf | vllm")] = "hf",
    constrain: ConstrainOption = None,
    allow_drift: Annotated[bool, typer.Option("--allow-drift", help="Ask a checkpoint of another contract.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON per answer: verdict, validity, errors, tokens, "
                                          "latency (and the vote, with --samples).")] = False,
    samples: Annotated[int, typer.Option(
        "--samples", help="Validator-guided decoding: N sampled candidates per question, chosen by vote.")] = 1,
    settings: Annotated[list[str] | None, typer.Option(
        "--set", metavar="SECTION.KEY=VALUE", help="Override a decoding or evaluation setting of the manifest "
        "(repeatable), e.g. decoding.max_new_tokens=64 or evaluation.batch_size=8.")] = None,
) -> None:
    """Ask a trained expert: one question, an interactive session, or a JSONL file in batches."""
    from expertkit.core.settings import parse_set
    from expertkit.serving.ask import Asker, AskOptions, Question, canonical_fields, read_questions, resolve_target

    if question is not None and jsonl is not None:
        raise ExpertkitError("give a question or --jsonl FILE, not both", key="--jsonl")
    overrides = parse_set(settings or [], ["decoding", "evaluation"])
    loaded, ck = resolve_target(expert, checkpoint)
    if overrides:
        loaded = loaded.with_settings(overrides)
    defaults = _parse_field_options(field)
    if jsonl is not None:
        items = read_questions(jsonl, defaults)
        for item in items:  # every line checked before the model is loaded
            canonical_fields(loaded, item, jsonl)
    else:
        canonical_fields(loaded, Question(defaults, question or ""))
    asker = Asker(loaded, AskOptions(checkpoint=ck, base=base, engine=engine, constrain=constrain,
                                     allow_drift=allow_drift, samples=samples))

    def show(answer: Any, *, one_line: bool) -> None:
        if as_json:
            text = json.dumps(answer.to_dict(), ensure_ascii=False, indent=None if one_line else 2)
            sys.stdout.write(text + "\n")
        else:
            sys.stdout.write((answer.answer or answer.output) + "\n")
        sys.stdout.flush()

    if jsonl is not None:
        for answer in asker.ask(items, jsonl):
            show(answer, one_line=True)
        return
    if question is not None:
        show(asker.ask([Question(defaults, question)])[0], one_line=False)
        return
    _ask_session(asker, defaults, lambda a: show(a, one_line=True))


def _ask_session(asker: Any, fields: dict[str, str], show: Any) -> None:
    """One question per line until end of input (``exit`` or Ctrl-D); line editing and history on a terminal."""
    from expertkit.serving.ask import Question

    interactive = sys.stdin.isatty()
    if interactive:
        import readline  # noqa: F401  (input() gets line editing and history)

        given = ", ".join(f"{k}={v}" for k, v in fields.items()) or "none"
        console.print(escape(f"asking {asker.expert.name} ({asker.checkpoint.path}); fields: {given}; "
                             "one question per line, Ctrl-D or 'exit' to end"))
    while True:
        try:
            line = input("> " if interactive else "")
        except EOFError:
            break
        text = line.strip()
        if text in ("exit", "quit"):
            break
        if not text:
            continue
        try:
            show(asker.ask([Question(fields, text)])[0])
        except ExpertkitError as exc:  # a bad question ends neither the session nor its history
            console.print(f"[red]error: {escape(str(exc))}[/red]")


# ---------------------------------------------------------------------- packages (package.py, scaffold.py)
@app.command()
def package(
    expert_dir: ExpertDir,
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="The checkpoint folder to ship.")],
    out_file: Annotated[Path, typer.Option("--out", help="NAME.expert archive to write.")],
    allow_drift: Annotated[bool, typer.Option("--allow-drift", help="Package a checkpoint of another contract.")]
    = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --out file.")] = False,
) -> None:
    """Pack manifest, contract, chat template, adapter and eval summary into a .expert archive."""
    from expertkit.packaging.package import package_expert

    expert = _load(expert_dir)
    path = package_expert(expert, checkpoint, out_file, allow_drift=allow_drift, force=force)
    out.print(escape(f"packaged {path}"))


@app.command()
def install(archive: Annotated[Path, typer.Argument(help="A .expert archive.")]) -> None:
    """Verify and install a .expert archive into $EXPERTKIT_HOME."""
    from expertkit.packaging.package import install_package

    installed = install_package(archive)
    out.print(escape(f"installed {installed.name}@{installed.version} -> {installed.path}"))


@app.command("list")
def list_cmd(as_json: JsonFlag = False) -> None:
    """List installed experts."""
    from expertkit.packaging.package import list_installed

    items = list_installed()
    if as_json:
        _print_json([i.to_dict() for i in items])
        return
    table = Table(title="installed experts")
    for col in ("name", "version", "fingerprint", "path"):
        table.add_column(col)
    for i in items:
        table.add_row(escape(i.name), escape(i.version), i.fingerprint, escape(str(i.path)))
    out.print(table)


@app.command()
def remove(spec: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")]) -> None:
    """Remove an installed expert (all versions, or one)."""
    from expertkit.packaging.package import remove_installed

    for removed in remove_installed(spec):
        out.print(escape(f"removed {removed}"))


@app.command()
def new(
    name: Annotated[str, typer.Argument(help="Expert name (folder experts/NAME).")],
    field: Annotated[list[str] | None, typer.Option(
        "--field", help="NAME=VALUE: a starting field's value (the kind's routing fields need one); NAME[:required]: "
                        "an extra free-text field (repeatable).")] = None,
    output_kind: Annotated[str, typer.Option("--output-kind", help=" | ".join(kind_names()))] = DEFAULT_KIND,
    root: Annotated[Path, typer.Option("--root", help="Folder holding experts/.")] = Path("."),
    dialect: Annotated[str | None, typer.Option("--dialect", help="Same as --field NAME=VALUE for the starting field "
                                                                  "named like this option.")] = None,
    task: Annotated[str | None, typer.Option("--task", help="Same as --field NAME=VALUE for the starting field "
                                                            "named like this option.")] = None,
) -> None:
    """Scaffold experts/NAME with a manifest, a README with the exact prompt, empty data files."""
    from expertkit.authoring.scaffold import new_expert

    by_option = {option: value for option, value in (("dialect", dialect), ("task", task)) if value is not None}
    path = new_expert(name, values=by_option, fields=field or [], output_kind=output_kind, root=root)
    out.print(escape(f"created {path}"))


def main() -> None:
    """Entry point: one-line errors, exit 2; ``--debug`` or EXPERTKIT_DEBUG=1 shows tracebacks."""
    debug = "--debug" in sys.argv or os.environ.get("EXPERTKIT_DEBUG") == "1"
    # idle OpenMP threads sleep instead of spinning: small models on shared CPU cores train several times faster
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from expertkit.console import print_messages

    print_messages()  # the library logs its progress and warnings; the command line prints them
    try:
        try:
            rc = app(standalone_mode=False)
        except OSError as exc:  # PermissionError, FileExistsError, a full disk: FILE: reason, one line
            raise from_os_error(exc) from exc
        except RecursionError as exc:
            raise ExpertkitError("input nested too deeply") from exc
    except ExpertkitError as exc:
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"expertkit: error: {exc}\n")
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("expertkit: interrupted\n")
        sys.exit(130)
    except Exception as exc:  # click usage errors and anything unexpected: one line, never a traceback
        import click

        if isinstance(exc, click.exceptions.Abort | typer.Abort):
            sys.stderr.write("expertkit: aborted\n")
            sys.exit(130)
        # typer bundles its own copy of click: its usage errors are TyperExceptions, not click's
        if isinstance(exc, click.ClickException | typer.TyperException) and hasattr(exc, "format_message"):
            message = one_line(exc.format_message())
            ctx = getattr(exc, "ctx", None)
            hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            if message:  # empty when the help was printed for a command given no arguments
                sys.stderr.write(f"expertkit: error: {message}{hint}\n")
            sys.exit(getattr(exc, "exit_code", 2))
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"expertkit: error: {type(exc).__name__}: {one_line(str(exc))[:500]}"
                         " (run with --debug for the traceback)\n")
        sys.exit(2)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
