"""Seeded, deterministic dataset generators (``expertkit data generate``): the helpers and the registry.

A generator is a module with ``build(expert, train_size, eval_size, seed) -> {"train": [Record], "eval":
[Record]}`` and, optionally, ``write_resources(expert)`` for the resources it produces besides the data. It
is registered under a name in the entry-point group :data:`ENTRY_POINT_GROUP`, which a manifest's
``data.generator`` names; the shipped experts' generators (``experts/*/generator.py``, installed as
``expertkit_experts``) are registered the same way, in expertkit's own ``pyproject.toml``.

A generator draws records ``{"fields", "question", "answer"}`` from intents: each intent has its own
question templates (some held out for eval only) and draws values from vocabularies whose held-out
part only eval uses. The same seed always gives byte-identical files.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from expertkit.core.data import question_key
from expertkit.core.errors import ExpertkitError
from expertkit.core.fileio import atomic_write_text, ensure_dir
from expertkit.core.plugins import load_plugin, plugin_names

if TYPE_CHECKING:
    from expertkit.expert import Expert

#: The entry-point group of dataset generators: ``NAME = "package.module"`` (the module is the generator).
ENTRY_POINT_GROUP = "expertkit.generators"
Split = str  # "train" | "eval"


@dataclass(frozen=True)
class Record:
    """One generated record and how it was made (the metadata never reaches the files)."""

    fields: dict[str, str]
    question: str
    answer: str
    intent: str
    template: str
    #: Vocabulary values the question was built from (checked against the held-out lists).
    values: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"fields": self.fields, "question": self.question, "answer": self.answer}


@dataclass(frozen=True)
class Vocab:
    """Values of one vocabulary: ``train`` for both splits' pools, ``held_out`` for eval only."""

    train: tuple[str, ...]
    held_out: tuple[str, ...] = ()

    def pool(self, split: Split) -> tuple[str, ...]:
        return self.held_out if split == "eval" and self.held_out else self.train


@dataclass(frozen=True)
class Templates:
    """Question templates of one intent: ``train`` ones and ``held_out`` ones (eval only)."""

    train: tuple[str, ...]
    held_out: tuple[str, ...]

    def pool(self, split: Split) -> tuple[str, ...]:
        return self.held_out if split == "eval" else self.train


@dataclass
class Picker:
    """Draws templates and values for one split from one ``random.Random``."""

    rng: random.Random
    split: Split
    drawn: list[str] = field(default_factory=list)

    def choice(self, seq: Sequence[Any]) -> Any:
        return seq[self.rng.randrange(len(seq))]

    def value(self, vocab: Vocab) -> str:
        v: str = self.choice(vocab.pool(self.split))
        self.drawn.append(v)
        return v

    def values(self, vocab: Vocab, k: int) -> list[str]:
        pool = vocab.pool(self.split)
        if len(pool) < k:
            pool = tuple(dict.fromkeys((*pool, *vocab.train)))
        out = self.rng.sample(list(pool), k)
        self.drawn.extend(out)
        return out

    def template(self, templates: Templates) -> str:
        t: str = self.choice(templates.pool(self.split))
        return t


def fill(template: str, slots: dict[str, Any]) -> str:
    """Fill a template and capitalise its first letter."""
    text = " ".join(template.format(**slots).split())
    return text[:1].upper() + text[1:]


#: Draws one record with a picker.
Maker = Callable[[Picker], Record]


def draw(make: Maker, n: int, rng: random.Random, split: Split, exclude: set[str]) -> list[Record]:
    """``n`` records with questions distinct from each other and from ``exclude``."""
    seen = set(exclude)
    out: list[Record] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise ExpertkitError(f"could not draw {n} distinct {split} questions (got {len(out)})")
        rec = make(Picker(rng, split))
        key = question_key(rec.question)
        if key in seen:
            continue
        seen.add(key)
        out.append(rec)
    return out


def build_splits(make: Maker, name: str, train_size: int, eval_size: int, seed: int) -> dict[str, list[Record]]:
    """Eval first (independent of ``train_size``), then train with eval's questions excluded."""
    eval_rng = random.Random(f"{name}:eval:{seed}")
    train_rng = random.Random(f"{name}:train:{seed}")
    eval_records = draw(make, eval_size, eval_rng, "eval", set())
    train_records = draw(make, train_size, train_rng, "train", {question_key(r.question) for r in eval_records})
    return {"train": train_records, "eval": eval_records}


def generator_names() -> list[str]:
    """The generators installed (the entry points of :data:`ENTRY_POINT_GROUP`)."""
    return plugin_names(ENTRY_POINT_GROUP)


def _module(name: str, manifest: Path | None = None) -> Any:
    """The generator registered as ``name``: a module with ``build`` (and, optionally, ``write_resources``)."""
    found = load_plugin(ENTRY_POINT_GROUP, name, what="generator", key="data.generator", path=manifest)
    if found is None:
        raise ExpertkitError(f"unknown generator {name!r} (known: {', '.join(generator_names()) or 'none'})",
                             path=manifest, key="data.generator")
    module, value = found
    if not callable(getattr(module, "build", None)):
        raise ExpertkitError(f"generator {name!r} ({value}) has no build(expert, train_size, eval_size, "
                             "seed) function", path=manifest, key="data.generator")
    return module


def generate_records(
    expert: Expert, *, train_size: int | None = None, eval_size: int | None = None, seed: int | None = None
) -> dict[str, list[Record]]:
    """The records (with metadata) that :func:`generate_dataset` writes."""
    data = expert.manifest.data
    if not data.generator:
        raise ExpertkitError("the manifest names no generator", path=expert.root / "expert.yaml",
                             key="data.generator")
    build = cast(Callable[..., dict[str, list[Record]]], _module(data.generator, expert.root / "expert.yaml").build)
    n_train = data.train_size if train_size is None else train_size
    n_eval = data.eval_size if eval_size is None else eval_size
    if n_train < 1 or n_eval < 1:
        raise ExpertkitError("train and eval sizes must be at least 1", key="train_size")
    return build(expert, n_train, n_eval, data.seed if seed is None else seed)


def generate_dataset(
    expert: Expert,
    *,
    train_size: int | None = None,
    eval_size: int | None = None,
    seed: int | None = None,
    out_dir: str | Path | None = None,
    force: bool = False,
) -> dict[str, tuple[Path, int]]:
    """Generate and write the expert's train and eval JSONL; returns ``{split: (path, records)}``.

    Defaults come from the manifest's ``data`` section; ``out_dir`` writes ``train.jsonl`` and
    ``eval.jsonl`` there instead of the manifest paths. An existing dataset that differs from what is
    generated (edited by hand, or of other settings) is refused, before anything is written, unless ``force``.
    """
    splits = generate_records(expert, train_size=train_size, eval_size=eval_size, seed=seed)
    targets = {split: (Path(out_dir) / f"{split}.jsonl" if out_dir is not None
                       else expert.train_path if split == "train" else expert.eval_path) for split in splits}
    texts = {split: "".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in records)
             for split, records in splits.items()}
    if not force:
        for split, path in targets.items():
            if path.is_file() and path.read_bytes() != texts[split].encode("utf-8"):
                raise ExpertkitError("already holds a different dataset; pass --force to replace it", path=path,
                                     key="--out-dir" if out_dir is not None else f"data.{split}")
    if out_dir is not None:
        ensure_dir(out_dir, key="--out-dir")
    write_resources = getattr(_module(str(expert.manifest.data.generator)), "write_resources", None)
    if write_resources is not None and out_dir is None:
        write_resources(expert)
    result: dict[str, tuple[Path, int]] = {}
    for split, records in splits.items():
        atomic_write_text(targets[split], texts[split])
        result[split] = (targets[split], len(records))
    return result
