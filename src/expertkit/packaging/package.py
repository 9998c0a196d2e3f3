"""``.expert`` archives and the local registry of installed experts.

An archive is a gzip-compressed tar with relative paths only::

    package.json         name, version, fingerprint, checkpoint kind and step, base, drift accepted
    expert.yaml          the manifest
    contract.json        the canonical contract and its fingerprint
    chat_template.jinja  the contract's exported chat template
    eval.json            the checkpoint's row of the run's compare/compare.json (or a note that there is none)
    checkpoint/          expertkit.json and the adapter (adapter_config.json, adapter_model.safetensors)
                         or, for a full fine-tune, the model (config.json, *.safetensors)
    <resources>          the validator's files (manifest ``output.resources``) at their manifest paths
    SHA256SUMS           ``sha256sum`` lines for every other file

Optimizer state, RNG states and pickled training arguments are never packed; weights are safetensors only.

The registry lives in ``$EXPERTKIT_HOME`` (default ``~/.expertkit``): ``experts/NAME/VERSION/`` holds an
installed archive's files (versions side by side), ``index.json`` lists them, ``tmp/`` holds installs in
progress. An install is extracted into ``tmp/``, verified entry by entry and renamed into place whole;
nothing is written outside the registry.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from expertkit.core.checkpoints import (
    ADAPTER_CONFIG_NAME,
    COMPARE_DIR_NAME,
    COMPARE_REPORT_NAME,
    MODEL_CONFIG_NAME,
    RECORD_NAME,
    Checkpoint,
    check_contract,
    load_checkpoint,
    sha256_file,
    verify_checksums,
)
from expertkit.core.errors import ExpertkitError
from expertkit.core.fileio import (
    atomic_write_json,
    check_output_file,
    ensure_dir,
    read_json,
    usual_dir_mode,
    usual_file_mode,
    utc_now,
)
from expertkit.core.manifest import MANIFEST_NAME, NAME_RE, VERSION_RE
from expertkit.expert import Expert

PACKAGE_FORMAT = 1
CHECKSUMS_NAME = "SHA256SUMS"
PACKAGE_RECORD_NAME = "package.json"
CONTRACT_NAME = "contract.json"
TEMPLATE_NAME = "chat_template.jinja"
EVAL_NAME = "eval.json"
CHECKPOINT_DIR = "checkpoint"
INDEX_NAME = "index.json"
#: Most entries an archive may hold (a guard against archives built to exhaust the disk's inodes).
MAX_ENTRIES = 10_000
#: Bytes a ``SHA256SUMS`` may take (a line per file: a few hundred bytes in a real package).
MAX_CHECKSUMS_BYTES = 1024 * 1024
#: Bytes one weights file (``*.safetensors``) may unpack to: Qwen3-0.6B fully fine-tuned in fp32 is 2.4 GB,
#: its LoRA adapter (r 16, all linear layers) 40 MB. ``$EXPERTKIT_PACKAGE_MAX_MEMBER_BYTES`` overrides it.
MAX_WEIGHTS_BYTES = 4 * 1024**3
#: Bytes any other file may unpack to (manifests, records, templates, the validator's resources).
MAX_OTHER_BYTES = 64 * 1024**2
#: Bytes a whole package may unpack to (``$EXPERTKIT_PACKAGE_MAX_BYTES`` overrides it).
MAX_PACKAGE_BYTES = 5 * 1024**3
#: Files an installed package may not hold: pickles (``torch.load``, ``pickle``) can run code when loaded.
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib"})
_ADAPTER_FILES = (ADAPTER_CONFIG_NAME, "adapter_model.safetensors")
_FULL_FILES = (MODEL_CONFIG_NAME, "generation_config.json", "model.safetensors.index.json")
#: Where the comparison report lies in a run folder, as ``eval.json`` names its source.
_COMPARE_SOURCE = f"{COMPARE_DIR_NAME}/{COMPARE_REPORT_NAME}"
_CHUNK = 1 << 20


def registry_home() -> Path:
    """The registry folder: ``$EXPERTKIT_HOME``, default ``~/.expertkit``."""
    home = Path(os.environ.get("EXPERTKIT_HOME") or Path.home() / ".expertkit").expanduser()
    if home.exists() and not home.is_dir():
        raise ExpertkitError("the registry is not a folder (set EXPERTKIT_HOME to a folder)", path=home,
                             key="EXPERTKIT_HOME")
    return home


@dataclass(frozen=True)
class InstalledExpert:
    """One installed version (a folder with an archive's files)."""

    name: str
    version: str
    fingerprint: str
    kind: str
    installed: str
    path: Path

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT_DIR

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


# ---------------------------------------------------------------------- packing
def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()


def _checkpoint_files(checkpoint: Checkpoint) -> dict[str, Path]:
    """The files of a checkpoint that serving needs, keyed by their archive name."""
    folder = checkpoint.path
    kind = checkpoint.kind
    if kind == "adapter":
        missing = [n for n in _ADAPTER_FILES if not (folder / n).is_file()]
        if missing:
            raise ExpertkitError(f"the adapter lacks {', '.join(missing)} (only safetensors weights are "
                                 "packaged: pickled weights can run code)", path=folder)
        names = [*_ADAPTER_FILES]
    else:
        weights = sorted(p.name for p in folder.glob("*.safetensors"))
        if not weights:
            raise ExpertkitError("the full fine-tune has no *.safetensors weights (pickled weights are never "
                                 "packaged)", path=folder)
        names = [n for n in _FULL_FILES if (folder / n).is_file()] + weights
    return {f"{CHECKPOINT_DIR}/{n}": folder / n for n in [RECORD_NAME, *names]}


def _resource_files(expert: Expert) -> dict[str, Path]:
    """The validator's resource files under their manifest-relative paths."""
    root = expert.root.resolve()
    files: dict[str, Path] = {}
    for key, rel in expert.manifest.output.resources.items():
        pure = PurePosixPath(rel)
        source = (root / rel).resolve()
        if pure.is_absolute() or ".." in pure.parts or not source.is_relative_to(root):
            raise ExpertkitError(f"resource {rel!r} lies outside the expert folder", path=expert.root / MANIFEST_NAME,
                                 key=f"output.resources.{key}")
        if source.is_file():
            files[pure.as_posix()] = source
            continue
        for path in sorted(source.rglob("*")):
            if path.is_file():
                if not path.resolve().is_relative_to(root):
                    raise ExpertkitError("a resource file links outside the expert folder", path=path)
                files[(pure / path.relative_to(source).as_posix()).as_posix()] = path
    return files


def eval_summary(checkpoint: Checkpoint) -> dict[str, Any]:
    """The checkpoint's row of ``RUN/compare/compare.json`` (``models``), or a note that there is none."""
    report = checkpoint.run.compare_report()
    if report is None:
        return {"checkpoint": checkpoint.name, "metrics": None,
                "note": f"no evaluation: the run has no {_COMPARE_SOURCE} (run `expertkit compare`)"}
    models = report.get("models")
    rows = [r for r in models if isinstance(r, dict)] if isinstance(models, list) else []
    row = next((r for r in rows if r.get("name") == checkpoint.name), None)
    if row is None:
        return {"checkpoint": checkpoint.name, "metrics": None,
                "note": f"{checkpoint.name} is not among the models of the run's {_COMPARE_SOURCE}"}
    best = report.get("best")
    return {
        "checkpoint": checkpoint.name,
        "metrics": {k: v for k, v in row.items() if k != "path"},
        "metric": report.get("metric"),
        "best": isinstance(best, dict) and best.get("name") == checkpoint.name,
        "cases": len(report.get("cases") or []),
        "source": _COMPARE_SOURCE,
    }


def package_expert(expert: Expert, checkpoint: str | Path, out_file: str | Path, *,
                   allow_drift: bool = False, force: bool = False) -> Path:
    """Write ``out_file`` (a ``.expert`` tar.gz) for one complete checkpoint of ``expert``; returns its path.

    Refuses an incomplete checkpoint and one trained on another contract (unless ``allow_drift``), an
    existing ``out_file`` (unless ``force``) and one inside the expert or the checkpoint (even with ``force``).
    """
    out = Path(out_file)
    if out.is_dir():
        raise ExpertkitError("is a directory; give the archive's file name (NAME.expert)", path=out, key="--out")
    check_output_file(out, key="--out", force=force, protect=[expert.root, Path(checkpoint)])
    ckpt = load_checkpoint(checkpoint)
    drift = check_contract(ckpt, expert, allow_drift=allow_drift)
    kind = ckpt.kind
    record = {
        "format": PACKAGE_FORMAT,
        "name": expert.name,
        "version": expert.manifest.version,
        "fingerprint": expert.fingerprint,
        "checkpoint": {"step": ckpt.step, "kind": kind, "fingerprint": ckpt.fingerprint,
                       "base": ckpt.record.base, "method": ckpt.record.method},
        "drift": drift,
        "created": utc_now(),
    }
    entries: dict[str, Path | bytes] = {
        PACKAGE_RECORD_NAME: _json_bytes(record),
        MANIFEST_NAME: expert.root / MANIFEST_NAME,
        CONTRACT_NAME: _json_bytes({"fingerprint": expert.fingerprint, "contract": expert.contract.canonical()}),
        TEMPLATE_NAME: expert.contract.chat_template().encode(),
        EVAL_NAME: _json_bytes(eval_summary(ckpt)),
    }
    entries.update(_checkpoint_files(ckpt))
    for name, path in _resource_files(expert).items():
        if name in entries or name.split("/")[0] in (CHECKPOINT_DIR, CHECKSUMS_NAME):
            raise ExpertkitError(f"resource file {name!r} clashes with a file of the package layout",
                                 path=expert.root / MANIFEST_NAME, key="output.resources")
        entries[name] = path
    sums = {name: hashlib.sha256(src).hexdigest() if isinstance(src, bytes) else sha256_file(src)
            for name, src in entries.items()}
    verify_checksums(ckpt, {n.removeprefix(f"{CHECKPOINT_DIR}/"): d for n, d in sums.items()
                            if n.startswith(f"{CHECKPOINT_DIR}/")})
    entries[CHECKSUMS_NAME] = "".join(f"{sums[n]}  {n}\n" for n in sorted(sums)).encode()
    ensure_dir(out.parent, key="--out")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        usual_file_mode(fd)  # mkstemp makes 0600 files: an archive is shared as usual
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name in sorted(entries):
                _add_entry(tar, name, entries[name])
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def _add_entry(tar: tarfile.TarFile, name: str, source: Path | bytes) -> None:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    info.mtime = int(time.time())
    if isinstance(source, bytes):
        info.size = len(source)
        tar.addfile(info, io.BytesIO(source))
        return
    info.size = source.stat().st_size
    with source.open("rb") as fh:
        tar.addfile(info, fh)


# ---------------------------------------------------------------------- installing
def _bad(archive: Path, message: str) -> ExpertkitError:
    return ExpertkitError(f"refused: {message}", path=archive)


def _member_name(archive: Path, member: tarfile.TarInfo) -> str:
    """The entry's checked relative path; links, devices, absolute paths and ``..`` are refused."""
    name = member.name
    if member.issym() or member.islnk():
        raise _bad(archive, f"entry {name!r} is a {'symbolic' if member.issym() else 'hard'} link")
    if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE):
        raise _bad(archive, f"entry {name!r} is not a regular file or folder (device, fifo, sparse or other)")
    if name.startswith("/") or "\\" in name or re.match(r"^[A-Za-z]:", name):
        raise _bad(archive, f"entry {name!r} has an absolute path")
    parts = name.rstrip("/").split("/") if member.isdir() else name.split("/")
    if ".." in parts:
        raise _bad(archive, f"entry {name!r} climbs out of the package ('..')")
    if any(p in ("", ".") or "\x00" in p for p in parts):
        raise _bad(archive, f"entry {name!r} is not a plain relative path")
    return "/".join(parts)


def _parse_sums(archive: Path, data: bytes) -> dict[str, str]:
    sums: dict[str, str] = {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(archive, f"{CHECKSUMS_NAME} is not UTF-8 text") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        m = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line)
        if m is None or m.group(2) in sums:
            raise _bad(archive, f"{CHECKSUMS_NAME} line {number} is not one 'SHA256  PATH' line for a new path")
        sums[m.group(2)] = m.group(1)
    return sums


def _copy_hashed(source: IO[bytes], target: Path, size: int) -> str:
    """Copy at most ``size`` bytes (the size the entry declares, checked against the limits)."""
    digest = hashlib.sha256()
    left = size
    with target.open("xb") as fh:
        while left > 0:
            chunk = source.read(min(_CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            digest.update(chunk)
            fh.write(chunk)
    return digest.hexdigest()


def _limit(variable: str, default: int) -> int:
    value = os.environ.get(variable, "")
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ExpertkitError(f"must be a whole number of bytes, got {value!r}", key=variable)
    return int(value)


def _check_sizes(archive: Path, members: dict[str, tarfile.TarInfo]) -> None:
    """Sizes the tar headers declare, before anything is read: the checksum file, every member, the total."""
    max_weights = _limit("EXPERTKIT_PACKAGE_MAX_MEMBER_BYTES", MAX_WEIGHTS_BYTES)
    max_total = _limit("EXPERTKIT_PACKAGE_MAX_BYTES", MAX_PACKAGE_BYTES)
    total = 0
    for name, member in members.items():
        if not member.isreg():
            continue
        cap = (MAX_CHECKSUMS_BYTES if name == CHECKSUMS_NAME else max_weights if name.endswith(".safetensors")
               else MAX_OTHER_BYTES)
        if member.size > cap:
            raise _bad(archive, f"entry {name!r} unpacks to {member.size} bytes, over the {cap}-byte limit "
                       "for such a file")
        total += member.size
    if total > max_total:
        raise _bad(archive, f"it unpacks to {total} bytes, over the {max_total}-byte limit "
                   "(EXPERTKIT_PACKAGE_MAX_BYTES raises it)")


def _extract_verified(archive: Path, dest: Path) -> None:
    """Extract ``archive`` into the empty folder ``dest``, checking every entry and every checksum."""
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            members: dict[str, tarfile.TarInfo] = {}
            for member in tar:
                name = _member_name(archive, member)
                if name in members:
                    raise _bad(archive, f"entry {name!r} appears twice")
                members[name] = member
                if len(members) > MAX_ENTRIES:
                    raise _bad(archive, f"more than {MAX_ENTRIES} entries")
            files = {n for n, m in members.items() if m.isreg()}
            for name in files:
                parent = name.rpartition("/")[0]
                while parent:
                    if parent in files:
                        raise _bad(archive, f"entry {name!r} lies under the file {parent!r}")
                    parent = parent.rpartition("/")[0]
            if CHECKSUMS_NAME not in files:
                raise _bad(archive, f"no {CHECKSUMS_NAME}: not an expertkit package")
            _check_sizes(archive, members)
            sums_file = tar.extractfile(members[CHECKSUMS_NAME])
            assert sums_file is not None
            sums = _parse_sums(archive, sums_file.read())
            unlisted = sorted(files - set(sums) - {CHECKSUMS_NAME})
            if unlisted:
                raise _bad(archive, f"entries not in {CHECKSUMS_NAME}: {', '.join(unlisted[:5])}")
            absent = sorted(set(sums) - files)
            if absent:
                raise _bad(archive, f"{CHECKSUMS_NAME} lists files the archive lacks: {', '.join(absent[:5])}")
            needed = sum(m.size for m in members.values() if m.isreg())
            free = shutil.disk_usage(dest).free
            if needed > free:
                raise _bad(archive, f"it unpacks to {needed} bytes; the registry's disk has {free} free")
            root = dest.resolve()
            for name, member in members.items():
                target = root / name
                if not target.resolve().is_relative_to(root):  # defence in depth; names are checked above
                    raise _bad(archive, f"entry {name!r} would land outside the package folder")
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                digest = _copy_hashed(source, target, member.size)
                if name != CHECKSUMS_NAME and digest != sums[name]:
                    raise _bad(archive, f"checksum mismatch for {name!r}: the archive was altered or damaged")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise _bad(archive, f"corrupt or truncated archive ({type(exc).__name__}: {exc})") from None


@contextmanager
def _locked(home: Path) -> Iterator[None]:
    """Hold the registry's lock (one install or remove at a time)."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_index(home: Path) -> list[dict[str, Any]]:
    path = home / INDEX_NAME
    if not path.is_file():
        return []
    data = read_json(path, what="registry index")
    entries = data.get("experts") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ExpertkitError("registry index has no 'experts' list", path=path)
    return entries


def _write_index(home: Path, entries: list[dict[str, Any]]) -> None:
    entries = sorted(entries, key=lambda e: (e["name"], _version_key(e["version"])))
    atomic_write_json(home / INDEX_NAME, {"format": PACKAGE_FORMAT, "experts": entries})


def _version_key(version: str) -> tuple[int, Any]:
    from packaging.version import InvalidVersion, Version

    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def _entry(home: Path, item: dict[str, Any]) -> InstalledExpert:
    return InstalledExpert(name=str(item["name"]), version=str(item["version"]),
                           fingerprint=str(item.get("fingerprint", "")), kind=str(item.get("kind", "")),
                           installed=str(item.get("installed", "")), path=home / str(item["path"]))


def install_package(archive: str | Path) -> InstalledExpert:
    """Verify ``archive`` and install it as ``$EXPERTKIT_HOME/experts/NAME/VERSION``."""
    source = Path(archive)
    if source.is_dir():
        raise ExpertkitError("is a directory, expected a .expert archive file", path=source)
    if not source.is_file():
        raise ExpertkitError("no such archive file", path=source)
    home = registry_home()
    with _locked(home):
        staging_root = home / "tmp"
        staging_root.mkdir(parents=True, exist_ok=True)
        for leftover in staging_root.iterdir():  # under the lock, anything here was left by a killed process
            shutil.rmtree(leftover, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix="install-", dir=staging_root))
        try:
            _extract_verified(source, staging)
            record, expert = _check_contents(source, staging)
            name, version = expert.name, expert.manifest.version
            dest = home / "experts" / name / version
            entries = _read_index(home)
            if any((e.get("name"), e.get("version")) == (name, version) for e in entries):
                raise ExpertkitError(f"{name}@{version} is already installed (expertkit remove {name}@{version} "
                                     "first)", path=source)
            if dest.exists():  # not in the index: left by an install or remove that was killed halfway
                _discard(dest, staging_root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            usual_dir_mode(staging)  # mkdtemp makes it 0700
            os.rename(staging, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        item = {
            "name": name,
            "version": version,
            "fingerprint": expert.fingerprint,
            "kind": record["checkpoint"]["kind"],
            "installed": utc_now(),
            "path": dest.relative_to(home).as_posix(),
            "archive_sha256": sha256_file(source),
        }
        try:
            _write_index(home, [*entries, item])
        except BaseException:  # not listed, so not installed: take the folder back out
            _discard(dest, staging_root)
            raise
    return _entry(home, item)


def _discard(folder: Path, trash_root: Path) -> None:
    """Remove an installed folder: renamed into ``trash_root`` first, so that it vanishes at once."""
    trash = Path(tempfile.mkdtemp(prefix="remove-", dir=trash_root))
    os.rename(folder, trash / "expert")
    shutil.rmtree(trash, ignore_errors=True)


def _check_contents(archive: Path, folder: Path) -> tuple[dict[str, Any], Expert]:
    """The package record and expert of an extracted, checksum-verified archive."""
    try:
        record = read_json(folder / PACKAGE_RECORD_NAME)
    except ExpertkitError:
        raise _bad(archive, f"no readable {PACKAGE_RECORD_NAME}") from None
    if not isinstance(record, dict) or record.get("format") != PACKAGE_FORMAT:
        raise _bad(archive, f"unknown package format {record.get('format') if isinstance(record, dict) else '?'}")
    pickled = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickled:
        raise _bad(archive, f"{pickled[0]!r} is a pickle file (pickles can run code; weights are safetensors only)")
    try:
        expert = Expert.load(folder)
        outside = expert.paths_outside()
        if outside:
            raise ExpertkitError("the manifest's path leads outside the expert package", key=outside[0])
        resources = _resource_files(expert)  # every resource inside the package
        weights = _checkpoint_files(load_checkpoint(folder / CHECKPOINT_DIR))  # complete, whole safetensors
    except ExpertkitError as exc:  # its path is in the staging folder: name the member and the key instead
        inside = exc.path is not None and Path(exc.path).is_relative_to(folder) and Path(exc.path) != folder
        member = f"{Path(exc.path).relative_to(folder).as_posix()}: " if inside and exc.path else ""
        raise _bad(archive, member + (f"{exc.key}: {exc.message}" if exc.key else exc.message)) from None
    expected = {PACKAGE_RECORD_NAME, MANIFEST_NAME, CONTRACT_NAME, TEMPLATE_NAME, EVAL_NAME, CHECKSUMS_NAME,
                *resources, *weights}
    unexpected = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                        if p.is_file() and p.relative_to(folder).as_posix() not in expected)
    if unexpected:
        raise _bad(archive, f"it holds files a package does not need: {', '.join(unexpected[:5])}"
                   + (f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else ""))
    if (record.get("name"), record.get("version")) != (expert.name, expert.manifest.version) or not isinstance(
        record.get("checkpoint"), dict
    ):
        raise _bad(archive, f"{PACKAGE_RECORD_NAME} does not match the manifest")
    return record, expert


# ---------------------------------------------------------------------- the registry
def _split_spec(spec: str) -> tuple[str, str | None]:
    name, sep, version = spec.partition("@")
    if not NAME_RE.match(name) or (sep and not VERSION_RE.match(version)):
        raise ExpertkitError(f"{spec!r} is not NAME or NAME@VERSION")
    return name, version if sep else None


def list_installed() -> list[InstalledExpert]:
    """Installed experts, by name and version."""
    home = registry_home()
    return [_entry(home, item) for item in _read_index(home)]


def resolve_installed(spec: str) -> InstalledExpert:
    """``NAME`` (the highest installed version) or ``NAME@VERSION``."""
    name, version = _split_spec(spec)
    found = [i for i in list_installed() if i.name == name and version in (None, i.version)]
    if not found:
        known = sorted({f"{i.name}@{i.version}" for i in list_installed()})
        raise ExpertkitError(f"{spec!r} is not installed (installed: {', '.join(known) or 'none'})")
    return max(found, key=lambda i: _version_key(i.version))


def remove_installed(spec: str) -> list[str]:
    """Remove ``NAME`` (every version) or ``NAME@VERSION``; returns the ``NAME@VERSION`` removed."""
    name, version = _split_spec(spec)
    home = registry_home()
    with _locked(home):
        entries = _read_index(home)
        gone = [e for e in entries if e.get("name") == name and version in (None, e.get("version"))]
        if not gone:
            raise ExpertkitError(f"{spec!r} is not installed")
        _write_index(home, [e for e in entries if e not in gone])
        trash_root = home / "tmp"
        trash_root.mkdir(parents=True, exist_ok=True)
        for item in gone:
            folder = home / str(item["path"])
            if folder.is_dir() and folder.resolve().is_relative_to((home / "experts").resolve()):
                _discard(folder, trash_root)
        with_name = home / "experts" / name
        if with_name.is_dir() and not any(with_name.iterdir()):
            with_name.rmdir()
    return [f"{e['name']}@{e['version']}" for e in gone]
