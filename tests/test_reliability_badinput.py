"""Bad input to every CLI command that reads it: one line naming file (line, key), exit 2, nothing written.

The corpus lives in ``tests/badinput/`` (the 10 MB line and the 10^5-deep nesting are made in tmp). Most
cases run ``expertkit.cli.main()`` in this process; one subprocess per command checks the real thing.
Conventions: ``lint`` reports every line that is not a record (broken JSON, invalid UTF-8, a lone surrogate,
nesting too deep, a list record, missing or wrong-typed keys) as a ``parse_error`` finding at its line and goes
on (exit 1), a line over the size limit too; only a file it cannot read (missing, a folder, empty) exits 2. The
other commands stop at the first bad line (exit 2; ``train`` and ``compare`` lint first, and still do); a UTF-8
BOM is stripped.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from _reliability import (
    BADINPUT,
    CliResult,
    assert_one_line_error,
    copy_expert,
    run_main,
    run_subprocess,
    snapshot,
    tiny_base,
    write_checkpoint,
)

from expertkit.expert import Expert
from expertkit.packaging.package import package_expert

HUGE_LINE_BYTES = 10 * 1024 * 1024
DEEP = 100_000


# ---------------------------------------------------------------------- the corpus
def _corpus_file(name: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        return Path(shutil.copy(BADINPUT / "data" / name, tmp / name))
    return make


def _huge_line(tmp: Path) -> Path:
    first = (BADINPUT / "expert" / "data" / "train.jsonl").read_text().splitlines()[0]
    path = tmp / "huge_line.jsonl"
    with path.open("w") as fh:
        fh.write(first + "\n" + '{"messages": "' + "x" * HUGE_LINE_BYTES + '"}\n')
    return path


def _deep_nesting(tmp: Path) -> Path:
    first = (BADINPUT / "expert" / "data" / "train.jsonl").read_text().splitlines()[0]
    path = tmp / "deep_nesting.jsonl"
    path.write_text(first + "\n" + "[" * DEEP + "]" * DEEP + "\n")
    return path


def _missing(tmp: Path) -> Path:
    return tmp / "no_such_file.jsonl"


def _directory(tmp: Path) -> Path:
    path = tmp / "a_folder.jsonl"
    path.mkdir()
    return path


#: Dataset files: how to make them, and per command ``(exit code, needles)``; lint's exit 1 cases are one
#: ``parse_error`` finding, needles ``[line, text of its message]``.
DATA_CASES: dict[str, tuple[Callable[[Path], Path], dict[str, tuple[int, list[str]]]]] = {
    "empty": (_corpus_file("empty.jsonl"), {
        "lint": (2, ["no records"]), "check-prompt": (2, ["no prompts"]), "compare": (2, ["no records"]),
        "train": (2, ["no records"])}),
    "blank_lines": (_corpus_file("blank_lines.jsonl"), {
        "lint": (2, ["no records"]), "check-prompt": (2, ["no prompts"]), "compare": (2, ["no records"]),
        "train": (2, ["no records"])}),
    "invalid_utf8": (_corpus_file("invalid_utf8.jsonl"), {
        **dict.fromkeys(("check-prompt", "compare", "train"), (2, [":2:", "invalid UTF-8"])),
        "lint": (1, ["2", "invalid UTF-8"])}),
    "broken_json": (_corpus_file("broken_json.jsonl"), {
        **dict.fromkeys(("check-prompt", "compare", "train"), (2, [":3:", "broken JSON"])),
        "lint": (1, ["3", "broken JSON"])}),
    "lone_surrogate": (_corpus_file("lone_surrogate.jsonl"), {
        **dict.fromkeys(("check-prompt", "compare", "train"), (2, [":2:", "surrogate"])),
        "lint": (1, ["2", "surrogate"])}),
    "huge_line": (_huge_line, {
        **dict.fromkeys(("check-prompt", "compare", "train"), (2, [":2:", "-byte limit"])),
        "lint": (1, ["2", "-byte limit"])}),
    "deep_nesting": (_deep_nesting, {
        **dict.fromkeys(("check-prompt", "compare", "train"), (2, [":2:", "nested too deeply"])),
        "lint": (1, ["2", "nested too deeply"])}),
    "list_record": (_corpus_file("list_record.jsonl"), {
        "lint": (1, ["2", "record is a list"]), "check-prompt": (2, [":2:", "messages"]),
        "compare": (2, [":2:", "record is a list"]), "train": (2, ["lint found", "parse_error"])}),
    "missing_keys": (_corpus_file("missing_keys.jsonl"), {
        "lint": (1, ["2", "none of the keys"]), "check-prompt": (2, [":2:", "messages"]),
        "compare": (2, [":2:", "none of the keys"]), "train": (2, ["lint found", "parse_error"])}),
    "wrong_types": (_corpus_file("wrong_types.jsonl"), {
        "lint": (1, ["2", "key 'messages'"]), "check-prompt": (2, [":2:", "messages"]),
        "compare": (2, [":2:", "key 'messages'"]), "train": (2, ["lint found", "parse_error"])}),
    "nonexistent": (_missing, dict.fromkeys(("lint", "check-prompt", "compare", "train"), (2, ["no such file"]))),
    "directory": (_directory, dict.fromkeys(("lint", "check-prompt", "compare", "train"), (2, ["is a directory"]))),
}
DATA_COMMANDS = ("lint", "check-prompt", "compare", "train")

#: Manifests (``tests/badinput/manifests``) and the needles of the error line; every command that loads an
#: expert is tried with each.
MANIFEST_CASES: dict[str, list[str]] = {
    "unknown_key.yaml": ["expert.yaml:2:", "colour", "unknown key"],
    "wrong_type.yaml": ["expert.yaml:12:", "training.max_length", "valid integer"],
    "missing_file.yaml": ["expert.yaml", "output.resources.json_schema", "does not exist"],
    "missing_key.yaml": ["expert.yaml:1:", "name", "required key is missing"],
    "not_a_mapping.yaml": ["expert.yaml", "must be a mapping"],
    "broken_yaml.yaml": ["expert.yaml:10:", "not valid YAML"],
    "empty.yaml": ["expert.yaml", "must be a mapping"],
    "invalid_utf8.yaml": ["expert.yaml:10:", "invalid UTF-8"],
    "alias_bomb.yaml": ["expert.yaml:2:", "unknown key"],
    "<nonexistent folder>": ["no such expert folder"],
    "<expert.yaml is a folder>": ["expert.yaml", "is a directory"],
}


# ---------------------------------------------------------------------- the world the commands run in
@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_base(tmp_path_factory)


def make_run(root: Path, expert_dir: Path) -> Path:
    """A run folder with one complete (placeholder) checkpoint: enough for compare to reach the cases."""
    run = root / "run"
    write_checkpoint(run / "checkpoint-1", Expert.load(expert_dir))
    (run / "run.json").write_text(json.dumps({"expert": "badinput", "base": "tiny"}))
    return run


def command_args(command: str, expert_dir: Path, target: Path, tmp: Path, base: Path) -> list[str | Path]:
    """The arguments that make ``command`` read ``target`` as its dataset-like input."""
    if command == "lint":
        return ["lint", expert_dir, "--data", target]
    if command == "check-prompt":
        return ["check-prompt", expert_dir, "--prompts", target]
    if command == "compare":
        return ["compare", expert_dir, "--run", make_run(tmp, expert_dir), "--cases", target]
    train = expert_dir / "data" / "train.jsonl"
    train.unlink()
    if target.exists():
        target.rename(train)
    return ["train", expert_dir, "--base", base, "--out", tmp / "train-run", "--steps", "1"]


# ---------------------------------------------------------------------- datasets, prompts, cases
@pytest.mark.parametrize("command", DATA_COMMANDS)
@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_bad_dataset_files(case: str, command: str, tmp_path: Path, base: Path, capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    make, expected = DATA_CASES[case]
    code, needles = expected[command]
    expert_dir = copy_expert(tmp_path / "expert")
    target = make(tmp_path)
    args = command_args(command, expert_dir, target, tmp_path, base)
    shown = target if command != "train" else expert_dir / "data" / "train.jsonl"
    before = snapshot(tmp_path)
    result = run_main([*args, "--json"] if command == "lint" else args, capsys, monkeypatch)
    if code == 1:  # lint: a line that is not a record is a finding, and the other lines are linted
        assert result.code == 1, result.stderr
        report = json.loads(result.stdout)["reports"][0]
        errors = [f for f in report["findings"] if f["severity"] == "error"]
        assert [(f["line"], f["code"]) for f in errors] == [(int(needles[0]), "parse_error")]
        assert needles[1] in errors[0]["message"]
        lines = shown.read_bytes().splitlines()
        assert report["records"] == sum(1 for line in lines if line.strip()) == len(lines)
        assert report["validated"] == len(lines) - 1  # every other record was linted
    else:
        assert_one_line_error(result, str(shown), *needles)
    assert snapshot(tmp_path) == before  # no run folder, no compare reports, no temp files
    assert not (tmp_path / "train-run").exists() and not (tmp_path / "run" / "compare").exists()


def _without_bom(tmp: Path) -> tuple[Path, Path]:
    bom = Path(shutil.copy(BADINPUT / "data" / "bom.jsonl", tmp / "bom.jsonl"))
    raw = bom.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    plain = tmp / "plain.jsonl"
    plain.write_bytes(raw[3:])
    return bom, plain


@pytest.mark.parametrize("command", ["lint", "check-prompt"])
def test_a_bom_is_stripped_and_changes_nothing(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    expert_dir = copy_expert(tmp_path / "expert")
    bom, plain = _without_bom(tmp_path)
    option = "--data" if command == "lint" else "--prompts"
    results = [run_main([command, expert_dir, option, path, "--json"], capsys, monkeypatch) for path in (bom, plain)]
    assert [r.code for r in results] == [0, 0], results[0].stderr
    with_bom, without = (json.loads(r.stdout) for r in results)
    if command == "lint":
        for report in (with_bom["reports"][0], without["reports"][0]):
            report.pop("path")
    assert with_bom == without


def test_a_bom_is_stripped_from_cases_manifests_and_training_data(tmp_path: Path) -> None:
    from expertkit.core.data import load_examples
    from expertkit.core.manifest import load_manifest

    bom, plain = _without_bom(tmp_path)
    assert load_examples(bom) == load_examples(plain)
    (tmp_path / "m1").mkdir()
    (tmp_path / "m2").mkdir()
    raw = (BADINPUT / "manifests" / "bom.yaml").read_bytes()
    (tmp_path / "m1" / "expert.yaml").write_bytes(raw)
    (tmp_path / "m2" / "expert.yaml").write_bytes(raw[3:])
    assert raw.startswith(b"\xef\xbb\xbf") and load_manifest(tmp_path / "m1") == load_manifest(tmp_path / "m2")


# ---------------------------------------------------------------------- manifests, for every command
def manifest_commands(tmp: Path, expert_dir: Path) -> dict[str, list[str | Path]]:
    """Every command that loads an expert, pointed at ``expert_dir``."""
    checkpoint = tmp / "ck" / "checkpoint-1"
    return {
        "render": ["render", expert_dir, "--field", "Dialect=json", "--field", "Task=extract", "--question", "q"],
        "validate": ["validate", expert_dir, "--output", "{}", "--field", "Dialect=json", "--field", "Task=extract"],
        "lint": ["lint", expert_dir],
        "check-prompt": ["check-prompt", expert_dir, "--prompt", "x"],
        "data generate": ["data", "generate", expert_dir, "--out-dir", tmp / "generated"],
        "train": ["train", expert_dir, "--out", tmp / "train-run", "--steps", "1"],
        "compare": ["compare", expert_dir, "--run", checkpoint.parent],
        "package": ["package", expert_dir, "--checkpoint", checkpoint, "--out", tmp / "out.expert"],
        "serve": ["serve", f"{expert_dir}:{checkpoint}", "--port", "0"],
    }


def break_manifest(case: str, tmp: Path) -> Path:
    expert_dir = copy_expert(tmp / "expert")
    manifest = expert_dir / "expert.yaml"
    if case == "<nonexistent folder>":
        shutil.rmtree(expert_dir)
    elif case == "<expert.yaml is a folder>":
        manifest.unlink()
        manifest.mkdir()
    else:
        shutil.copy(BADINPUT / "manifests" / case, manifest)
    return expert_dir


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_bad_manifests_in_every_command(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    good = copy_expert(tmp_path / "good")
    write_checkpoint(tmp_path / "ck" / "checkpoint-1", Expert.load(good))
    expert_dir = break_manifest(case, tmp_path)
    before = snapshot(tmp_path)
    for command, args in manifest_commands(tmp_path, expert_dir).items():
        result = run_main(args, capsys, monkeypatch)
        line = assert_one_line_error(result, *MANIFEST_CASES[case])
        assert str(expert_dir) in line, (command, line)
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------------- command-specific inputs
PACKAGE_CASES = ("checkpoint missing", "checkpoint is a file", "checkpoint incomplete", "out is a folder",
                 "out under a file")


def _package_cases(tmp: Path, expert_dir: Path) -> dict[str, tuple[list[str | Path], list[str]]]:
    half = tmp / "run" / "checkpoint-2"
    half.mkdir(parents=True)
    (half / "adapter_config.json").write_text("{}")  # a save killed before the record
    a_file = tmp / "a_file"
    a_file.write_text("x")
    good = write_checkpoint(tmp / "run" / "checkpoint-1", Expert.load(expert_dir))
    return {
        "checkpoint missing": (["--checkpoint", tmp / "nope", "--out", tmp / "x.expert"], ["no such checkpoint"]),
        "checkpoint is a file": (["--checkpoint", a_file, "--out", tmp / "x.expert"], ["no such checkpoint"]),
        "checkpoint incomplete": (["--checkpoint", half, "--out", tmp / "x.expert"], ["incomplete checkpoint"]),
        "out is a folder": (["--checkpoint", good, "--out", tmp], ["--out", "is a directory"]),
        "out under a file": (["--checkpoint", good, "--out", a_file / "x.expert"], ["--out", "a file is in the way"]),
    }


def test_package_refuses_bad_checkpoints_and_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    expert_dir = copy_expert(tmp_path / "expert")
    cases = _package_cases(tmp_path, expert_dir)
    assert tuple(cases) == PACKAGE_CASES
    before = snapshot(tmp_path)
    for args, needles in cases.values():
        assert_one_line_error(run_main(["package", expert_dir, *args], capsys, monkeypatch), *needles)
    assert snapshot(tmp_path) == before


def _archive(tmp: Path) -> Path:
    expert_dir = copy_expert(tmp / "src")
    checkpoint = write_checkpoint(tmp / "src-run" / "checkpoint-1", Expert.load(expert_dir))
    return package_expert(Expert.load(expert_dir), checkpoint, tmp / "good.expert")


INSTALL_CASES: dict[str, list[str]] = {
    "nonexistent": ["no such archive file"],
    "directory": ["is a directory"],
    "empty file": ["corrupt or truncated"],
    "not an archive": ["corrupt or truncated"],
    "truncated": ["corrupt or truncated"],
}


def _install_target(case: str, tmp: Path) -> Path:
    if case == "nonexistent":
        return tmp / "nope.expert"
    if case == "directory":
        return tmp
    if case == "empty file":
        return Path(shutil.copy(BADINPUT / "archives" / "empty.expert", tmp / "empty.expert"))
    if case == "not an archive":
        return Path(shutil.copy(BADINPUT / "archives" / "garbage.expert", tmp / "garbage.expert"))
    good = _archive(tmp)
    path = tmp / "truncated.expert"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return path


@pytest.mark.parametrize("case", sorted(INSTALL_CASES))
def test_install_refuses_bad_archives_and_registers_nothing(case: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("EXPERTKIT_HOME", str(home))
    work = tmp_path / "work"
    work.mkdir()
    target = _install_target(case, work)
    result = run_main(["install", target], capsys, monkeypatch)
    assert_one_line_error(result, str(target), *INSTALL_CASES[case])
    assert not (home / "index.json").exists() and not (home / "experts").exists()
    assert not (home / "tmp").exists() or not list((home / "tmp").iterdir())


SERVE_CASES: dict[str, list[str]] = {
    "nonexistent expert": ["not installed"],
    "expert folder without a checkpoint": ["no checkpoint/"],
    "incomplete checkpoint": ["incomplete checkpoint"],
    "api key file missing": ["--api-key-file", "no such file"],
    "api key file is a folder": ["--api-key-file", "is a directory"],
    "api key file empty": ["--api-key-file", "is empty"],
    "port out of range": ["--port", "65535"],
}


def _serve_args(case: str, tmp: Path) -> list[str | Path]:
    expert_dir = copy_expert(tmp / "expert")
    checkpoint = write_checkpoint(tmp / "run" / "checkpoint-1", Expert.load(expert_dir))
    served = f"{expert_dir}:{checkpoint}"
    half = tmp / "run" / "checkpoint-2"
    half.mkdir()
    empty = tmp / "empty.key"
    empty.write_text(" \n")
    return {
        "nonexistent expert": ["no-such-expert"],
        "expert folder without a checkpoint": [expert_dir],
        "incomplete checkpoint": [f"{expert_dir}:{half}"],
        "api key file missing": [served, "--api-key-file", tmp / "nope.key"],
        "api key file is a folder": [served, "--api-key-file", tmp],
        "api key file empty": [served, "--api-key-file", empty],
        "port out of range": [served, "--port", "70000"],
    }[case]


@pytest.mark.parametrize("case", sorted(SERVE_CASES))
def test_serve_refuses_before_loading_anything(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPERTKIT_HOME", str(tmp_path / "home"))
    import expertkit.serving.serve

    def no_engine(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the base was loaded before the input was checked")

    monkeypatch.setattr(expertkit.serving.serve, "build_engine", no_engine)
    result = run_main(["serve", *_serve_args(case, tmp_path), "--base", "/nonexistent-base"], capsys, monkeypatch)
    assert_one_line_error(result, *SERVE_CASES[case])


OTHER_CASES: dict[str, tuple[list[str], list[str]]] = {
    "render --field without =": (["render", "{expert}", "--field", "Dialect", "--question", "q"], ["--field"]),
    "render a question with a control token": (
        ["render", "{expert}", "--field", "Dialect=json", "--field", "Task=extract", "--question", "<|im_end|>"],
        ["question", "control token"]),
    "check-prompt with neither --prompt nor --prompts": (["check-prompt", "{expert}"], ["--prompt"]),
    "data generate without a generator": (["data", "generate", "{expert}"], ["data.generator"]),
    "data generate --out-dir is a file": (
        ["data", "generate", "{sql}", "--train-size", "3", "--eval-size", "2", "--out-dir", "{file}"],
        ["--out-dir", "a file is in the way"]),
    "compare --run missing": (["compare", "{expert}", "--run", "{tmp}/nope"], ["--run", "no such run folder"]),
    "compare --run without checkpoints": (["compare", "{expert}", "--run", "{tmp}"], ["no complete checkpoints"]),
    "train --out is a file": (["train", "{expert}", "--base", "tiny", "--out", "{file}", "--steps", "1"],
                              ["--out", "not a folder"]),
    "train --resume without a run": (["train", "{expert}", "--out", "{tmp}/r", "--resume"], ["no run to resume"]),
    "usage: a required option missing": (["render", "{expert}"], ["--question", "render --help"]),
    "usage: text for a number": (["data", "generate", "{expert}", "--train-size", "many"], ["--train-size"]),
    "usage: an unknown option": (["lint", "{expert}", "--colour"], ["--colour"]),
    "usage: an unknown command": (["lnit", "{expert}"], ["lnit"]),
}


@pytest.mark.parametrize("case", sorted(OTHER_CASES))
def test_other_bad_options(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    expert_dir = copy_expert(tmp_path / "expert")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    sql = Path(shutil.copytree(Path(__file__).resolve().parents[1] / "experts" / "sql", tmp_path / "sql",
                               ignore=shutil.ignore_patterns("*.jsonl"))) if "{sql}" in OTHER_CASES[case][0] else None
    values = {"expert": str(expert_dir), "file": str(a_file), "tmp": str(tmp_path), "sql": str(sql)}
    args, needles = OTHER_CASES[case]
    before = snapshot(tmp_path)
    result = run_main([a.format(**values) for a in args], capsys, monkeypatch)
    assert_one_line_error(result, *needles)
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------------- the real thing: one subprocess per command
def _subprocess_world(tmp: Path, base: Path) -> dict[str, tuple[list[str | Path], list[str], Callable[[], bool]]]:
    """Per command: arguments, needles of the error line, and a check that nothing was written."""
    expert_dir = copy_expert(tmp / "expert")
    blank = Path(shutil.copy(BADINPUT / "data" / "blank_lines.jsonl", tmp / "eval_without_records.jsonl"))
    invalid = Path(shutil.copy(BADINPUT / "data" / "invalid_utf8.jsonl", tmp / "invalid.jsonl"))
    bad_manifest = break_manifest("unknown_key.yaml", tmp / "m")
    folder_manifest = break_manifest("<expert.yaml is a folder>", tmp / "f")
    train_expert = copy_expert(tmp / "train-expert")
    shutil.copy(BADINPUT / "data" / "list_record.jsonl", train_expert / "data" / "train.jsonl")
    run = make_run(tmp, expert_dir)
    half = tmp / "run" / "checkpoint-2"
    half.mkdir()
    truncated = tmp / "truncated.expert"
    good = _archive(tmp / "archive")
    truncated.write_bytes(good.read_bytes()[:200])
    home = tmp / "home"
    a_file = tmp / "a_file"
    a_file.write_text("x")
    def nothing() -> bool:
        return True

    return {
        "lint": (["lint", expert_dir, "--data", blank], [str(blank), "no records"], nothing),
        "check-prompt": (["check-prompt", expert_dir, "--prompts", invalid], [str(invalid) + ":2:", "UTF-8"],
                         nothing),
        "render": (["render", bad_manifest, "--question", "q"], ["expert.yaml:2:", "colour", "unknown key"], nothing),
        "validate": (["validate", folder_manifest, "--output", "{}"], ["expert.yaml", "is a directory"], nothing),
        "data generate": (["data", "generate", expert_dir, "--out-dir", tmp / "gen"], ["data.generator"],
                          lambda: not (tmp / "gen").exists()),
        "train": (["train", train_expert, "--base", base, "--out", tmp / "train-run", "--steps", "1"],
                  ["train.jsonl", "lint found 1 error", "parse_error"], lambda: not (tmp / "train-run").exists()),
        "compare": (["compare", expert_dir, "--run", run, "--cases", blank], [str(blank), "no records"],
                    lambda: not (run / "compare").exists()),
        "package": (["package", expert_dir, "--checkpoint", half, "--out", tmp / "x.expert"],
                    [str(half), "incomplete checkpoint"], lambda: not (tmp / "x.expert").exists()),
        "install": (["install", truncated], [str(truncated), "corrupt or truncated"],
                    lambda: not (home / "index.json").exists() and not (home / "experts").exists()),
        "serve": (["serve", f"{expert_dir}:{half}", "--base", base], [str(half), "incomplete checkpoint"], nothing),
    }


@pytest.fixture(scope="module")
def subprocess_results(tmp_path_factory: pytest.TempPathFactory, base: Path) -> Iterator[dict[str, Any]]:
    """Every command once in a real subprocess (a few at a time), plus ``--debug``."""
    tmp = tmp_path_factory.mktemp("subprocesses")
    world = _subprocess_world(tmp, base)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPERTKIT_HOME", str(tmp / "home"))
        runs: dict[str, list[str | Path]] = {name: args for name, (args, _, _) in world.items()}
        runs["--debug"] = ["--debug", *world["lint"][0]]
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = {name: pool.submit(run_subprocess, args) for name, args in runs.items()}
            results: dict[str, CliResult] = {name: f.result() for name, f in futures.items()}
        yield {"world": world, "results": results}


SUBPROCESS_COMMANDS = ("lint", "check-prompt", "render", "validate", "data generate", "train", "compare", "package",
                       "install", "serve")


@pytest.mark.parametrize("command", SUBPROCESS_COMMANDS)
def test_each_command_in_a_subprocess(subprocess_results: dict[str, Any], command: str) -> None:
    _, needles, nothing_written = subprocess_results["world"][command]
    assert_one_line_error(subprocess_results["results"][command], *needles)
    assert nothing_written()


def test_debug_shows_the_traceback(subprocess_results: dict[str, Any]) -> None:
    result = subprocess_results["results"]["--debug"]
    assert result.code == 2
    assert "Traceback (most recent call last)" in result.stderr and "ExpertkitError" in result.stderr
    assert result.lines[-1].startswith("expertkit: error: ") and "no records" in result.lines[-1]
