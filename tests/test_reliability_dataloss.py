"""Data loss: no command deletes or overwrites what it did not write, and every output place is checked before
the work starts.

Before the fix ``base tiny --out DIR`` emptied DIR (``shutil.rmtree``), ``--out .`` the current folder;
``package --out experts/x/expert.yaml`` replaced the expert's manifest with an archive; ``compare --out`` at an
existing file or a read-only folder failed only after all the scoring.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from _reliability import (
    BADINPUT,
    TINY_CORPUS,
    assert_one_line_error,
    read_only,
    run_main,
    snapshot,
    tiny_base,
    write_checkpoint,
)

import expertkit.evaluation.compare
import expertkit.models.base
import expertkit.training.train
from expertkit.expert import Expert
from expertkit.models.base import TINY_MARKER, build_tiny_base


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    expert = Path(shutil.copytree(BADINPUT / "expert", tmp_path / "expert"))
    run = tmp_path / "run"
    checkpoint = write_checkpoint(run / "checkpoint-1", Expert.load(expert))
    (run / "run.json").write_text(json.dumps({"expert": "badinput", "base": "tiny"}))
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "chapter1.tex").write_text("years of work")
    sql = Path(shutil.copytree(Path(__file__).resolve().parents[1] / "experts" / "sql", tmp_path / "sql"))
    with (sql / "data" / "train.jsonl").open("a") as fh:
        fh.write('{"fields": {"Dialect": "postgres"}, "question": "a record written by hand", "answer": "SELECT 1"}\n')
    existing = tmp_path / "existing.expert"
    existing.write_bytes(b"an earlier archive the user keeps")

    def no_scoring(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("scoring started before the output place was checked")

    monkeypatch.setattr(expertkit.evaluation.compare, "create_engine", no_scoring)
    monkeypatch.setattr(expertkit.models.base, "tiny_base_path", no_scoring)  # quickstart's work
    monkeypatch.setattr(expertkit.training.train, "train_expert", no_scoring)
    return {"tmp": tmp_path, "expert": expert, "run": run, "checkpoint": checkpoint, "thesis": thesis,
            "existing": existing, "sql": sql}


#: case -> (arguments, needles of the one error line); ``{name}`` are the world's paths.
CASES: dict[str, tuple[list[str], list[str]]] = {
    "base tiny --out a folder of the user's files": (["base", "tiny", "--out", "{thesis}"],
                                                      ["thesis", "--out", "not empty", "chapter1.tex"]),
    "base tiny --out . (the current folder)": (["base", "tiny", "--out", "."], [".", "--out", "not empty"]),
    "base tiny --out an existing file": (["base", "tiny", "--out", "{existing}"], ["--out", "is a file"]),
    "package --out an existing file": (["package", "{expert}", "--checkpoint", "{checkpoint}", "--out", "{existing}"],
                                       ["existing.expert", "--out", "already exists", "--force"]),
    "package --out the expert's own manifest": (
        ["package", "{expert}", "--checkpoint", "{checkpoint}", "--out", "{expert}/expert.yaml", "--force"],
        ["expert.yaml", "--out", "lies inside"]),
    "package --out inside the checkpoint": (
        ["package", "{expert}", "--checkpoint", "{checkpoint}", "--out", "{checkpoint}/x.expert"],
        ["--out", "lies inside"]),
    "compare --out an existing file": (["compare", "{expert}", "--run", "{run}", "--out", "{existing}"],
                                       ["existing.expert", "--out", "is a file"]),
    "compare --out a read-only folder": (["compare", "{expert}", "--run", "{run}", "--out", "{tmp}/locked"],
                                         ["locked", "--out", "permission denied"]),
    "data generate over a dataset edited by hand": (["data", "generate", "{sql}"],
                                                    ["train.jsonl", "data.train", "different dataset", "--force"]),
    "quickstart --out a folder of the user's files": (["quickstart", "--out", "{thesis}"],
                                                      ["thesis", "--out", "not empty", "chapter1.tex"]),
    "data import spider --out an existing file": (
        ["data", "import", "spider", "--questions", "{expert}/expert.yaml", "--tables", "{expert}/expert.yaml",
         "--databases", "{tmp}", "--out", "{existing}"], ["existing.expert", "--out", "already exists", "--force"]),
    "compare --out a folder of the user's files": (["compare", "{expert}", "--run", "{run}", "--out", "{thesis}"],
                                                   ["thesis", "--out", "not empty"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_are_checked_first_and_nothing_is_lost(case: str, world: dict[str, Path],
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    args, needles = CASES[case]
    if "read-only" in case:
        read_only(monkeypatch, world["tmp"] / "locked")
    monkeypatch.chdir(world["thesis"])  # `--out .` is the user's folder
    before = snapshot(world["tmp"])
    result = run_main([a.format(**{k: str(v) for k, v in world.items()}) for a in args], capsys, monkeypatch)
    assert_one_line_error(result, *needles)
    assert snapshot(world["tmp"]) == before  # nothing deleted, overwritten or left behind


def test_package_force_overwrites_an_earlier_archive(world: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_main(["package", world["expert"], "--checkpoint", world["checkpoint"], "--out", world["existing"],
                       "--force"], capsys, monkeypatch)
    assert result.code == 0, result.stderr
    assert world["existing"].read_bytes()[:2] == b"\x1f\x8b"  # now a gzip archive


def test_base_tiny_replaces_only_its_own_earlier_output(tmp_path_factory: pytest.TempPathFactory,
                                                        tmp_path: Path) -> None:
    earlier = Path(shutil.copytree(tiny_base(tmp_path_factory), tmp_path / "tiny"))
    again = build_tiny_base(earlier, corpus=TINY_CORPUS, vocab_size=400, seed=1)
    assert json.loads((again / TINY_MARKER).read_text())["seed"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (build_tiny_base(empty, corpus=TINY_CORPUS, vocab_size=400) / TINY_MARKER).is_file()
