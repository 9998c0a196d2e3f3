"""``expertkit new``: scaffold ``experts/NAME`` so that every expert starts from the same contract shape.

The folder gets a manifest (``qwen3`` wrapper; the output kind's starting fields — its routing fields, one
allowed value each, set by ``--field NAME=VALUE``, and a field for each role it reads — then the extra
free-text fields), a README
documenting the exact prompt (rendered by the contract) and the kind's resources, an empty
``data/train.jsonl`` and a ``data/eval.jsonl`` holding one record with the kind's example answer. The
folder is built under a temporary name and renamed when whole; an existing one is never touched.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from expertkit.core.contract import DEFAULT_WRAPPER, PromptContract
from expertkit.core.errors import ExpertkitError
from expertkit.core.fileio import usual_dir_mode
from expertkit.core.manifest import MANIFEST_NAME, NAME_RE, Manifest, parse_manifest
from expertkit.kinds import DEFAULT_KIND, OutputKind, check_manifest, kind_class

_FIELD_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def _parse_field(item: str, fixed: Sequence[str]) -> tuple[str, bool]:
    name, sep, flag = item.partition(":")
    name = name.strip()
    if not _FIELD_RE.match(name):
        raise ExpertkitError(f"field name {name!r} must start with a letter and hold letters, digits, '_', '.', '-'",
                             key="--field")
    if sep and flag.strip() != "required":
        raise ExpertkitError(f"--field expects NAME, NAME:required or NAME=VALUE, got {item!r}", key="--field")
    if name in fixed:
        raise ExpertkitError(f"{name} is always in the contract (set it with --field {name}=VALUE)", key="--field")
    return name, bool(sep)


def _starting_values(kind: type[OutputKind], given: Mapping[str, str], items: Sequence[str]
                     ) -> tuple[dict[str, str], list[str]]:
    """The values of the kind's starting fields (by field name; a ``given`` name matches case-insensitively) from
    ``given`` and the ``NAME=VALUE`` items; and the other items (extra fields)."""
    starting = list(dict.fromkeys([*(n for n, _ in kind.scaffold_routing), *(r.default for r in kind.roles)]))
    by_lower = {n.lower(): n for n in starting}
    values: dict[str, str] = {}
    extra: list[str] = []
    pairs = [(k, v, False) for k, v in given.items()]
    for item in items:
        if "=" in item:
            key, _, value = item.partition("=")
            pairs.append((key.strip(), value, True))
        else:
            extra.append(item)
    for key, value, exact in pairs:
        name = key if key in starting else None if exact else by_lower.get(key.lower())
        if name is None:
            known = ", ".join(starting) or "none"
            raise ExpertkitError(f"--field {key}=VALUE sets a field output kind {kind.name!r} starts the contract "
                                 f"with (its fields: {known}); give other fields as NAME or NAME:required",
                                 key="--field")
        if name in values:
            raise ExpertkitError(f"field {name!r} is given twice", key="--field")
        values[name] = value
    return values, extra


def _manifest_data(name: str, start: list[dict[str, Any]], fields: list[dict[str, Any]], output_kind: str
                   ) -> dict[str, Any]:
    routed = ", ".join(f"{f['name']}: {f['values'][0]}" for f in start if f.get("route"))
    return {
        "name": name,
        "version": "0.1.0",
        "description": f"Answers questions{f' ({routed})' if routed else ''}, directly, without reasoning.",
        "base_model": "Qwen/Qwen3-0.6B",
        "output": {"kind": output_kind},
        "contract": {"wrapper": DEFAULT_WRAPPER, "fields": fields},
        "data": {"train": "data/train.jsonl", "eval": "data/eval.jsonl"},
    }


def _kind(name: str) -> type[OutputKind]:
    try:
        return kind_class(name)
    except ExpertkitError as exc:
        raise ExpertkitError(exc.message, key="--output-kind") from None


def _extra_fields(extra: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    return [{"name": f, "required": req, "description": "Free text."} for f, req in extra]


def _readme(manifest: Manifest, kind: type[OutputKind], fields: dict[str, str], question: str, answer: str) -> str:
    name = manifest.name
    contract = PromptContract(manifest.contract)
    rows = "\n".join(
        f"| `{f.name}` | {'yes' if f.required else 'no'} | "
        f"{', '.join(f'`{v}`' for v in f.values) if f.values else 'free text'} |"
        for f in contract.fields
    )
    flags = " ".join(f"--field {shlex.quote(f'{k}={v}')}" for k, v in fields.items())
    record = json.dumps({"fields": fields, "question": question, "answer": answer}, ensure_ascii=False)
    messages = json.dumps(contract.messages(fields, question), indent=2, ensure_ascii=False)
    return f"""# {name}

{manifest.description}

## The prompt contract (fingerprint `{contract.fingerprint}`)

Every prompt this expert is trained, evaluated and served with is rendered by the contract in
`expert.yaml` (`contract:`): the `{contract.wrapper}` wrapper ({contract.wrapper.description})
and a system block of `Name: value` lines in this order:

| field | required | values |
| --- | --- | --- |
{rows}

The exact generation prompt for one example
(`expertkit render experts/{name} {flags} --question {shlex.quote(question)}`):

```text
{contract.render_prompt(fields, question)}
```

The model answers with the answer alone, then `{contract.end_of_turn}`. As chat messages (what an OpenAI-compatible
client sends to `expertkit serve`, checked like `expertkit check-prompt`):

```json
{messages}
```

## Data

* `data/train.jsonl` — the training set, empty for now. One record per line:
  `{record}`
* `data/eval.jsonl` — held-out eval cases, same shape. It holds one example record showing the shape:
  replace it with real cases.

{kind.resource_notes}

## Next steps

```sh
expertkit lint experts/{name}
expertkit train experts/{name} --out runs/{name}
expertkit compare experts/{name} --run runs/{name}
expertkit package experts/{name} --checkpoint runs/{name}/checkpoint-N --out {name}.expert
```
"""


def new_expert(
    name: str,
    *,
    values: Mapping[str, str] | None = None,
    fields: Sequence[str] = (),
    output_kind: str = DEFAULT_KIND,
    root: str | Path = ".",
) -> Path:
    """Create ``ROOT/experts/NAME`` and return its path; an existing folder is refused.

    ``values`` (field name → value) and the ``fields`` given as ``NAME=VALUE`` set the kind's starting fields
    (its routing fields need one); the other ``fields`` (``NAME`` or ``NAME:required``) are extra free-text
    fields."""
    if not NAME_RE.match(name):
        raise ExpertkitError(f"expert name {name!r} must be lower case letters, digits, '_' or '-' (at most 64)",
                             key="NAME")
    kind = _kind(output_kind)
    given, items = _starting_values(kind, values or {}, fields)
    start = kind.scaffold_fields(given)
    fixed = [f["name"] for f in start]
    extra = [_parse_field(item, fixed) for item in items]
    names = [f for f, _ in extra]
    dupes = sorted({f for f in names if names.count(f) > 1})
    if dupes:
        raise ExpertkitError(f"field {dupes[0]!r} is given twice", key="--field")
    parent = Path(root) / "experts"
    target = parent / name
    if target.exists():
        raise ExpertkitError("already exists; refusing to overwrite it", path=target)
    text = (f"# The {name} expert, scaffolded by `expertkit new`: edit the description, add resources and data.\n"
            + yaml.safe_dump(_manifest_data(name, start, start + _extra_fields(extra), output_kind),
                             sort_keys=False, allow_unicode=True, width=100))
    try:
        manifest = parse_manifest(text, MANIFEST_NAME)
        check_manifest(manifest, text, MANIFEST_NAME)
    except ExpertkitError as exc:  # a value the contract refuses: name the field it came from
        where = {f"contract.fields.{i}": f"--field {f['name']}" for i, f in enumerate(start)}
        raise ExpertkitError(exc.message, key=where.get(exc.key or "", "--field")) from None
    example_fields = {**kind.scaffold_example(given), **{f: f"example {f}" for f in names}}
    question = "An example question."
    answer = kind.example_answer
    readme = _readme(manifest, kind, example_fields, question, answer)
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=parent))
    try:
        usual_dir_mode(tmp)  # mkdtemp makes it 0700
        (tmp / "data").mkdir()
        (tmp / MANIFEST_NAME).write_text(text, encoding="utf-8")
        (tmp / "README.md").write_text(readme, encoding="utf-8")
        (tmp / "data" / "train.jsonl").write_text("", encoding="utf-8")
        record = {"fields": example_fields, "question": question, "answer": answer}
        (tmp / "data" / "eval.jsonl").write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
        if target.exists():
            raise ExpertkitError("already exists; refusing to overwrite it", path=target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
