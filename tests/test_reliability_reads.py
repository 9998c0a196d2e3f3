"""Unbounded reads and hangs: every reader takes regular files only and enforces its limits while reading.

``/dev/zero`` (endless), a FIFO (blocks forever) and a 1 GiB file without a newline (sparse: no disk used) go
to each reader in a subprocess under an address-space limit (``RLIMIT_AS``) and a timeout: the bound is the
limit, never a measured time. Before the fix ``/dev/zero`` grew until out of memory, a FIFO hung, and the
1 GiB line was read whole (2 GB peak) before the "line too long" error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from _reliability import BADINPUT, CliResult, assert_one_line_error, run_subprocess, write_checkpoint

from expertkit.core.data import read_examples
from expertkit.core.errors import ExpertkitError
from expertkit.core.fileio import MAX_LINE_BYTES, iter_jsonl, read_text
from expertkit.expert import Expert

#: Address space each command may use: the CLI with its libraries needs well under 1 GiB here.
MEMORY_LIMIT = 1536 * 1024 * 1024
GIB = 1024**3


def _dev_zero(tmp: Path) -> Path:
    return Path("/dev/zero")


def _fifo(tmp: Path) -> Path:
    path = tmp / "a.fifo"
    if not path.exists():
        os.mkfifo(path)
    return path


def _gib_without_newline(tmp: Path) -> Path:
    path = tmp / "one_line.jsonl"
    with path.open("wb") as fh:
        fh.truncate(GIB)  # sparse zeros: one 1 GiB line
    return path


SOURCES: dict[str, tuple[Callable[[Path], Path], list[str]]] = {
    "/dev/zero": (_dev_zero, ["is a device, expected a regular file"]),
    "a FIFO": (_fifo, ["is a FIFO, expected a regular file"]),
    "1 GiB without a newline": (_gib_without_newline, [":1:", "over the 4194304-byte limit"]),
}


def _world(tmp: Path) -> dict[str, Any]:
    expert = Path(shutil.copytree(BADINPUT / "expert", tmp / "expert"))
    run = tmp / "run"
    write_checkpoint(run / "checkpoint-1", Expert.load(expert))
    fifo_expert = Path(shutil.copytree(BADINPUT / "expert", tmp / "fifo-expert"))
    (fifo_expert / "expert.yaml").unlink()
    os.mkfifo(fifo_expert / "expert.yaml")
    return {"expert": expert, "run": run, "fifo_expert": fifo_expert}


def _args(reader: str, target: Path, world: dict[str, Any]) -> list[str | Path]:
    expert = world["expert"]
    return {
        "lint --data": ["lint", expert, "--data", target],
        "check-prompt --prompts": ["check-prompt", expert, "--prompts", target],
        "compare --cases": ["compare", expert, "--run", world["run"], "--cases", target, "--base", "/nonexistent"],
        "score --outputs": ["score", expert, "--cases", expert / "data" / "eval.jsonl", "--outputs", target],
        "data import spider --questions --tables": ["data", "import", "spider", "--questions", target, "--tables",
                                                    target, "--databases", world["run"], "--out",
                                                    world["run"] / "cases.jsonl"],
        "serve --api-key-file": ["serve", f"{expert}:{world['run'] / 'checkpoint-1'}", "--api-key-file", target,
                                 "--base", "/nonexistent", "--port", "0"],
    }[reader]


#: (reader, source): every dataset-like reader with every endless or blocking source; the key file and the
#: manifest with the two that are not line-based.
CASES = [
    *((reader, source) for reader in ("lint --data", "check-prompt --prompts", "compare --cases")
      for source in SOURCES),
    *((reader, source) for reader in ("serve --api-key-file", "score --outputs",
                                      "data import spider --questions --tables") for source in ("/dev/zero", "a FIFO")),
    ("render EXPERT (the manifest)", "/dev/zero"),
    ("render EXPERT (the manifest)", "a FIFO"),
]


def _run(case: tuple[str, str], tmp: Path, world: dict[str, Any]) -> tuple[CliResult, Path]:
    reader, source = case
    make, _ = SOURCES[source]
    target = make(tmp)
    if reader.startswith("render"):
        target = target if source == "/dev/zero" else world["fifo_expert"] / "expert.yaml"
        args: list[str | Path] = ["render", target if source == "/dev/zero" else world["fifo_expert"],
                                  "--question", "q"]
    else:
        args = _args(reader, target, world)
    try:
        return run_subprocess(args, timeout=90, memory_limit=MEMORY_LIMIT), target
    except subprocess.TimeoutExpired:  # a reader that blocks (before the fix: a FIFO)
        return CliResult(124, "", "timed out after 90 s"), target


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, str], tuple[CliResult, Path]]]:
    tmp = tmp_path_factory.mktemp("unbounded-reads")
    world = _world(tmp)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {case: pool.submit(_run, case, tmp, world) for case in CASES}
        yield {case: future.result() for case, future in futures.items()}


@pytest.mark.parametrize("case", CASES, ids=[f"{r} <- {s}" for r, s in CASES])
def test_endless_and_blocking_files_are_refused_within_bounds(results: dict[tuple[str, str], Any],
                                                              case: tuple[str, str]) -> None:
    result, _ = results[case]
    _, needles = SOURCES[case[1]]
    assert "MemoryError" not in result.stderr
    if case == ("lint --data", "1 GiB without a newline"):  # lint reports the line and reads on, still bounded
        assert result.code == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert "counts: {'parse_error': 1}" in result.stdout and needles[1] in result.stdout, result.stdout
        return
    assert_one_line_error(result, *needles)


def test_the_line_limit_is_enforced_while_reading(tmp_path: Path) -> None:
    """The 4 MiB line limit reads at most a few MiB of a line, whatever its length (the library path)."""
    path = _gib_without_newline(tmp_path)
    with pytest.raises(ExpertkitError, match="over the 4194304-byte limit"):
        list(iter_jsonl(path))
    big = tmp_path / "big.yaml"
    with big.open("wb") as fh:
        fh.truncate(80 * 1024 * 1024)
    with pytest.raises(ExpertkitError, match="over the 67108864-byte limit"):
        read_text(big)


def test_lint_reports_a_line_over_the_limit_and_reads_on(tmp_path: Path) -> None:
    """For lint a line over 4 MiB is a parse_error finding at its line (its rest skipped, never held); the lines
    after it are read. train and compare (``bad_lines="raise"``) still refuse the file, naming the line."""
    good = (BADINPUT / "expert" / "data" / "train.jsonl").read_text().splitlines()[0]
    path = tmp_path / "data.jsonl"
    with path.open("w") as fh:
        fh.write(good + "\n" + '{"messages": "' + "x" * (MAX_LINE_BYTES + 1024) + '"}\n')
        fh.write('{"messages": [\n' + good + "\n")
    examples, findings = read_examples(path, bad_lines="finding")
    assert [e.line for e in examples] == [1, 4]
    assert [(f.line, f.code) for f in findings] == [(2, "parse_error"), (3, "parse_error")]
    assert findings[0].message == f"line is over the {MAX_LINE_BYTES}-byte limit"
    # the truncated line 3 ends at column 15: the error names it, not column 1 of the line end
    assert findings[1].message.startswith("broken JSON: ") and findings[1].message.endswith("(column 15)")
    with pytest.raises(ExpertkitError, match=r"data.jsonl:2: line is over the 4194304-byte limit"):
        read_examples(path)
