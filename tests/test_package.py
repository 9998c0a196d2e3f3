"""``.expert`` archives and the registry: contents, install/list/remove, and hostile archives refused."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from _reliability import WEIGHTS
from typer.testing import CliRunner

from expertkit.cli import app
from expertkit.core.checkpoints import RECORD_NAME
from expertkit.core.errors import DriftError, ExpertkitError
from expertkit.expert import Expert
from expertkit.packaging.package import (
    install_package,
    list_installed,
    package_expert,
    remove_installed,
    resolve_installed,
)

MANIFEST: dict[str, Any] = {
    "name": "invoices",
    "version": "0.1.0",
    "output": {"kind": "json", "resources": {"json_schema": "schemas/answer.json"}},
    "contract": {"wrapper": "qwen3", "fields": [
        {"name": "Dialect", "values": ["json"]},
        {"name": "Task", "values": ["extract"]},
    ]},
}


def make_expert(root: Path, **changes: Any) -> Expert:
    folder = root / "invoices"
    (folder / "schemas").mkdir(parents=True, exist_ok=True)
    (folder / "schemas" / "answer.json").write_text('{"type": "object"}\n')
    (folder / "expert.yaml").write_text(yaml.safe_dump({**MANIFEST, **changes}, sort_keys=False))
    return Expert.load(folder)


def make_checkpoint(run: Path, expert: Expert, step: int = 10, **changes: Any) -> Path:
    """An adapter checkpoint as training leaves it (with resume-only files that must not be packed)."""
    folder = run / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text('{"r": 4, "peft_type": "LORA"}')
    (folder / "adapter_model.safetensors").write_bytes(WEIGHTS)
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin", "trainer_state.json"):
        (folder / name).write_bytes(b"resume only")
    record = {"step": step, "fingerprint": expert.fingerprint, "contract": expert.contract.canonical(),
              "method": "lora", "base": "tiny", **changes}
    (folder / RECORD_NAME).write_text(json.dumps(record))
    return folder


@pytest.fixture
def packed(tmp_path: Path) -> tuple[Expert, Path, Path]:
    expert = make_expert(tmp_path / "src")
    checkpoint = make_checkpoint(tmp_path / "run", expert)
    return expert, checkpoint, package_expert(expert, checkpoint, tmp_path / "out" / "invoices.expert")


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


# ---------------------------------------------------------------------- packing
def test_the_archive_holds_what_serving_needs_and_checksums_for_all(packed: tuple[Expert, Path, Path]) -> None:
    expert, _, archive = packed
    files = members(archive)
    assert sorted(files) == [
        "SHA256SUMS", "chat_template.jinja", "checkpoint/adapter_config.json", "checkpoint/adapter_model.safetensors",
        "checkpoint/expertkit.json", "contract.json", "eval.json", "expert.yaml", "package.json",
        "schemas/answer.json",
    ]
    sums = dict(reversed(line.split("  ", 1)) for line in files["SHA256SUMS"].decode().splitlines())
    assert set(sums) == set(files) - {"SHA256SUMS"}
    assert all(hashlib.sha256(files[n]).hexdigest() == h for n, h in sums.items())
    assert files["chat_template.jinja"].decode() == expert.contract.chat_template()
    assert json.loads(files["contract.json"])["fingerprint"] == expert.fingerprint
    record = json.loads(files["package.json"])
    assert (record["name"], record["version"], record["fingerprint"]) == ("invoices", "0.1.0", expert.fingerprint)
    assert record["checkpoint"]["kind"] == "adapter" and record["checkpoint"]["step"] == 10
    summary = json.loads(files["eval.json"])
    assert summary["metrics"] is None and "no evaluation" in summary["note"]
    assert not list(archive.parent.glob(".*"))  # no temporary file left behind


def test_the_eval_summary_is_the_checkpoints_compare_row(tmp_path: Path) -> None:
    expert = make_expert(tmp_path / "src")
    run = tmp_path / "run"
    checkpoint = make_checkpoint(run, expert, step=20)
    (run / "compare").mkdir()
    rows = [{"name": "base", "step": None, "valid": 0.1},
            {"name": "checkpoint-20", "step": 20, "path": str(checkpoint), "valid": 0.9, "equivalent": 0.5}]
    report = {"metric": "valid", "models": rows, "best": {"name": "checkpoint-20", "step": 20}, "cases": [{}, {}]}
    (run / "compare" / "compare.json").write_text(json.dumps(report))
    summary = json.loads(members(package_expert(expert, checkpoint, tmp_path / "a.expert"))["eval.json"])
    assert summary["metrics"] == {"name": "checkpoint-20", "step": 20, "valid": 0.9, "equivalent": 0.5}
    assert summary["best"] is True and summary["metric"] == "valid" and summary["cases"] == 2


def test_incomplete_and_drifted_checkpoints_are_refused(tmp_path: Path) -> None:
    expert = make_expert(tmp_path / "src")
    half = tmp_path / "run" / "checkpoint-5"
    half.mkdir(parents=True)
    (half / "adapter_config.json").write_text("{}")
    with pytest.raises(ExpertkitError, match="incomplete checkpoint"):
        package_expert(expert, half, tmp_path / "x.expert")
    drifted = make_checkpoint(tmp_path / "run", expert, step=6, fingerprint="0000000000000000",
                              contract={"wrapper": "tags", "fields": []})
    with pytest.raises(DriftError, match="allow-drift"):
        package_expert(expert, drifted, tmp_path / "x.expert")
    assert not (tmp_path / "x.expert").exists()
    archive = package_expert(expert, drifted, tmp_path / "x.expert", allow_drift=True)
    assert json.loads(members(archive)["package.json"])["drift"]


def test_pickled_weights_are_never_packaged(tmp_path: Path) -> None:
    expert = make_expert(tmp_path / "src")
    checkpoint = make_checkpoint(tmp_path / "run", expert)
    (checkpoint / "adapter_model.safetensors").rename(checkpoint / "adapter_model.bin")
    with pytest.raises(ExpertkitError, match="safetensors"):
        package_expert(expert, checkpoint, tmp_path / "x.expert")


# ---------------------------------------------------------------------- the registry
def test_install_list_versions_side_by_side_and_remove(tmp_path: Path, home: Path,
                                                      packed: tuple[Expert, Path, Path]) -> None:
    expert, _, archive = packed
    installed = install_package(archive)
    assert (installed.name, installed.version) == ("invoices", "0.1.0")
    assert installed.path == home / "experts" / "invoices" / "0.1.0"
    assert Expert.load(installed.path).fingerprint == expert.fingerprint
    assert (installed.checkpoint_path / "adapter_model.safetensors").read_bytes() == WEIGHTS
    with pytest.raises(ExpertkitError, match="already installed"):
        install_package(archive)
    newer = make_expert(tmp_path / "src2", version="0.10.0")
    install_package(package_expert(newer, make_checkpoint(tmp_path / "run2", newer), tmp_path / "v2.expert"))
    assert [(i.name, i.version) for i in list_installed()] == [("invoices", "0.1.0"), ("invoices", "0.10.0")]
    assert resolve_installed("invoices").version == "0.10.0"
    assert resolve_installed("invoices@0.1.0").path == installed.path
    index = json.loads((home / "index.json").read_text())
    assert [e["version"] for e in index["experts"]] == ["0.1.0", "0.10.0"]
    assert remove_installed("invoices@0.1.0") == ["invoices@0.1.0"]
    assert not installed.path.exists() and (home / "experts" / "invoices" / "0.10.0").is_dir()
    assert remove_installed("invoices") == ["invoices@0.10.0"]
    assert list_installed() == [] and not (home / "experts" / "invoices").exists()
    assert list((home / "tmp").iterdir()) == []
    for spec in ("invoices", "../etc", "Invoices@1"):
        with pytest.raises(ExpertkitError):
            remove_installed(spec)


def test_the_cli_commands(tmp_path: Path, home: Path) -> None:
    expert = make_expert(tmp_path / "src")
    checkpoint = make_checkpoint(tmp_path / "run", expert)
    runner = CliRunner()
    archive = tmp_path / "cli.expert"
    result = runner.invoke(app, ["package", str(expert.root), "--checkpoint", str(checkpoint), "--out", str(archive)])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["install", str(archive)]).exit_code == 0
    listed = runner.invoke(app, ["list", "--json"])
    assert listed.exit_code == 0
    assert [(i["name"], i["version"], i["fingerprint"]) for i in json.loads(listed.stdout)] == [
        ("invoices", "0.1.0", expert.fingerprint)]
    assert runner.invoke(app, ["remove", "invoices"]).exit_code == 0
    assert json.loads(runner.invoke(app, ["list", "--json"]).stdout) == []
    assert not (home / "experts" / "invoices").exists()


# ---------------------------------------------------------------------- hostile archives
def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _valid_entries(archive: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    return [_file(n, d) for n, d in members(archive).items()]


def _with_sums(entries: list[tuple[tarfile.TarInfo, bytes | None]], extra: dict[str, bytes]) -> list[Any]:
    """The valid entries plus ``extra`` files, all listed in a fresh SHA256SUMS."""
    files = {i.name: d for i, d in entries if i.name != "SHA256SUMS" and d is not None} | extra
    sums = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in sorted(files.items())).encode()
    return [*(_file(n, d) for n, d in files.items()), _file("SHA256SUMS", sums)]


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def hostile(archive: Path, escape: str) -> dict[str, bytes]:
    """Archives that try to write ``escape`` outside the registry, or are otherwise broken."""
    valid = _valid_entries(archive)
    depth = "../" * 12
    good = archive.read_bytes()
    payload = b"pwned"
    fifo = tarfile.TarInfo("fifo")
    fifo.type = tarfile.FIFOTYPE
    device = tarfile.TarInfo("dev")
    device.type = tarfile.CHRTYPE
    tampered = [(i, b"{}" if i.name == "schemas/answer.json" else d) for i, d in valid]
    contiguous = tarfile.TarInfo("schemas/extra.json")
    contiguous.type = tarfile.CONTTYPE
    files = {i.name: d for i, d in valid if i.name != "SHA256SUMS" and d is not None}
    manifest = yaml.safe_load(files["expert.yaml"])
    manifest["output"]["resources"]["json_schema"] = "../../../outside/secret.json"  # registry/tmp/install-*/
    peeking = {**files, "expert.yaml": yaml.safe_dump(manifest).encode()}
    return {
        "traversal": _tar(_with_sums(valid, {f"{depth}{escape.lstrip('/')}": payload})),
        "nested_traversal": _tar(_with_sums(valid, {f"schemas/../../{depth}{escape.lstrip('/')}": payload})),
        "absolute": _tar(_with_sums(valid, {escape: payload})),
        "symlink": _tar([*valid, _link("schemas/evil", escape, tarfile.SYMTYPE)]),
        "symlink_then_write": _tar([_link("out", str(Path(escape).parent), tarfile.SYMTYPE),
                                    *_with_sums(valid, {f"out/{Path(escape).name}": payload})]),
        "hardlink": _tar([*valid, _link("schemas/evil", escape, tarfile.LNKTYPE)]),
        "fifo": _tar([*valid, (fifo, None)]),
        "contiguous": _tar([*_with_sums(valid, {}), (contiguous, b"{}")]),
        "resource_outside": _tar(_with_sums([_file(n, d) for n, d in peeking.items()], {})),
        "device": _tar([*valid, (device, None)]),
        "unlisted": _tar([*valid, _file("extra.txt", payload)]),
        "mismatch": _tar(tampered),
        "no_sums": _tar([(i, d) for i, d in valid if i.name != "SHA256SUMS"]),
        "truncated": good[: len(good) // 2],
        "garbage": b"not a tar archive at all" * 10,
    }


EXPECTED = {
    "traversal": "'..'", "nested_traversal": "'..'", "absolute": "absolute", "symlink": "symbolic link",
    "symlink_then_write": "symbolic link", "hardlink": "hard link", "fifo": "not a regular file",
    "device": "not a regular file", "contiguous": "not a regular file",
    "resource_outside": "outside the expert", "unlisted": "not in SHA256SUMS", "mismatch": "checksum mismatch",
    "no_sums": "no SHA256SUMS", "truncated": "corrupt or truncated", "garbage": "corrupt or truncated",
}


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_hostile_archives_are_refused_and_write_nothing_outside_the_registry(
    tmp_path: Path, home: Path, packed: tuple[Expert, Path, Path], case: str
) -> None:
    _, _, archive = packed
    escape = tmp_path / "outside" / "pwned.txt"
    escape.parent.mkdir()
    (escape.parent / "secret.json").write_text("{}")
    bad = tmp_path / f"{case}.expert"
    bad.write_bytes(hostile(archive, str(escape))[case])
    before = _tree(tmp_path) - {p for p in _tree(tmp_path) if p.startswith("registry")}
    with pytest.raises(ExpertkitError, match=EXPECTED[case]) as caught:
        install_package(bad)
    assert str(bad) in str(caught.value) and "\n" not in str(caught.value)
    after = _tree(tmp_path) - {p for p in _tree(tmp_path) if p.startswith("registry")}
    assert after == before
    assert not escape.exists()
    assert list(tmp_path.rglob("pwned*")) == []
    assert list_installed() == [] and not (home / "experts").exists()
    assert list((home / "tmp").iterdir()) == []  # the staging folder is gone too
