"""The small elastic-shaped expert the training tests share (a JSON-kind manifest, generated records) and a
tiny base trained on its records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from expertkit.expert import Expert
from expertkit.models.base import build_tiny_base

INDICES = {
    "kibana_sample_data_ecommerce": ["customer_first_name", "category", "manufacturer", "currency"],
    "kibana_sample_data_flights": ["Carrier", "DestCountry", "OriginWeather", "FlightDelayType"],
    "kibana_sample_data_logs": ["extension", "geo.src", "machine.os", "response"],
}
VALUES = ["Eddie", "Oslo", "Rain", "gz", "Kibana Airlines", "EUR", "win 8", "200"]
MANIFEST = """\
name: mini
base_model: Qwen/Qwen3-0.6B
output:
  kind: json
contract:
  wrapper: qwen3
  fields:
    - name: Dialect
      values: [elastic]
      aliases: {es: elastic}
    - name: Task
      values: [query_dsl]
    - name: Index
      values: [kibana_sample_data_ecommerce, kibana_sample_data_flights, kibana_sample_data_logs]
training:
  lora_r: 4
  lora_alpha: 8
  max_length: 128
  batch_size: 8
  learning_rate: 0.001
  seed: 7
"""


def mini_records(n: int, offset: int = 0) -> list[dict[str, Any]]:
    out = []
    names = sorted(INDICES)
    for i in range(offset, offset + n):
        index = names[i % 3]
        fld = INDICES[index][(i // 3) % 4]
        value = VALUES[(i // 12) % len(VALUES)]
        size = 1 + i % 7
        out.append({
            "fields": {"Dialect": "elastic", "Task": "query_dsl", "Index": index},
            "question": f"Show {size} documents where {fld} is {value}",
            "answer": json.dumps({"size": size, "query": {"term": {fld: value}}}, separators=(",", ":")),
        })
    return out


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def mini_expert(root: Path, train: int, *, evals: int = 4, manifest: str = MANIFEST) -> Path:
    """The expert folder with ``train`` training records and ``evals`` eval records."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "expert.yaml").write_text(manifest)
    write_jsonl(root / "data" / "train.jsonl", mini_records(train))
    write_jsonl(root / "data" / "eval.jsonl", mini_records(evals, offset=1000))
    return root


def mini_base(folder: Path, expert_dir: Path) -> str:
    """A tiny base (vocabulary 400) whose tokenizer was trained on the expert's conversations."""
    expert = Expert.load(expert_dir)
    corpus = [expert.contract.render_conversation(r["fields"], r["question"], r["answer"]) for r in mini_records(64)]
    return str(build_tiny_base(folder / "tiny", corpus=corpus, vocab_size=400))
