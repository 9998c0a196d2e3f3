"""Hostile packages ``test_package.py`` does not try: duplicate and shadowed entries, too many entries, a full disk,
Windows paths, a hostile manifest or record, pickled weights, a resource that links outside. All refused, nothing
written outside the registry, nothing registered."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from collections import namedtuple
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_package import _file, _tar, _valid_entries, _with_sums, make_checkpoint, make_expert

from expertkit.core.errors import ExpertkitError
from expertkit.expert import Expert
from expertkit.packaging.package import MAX_ENTRIES, install_package, list_installed, package_expert


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    expert = make_expert(tmp_path / "src")
    return package_expert(expert, make_checkpoint(tmp_path / "run", expert), tmp_path / "good.expert")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("hostile-packages")
    expert = make_expert(root / "src")
    return _hostile(package_expert(expert, make_checkpoint(root / "run", expert), root / "good.expert"))


def _files(archive: Path) -> dict[str, bytes]:
    return {i.name: d for i, d in _valid_entries(archive) if i.name != "SHA256SUMS" and d is not None}


def _resummed(files: dict[str, bytes]) -> bytes:
    return _tar(_with_sums([], files))


def _edit_yaml(files: dict[str, bytes], **changes: Any) -> dict[str, bytes]:
    manifest = yaml.safe_load(files["expert.yaml"])
    manifest.update(changes)
    return {**files, "expert.yaml": yaml.safe_dump(manifest).encode()}


def _hostile(archive: Path) -> dict[str, bytes]:
    valid = _valid_entries(archive)
    files = _files(archive)
    record = json.loads(files["package.json"])
    many = [_file(f"schemas/x{i}.json", b"{}") for i in range(MAX_ENTRIES + 1)]
    shadow = {**files, "schemas/answer.json/inner": b"{}"}
    sums = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in sorted(files.items()))
    return {
        "duplicate entry": _tar([*_with_sums(valid, {}), _file("expert.yaml", b"name: evil\n")]),
        "entry under a file": _resummed(shadow),
        "too many entries": _tar([*_with_sums(valid, {}), *many]),
        "backslash path": _resummed({**files, "..\\..\\evil.txt": b"pwned"}),
        "windows drive path": _resummed({**files, "C:/evil.txt": b"pwned"}),
        "dot segment": _resummed({**files, "./schemas/./x.json": b"{}"}),
        "manifest name climbs": _resummed(_edit_yaml(files, name="../../evil")),
        "manifest version climbs": _resummed(_edit_yaml(files, version="../../../evil")),
        "manifest alias bomb": _resummed({**files, "expert.yaml": files["expert.yaml"] + b"".join(
            f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n".encode() for p, c in zip("abcdefg", "bcdefgh", strict=True)
        ).replace(b"b: &b [*a", b"a: &a [x]\nb: &b [*a")}),
        "record names another expert": _resummed({**files, "package.json": json.dumps(
            {**record, "name": "other"}).encode()}),
        "record of a future format": _resummed({**files, "package.json": json.dumps(
            {**record, "format": 99}).encode()}),
        "record is not JSON": _resummed({**files, "package.json": b"\xff not json"}),
        "checksums list a missing file": _tar([*(_file(n, d) for n, d in files.items()),
                                              _file("SHA256SUMS", (sums + "0" * 64 + "  ghost.json\n").encode())]),
        "checksums are not text": _tar([*(_file(n, d) for n, d in files.items()),
                                        _file("SHA256SUMS", b"\xff\xfe")]),
        "checkpoint without its record": _resummed(
            {n: d for n, d in files.items() if n != "checkpoint/expertkit.json"}),
        "pickled weights beside safetensors": _resummed({**files, "checkpoint/optimizer.pt": b"\x80\x04pickle"}),
        "pickled weights instead": _resummed({
            **{n: d for n, d in files.items() if n != "checkpoint/adapter_model.safetensors"},
            "checkpoint/adapter_model.bin": b"\x80\x04pickle"}),
        # round 2: caps, files a package does not need, paths out of the package, damaged weights
        "checksums padded with 2 MiB of newlines": _tar([*(_file(n, d) for n, d in files.items()),
                                                         _file("SHA256SUMS", sums.encode() + b"\n" * (2 << 20))]),
        "a hook beside the package": _resummed({**files, "hooks/post-install.py": b"import os\n"}),
        "an unknown top-level file": _resummed({**files, "setup.sh": b"rm -rf ~\n"}),
        "an unknown file in the checkpoint": _resummed({**files, "checkpoint/custom_code.py": b"import os\n"}),
        "data.train outside the package": _resummed(_edit_yaml(files, data={"train": "/etc/passwd"})),
        "data.eval climbing out": _resummed(_edit_yaml(files, data={"eval": "../../../outside.jsonl"})),
        "truncated weights with a matching checksum": _resummed({
            **files, "checkpoint/adapter_model.safetensors": files["checkpoint/adapter_model.safetensors"][:-5]}),
    }


EXPECTED = {
    "duplicate entry": "appears twice",
    "entry under a file": "lies under the file",
    "too many entries": f"more than {MAX_ENTRIES} entries",
    "backslash path": "absolute path",
    "windows drive path": "absolute path",
    "dot segment": "not a plain relative path",
    "manifest name climbs": "name: String should match pattern",
    "manifest version climbs": "version: String should match pattern",
    "manifest alias bomb": "unknown key",
    "record names another expert": "does not match the manifest",
    "record of a future format": "unknown package format",
    "record is not JSON": "no readable package.json",
    "checksums list a missing file": "lacks: ghost.json",
    "checksums are not text": "not UTF-8",
    "checkpoint without its record": "incomplete checkpoint",
    "pickled weights beside safetensors": "pickle file",
    "pickled weights instead": "pickle file",
    "checksums padded with 2 MiB of newlines": "'SHA256SUMS' unpacks to 2097.* bytes, over the 1048576-byte limit",
    "a hook beside the package": "files a package does not need: hooks/post-install.py",
    "an unknown top-level file": "files a package does not need: setup.sh",
    "an unknown file in the checkpoint": "files a package does not need: checkpoint/custom_code.py",
    "data.train outside the package": "data.train: the manifest's path leads outside",
    "data.eval climbing out": "data.eval: the manifest's path leads outside",
    "truncated weights with a matching checksum": "checkpoint/adapter_model.safetensors: truncated or damaged",
}
HOSTILE_PACKAGES = sorted(EXPECTED)


def _outside(tmp_path: Path) -> set[str]:
    return {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if not str(p.relative_to(tmp_path))
            .startswith("registry")}


def _assert_nothing_registered(home: Path) -> None:
    assert list_installed() == [] and not (home / "experts").exists() and not (home / "index.json").exists()
    assert not (home / "tmp").exists() or list((home / "tmp").iterdir()) == []


@pytest.mark.parametrize("case", HOSTILE_PACKAGES)
def test_hostile_package_is_refused(tmp_path: Path, home: Path, hostile: dict[str, bytes], case: str) -> None:
    bad = tmp_path / "bad.expert"
    bad.write_bytes(hostile[case])
    before = _outside(tmp_path)
    with pytest.raises(ExpertkitError, match=EXPECTED[case]) as caught:
        install_package(bad)
    assert str(bad) in str(caught.value) and "\n" not in str(caught.value)
    assert _outside(tmp_path) == before
    assert not list(tmp_path.rglob("evil*"))
    assert not any((p / "evil.txt").exists() for p in (tmp_path.parent, tmp_path.parent.parent, Path("C:")))
    _assert_nothing_registered(home)


@pytest.mark.parametrize(("variable", "limit", "needle"), [
    ("EXPERTKIT_PACKAGE_MAX_MEMBER_BYTES", 64, "'checkpoint/adapter_model.safetensors' unpacks to .* over the 64-byte"),
    ("EXPERTKIT_PACKAGE_MAX_BYTES", 1000, "unpacks to .* bytes, over the 1000-byte limit"),
])
def test_the_size_limits_are_checked_before_unpacking(tmp_path: Path, home: Path, archive: Path, variable: str,
                                                      limit: int, needle: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each member and the whole package have a size limit (real-sized defaults, overridable): a 1 GiB
    zero-filled member listed with its right checksum no longer unpacks."""
    monkeypatch.setenv(variable, str(limit))
    with pytest.raises(ExpertkitError, match=needle):
        install_package(archive)
    _assert_nothing_registered(home)


def test_a_package_bigger_than_the_free_disk_is_refused(tmp_path: Path, home: Path, archive: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(100, 90, 10))
    with pytest.raises(ExpertkitError, match="disk has 10 free"):
        install_package(archive)
    _assert_nothing_registered(home)


def test_packing_refuses_a_resource_that_links_outside(tmp_path: Path) -> None:
    expert = make_expert(tmp_path / "src")
    secret = tmp_path / "secret.json"
    secret.write_text('{"password": "hunter2"}')
    (expert.root / "schemas" / "answer.json").unlink()
    (expert.root / "schemas" / "answer.json").symlink_to(secret)
    checkpoint = make_checkpoint(tmp_path / "run", Expert.load(expert.root))
    with pytest.raises(ExpertkitError, match="outside the expert folder"):
        package_expert(Expert.load(expert.root), checkpoint, tmp_path / "x.expert")
    assert not (tmp_path / "x.expert").exists() and not list(tmp_path.glob(".x.expert*"))


def test_a_gzip_member_that_lies_about_its_size_is_refused(tmp_path: Path, home: Path, archive: Path) -> None:
    """A header claiming more bytes than follow (a cut member inside a whole gzip stream)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for info, data in _valid_entries(archive):
            info.size = len(data or b"")
            tar.addfile(info, io.BytesIO(data or b""))
        last = tar.getmembers()[-1]
    cut = raw.getvalue()[: last.offset_data + last.size // 2]  # the last member's header claims more than follows
    bad = tmp_path / "cut.expert"
    bad.write_bytes(gzip.compress(cut))
    with pytest.raises(ExpertkitError, match="corrupt or truncated"):
        install_package(bad)
    _assert_nothing_registered(home)
