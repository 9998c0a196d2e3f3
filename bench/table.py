"""The latest CPU figures as the Markdown table of ``docs/benchmarks.md``.

    .venv/bin/python -m bench.table [--results bench/results]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.common import RESULTS
from expertkit.core.fileio import read_log_rows


def latest(results: Path, bench: str) -> dict[str, Any] | None:
    rows = [row for row in read_log_rows(results / f"{bench}.jsonl") if isinstance(row, dict) and not row.get("smoke")]
    return rows[-1] if rows else None


def _latest_per_expert(results: Path, bench: str) -> list[dict[str, Any]]:
    """The latest row of each expert in ``bench``'s log."""
    rows: dict[str, dict[str, Any]] = {}
    for row in read_log_rows(results / f"{bench}.jsonl"):
        if isinstance(row, dict) and "expert" in row and "train_scored" in row:
            rows[row["expert"]] = row
    return list(rows.values())


def _yes(flag: bool | None) -> str:
    return "—" if flag is None else ("yes" if flag else "**no**")


def _when(row: dict[str, Any]) -> str:
    return row.get("date", "?")[:16].replace("T", " ")


def table(results: Path) -> str:
    lines = [
        "| bench | figure | expertkit | baseline | expertkit / baseline | target | met | run (UTC) |",
        "| --- | --- | ---: | ---: | ---: | --- | --- | --- |",
    ]
    machine = None
    lint = latest(results, "lint")
    if lint:
        machine = lint.get("machine")
        lines.append(f"| lint | {lint['records']:,} records linted | {lint['seconds']} s "
                     f"({lint['records_per_s']:,} records/s) | — | — | ≤ {lint['target_seconds']} s | "
                     f"{_yes(lint['meets_target'])} | {_when(lint)} |")
    shipped = latest(results, "lint_shipped")
    if shipped:
        lines.append(f"| lint, shipped elastic dataset | {shipped['records']:,} records linted | "
                     f"{shipped['seconds']} s "
                     f"({shipped['records_per_s']:,} records/s) | — | — | ≤ {shipped['target_seconds']} s | "
                     f"{_yes(shipped['meets_target'])} | {_when(shipped)} |")
    train = latest(results, "train")
    if train:
        machine = train.get("machine")
        for row in train["rows"]:
            ek, bl = row["expertkit"], row["baseline"]
            label = "LoRA r16, like for like" if row["row"] == "lora" else "full (the tiny base's default)"
            lines.append(
                f"| train, {label} | training tokens/s (batch {train['batch_size']}, {ek['steps']} steps a side; "
                f"median step) | {ek['tokens_per_s']:,.0f} ({ek['median_step_s'] * 1000:.0f} ms) | "
                f"{bl['tokens_per_s']:,.0f} ({bl['median_step_s'] * 1000:.0f} ms) | **{row['ratio']:.2f}×** "
                f"(median steps: {row['median_ratio']:.2f}×) | > 1× | {_yes(row['ratio'] > 1)} | {_when(train)} |")
    compare = latest(results, "compare")
    if compare:
        machine = compare.get("machine")
        ek, bl = compare["expertkit"], compare["baseline"]
        others = ", ".join(f"{k.replace('threads_', '')} threads: {v}×" for k, v in compare.get("ratios", {}).items())
        lines.append(
            f"| compare | outputs/s ({compare['cases']} cases × base + {compare['checkpoints']} checkpoints, "
            f"{compare['max_new_tokens']} new tokens; tokens/s) | {ek['outputs_per_s']:.1f} "
            f"({ek['tokens_per_s']:,.0f}) | {bl['outputs_per_s']:.2f} ({bl['tokens_per_s']:,.0f}), "
            f"{bl['torch_threads']} thread(s) | **{compare['ratio']:.1f}×** ({others}) | ≥ "
            f"{compare['target_ratio']}× | {_yes(compare['meets_target'])} | {_when(compare)} |")
    serve = latest(results, "serve")
    if serve:
        machine = serve.get("machine")
        lines.append(
            f"| serve | {serve['requests']:,} requests, {serve['clients']} clients, 2 experts (server threads: "
            f"{serve.get('server_threads', 'default')}) | {serve['requests_per_s']} requests/s, p50 "
            f"{serve['latency_p50_ms']:,.0f} ms, p99 {serve['latency_p99_ms']:,.0f} ms, {serve['errors']} errors"
            f"{', ' + str(serve['not_sent']) + ' not sent' if serve.get('not_sent') else ''} | — | — | 0 errors | "
            f"{_yes(serve['meets_target'])} | {_when(serve)} |")
    for quality in _latest_per_expert(results, "quality"):
        scored, plain = quality["train_scored"], quality.get("train_plain")
        share = scored["eval_share"]
        lines.append(
            f"| quality, {quality['expert']} on the tiny base | `train` with every checkpoint scored (quickstart's "
            f"settings): share of the training wall time spent scoring | {scored['evaluations']} evaluations, "
            f"{scored['eval_s']} s of {scored['train_s']} s, steps {scored['steps']} of {scored['planned_steps']} | "
            + (f"{plain['train_s']} s unscored, {plain['steps']} steps" if plain else "—")
            + f" | **{share:.0%}** scoring | ≤ 20 % | {_yes(share <= 0.2)} | {_when(quality)} |")
    if machine:
        lines.append("")
        lines.append(f"Machine: {machine.get('cpu')}, {machine.get('cores')} cores, Python {machine.get('python')}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    print(table(args.results))


if __name__ == "__main__":
    main()
