"""The small elastic expert of tests/test_train.py and a tiny base trained on its records, for other test files."""

from __future__ import annotations

from pathlib import Path

from test_train import MANIFEST, _records, _write_jsonl

from expertkit.expert import Expert
from expertkit.models.base import build_tiny_base


def mini_expert(root: Path, train: int, *, manifest: str = MANIFEST) -> Path:
    """The expert folder with ``train`` training records and 4 eval records."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "expert.yaml").write_text(manifest)
    _write_jsonl(root / "data" / "train.jsonl", _records(train))
    _write_jsonl(root / "data" / "eval.jsonl", _records(4, offset=1000))
    return root


def mini_base(folder: Path, expert_dir: Path) -> str:
    """A tiny base (vocabulary 400) whose tokenizer was trained on the expert's conversations."""
    expert = Expert.load(expert_dir)
    corpus = [expert.contract.render_conversation(r["fields"], r["question"], r["answer"]) for r in _records(64)]
    return str(build_tiny_base(folder / "tiny", corpus=corpus, vocab_size=400))
