"""The expert manifest, ``expert.yaml``, validated with pydantic.

``output.kind`` stays a name here: the core knows no kind. The layer above checks it against the kinds'
registry (:func:`expertkit.kinds.check_manifest`, called by :func:`expertkit.expert.load_manifest`, ``Expert.load``
and ``expertkit new``), naming the line with :func:`line_of`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from expertkit.core.contract import ContractSpec
from expertkit.core.errors import ExpertkitError
from expertkit.core.fileio import read_text
from expertkit.core.options import MAX_COUNT, MAX_SEED

MANIFEST_NAME = "expert.yaml"
#: An expert's name (also its folder under ``experts/`` and in the registry) and its version.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+-]{0,31}$")
Metric = Literal["valid", "equivalent", "execution_match", "direct_valid", "component_f1", "correct"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutputSpec(_Strict):
    """What the expert answers, and the files its validator needs (paths relative to the expert)."""

    #: The output kind's name (:mod:`expertkit.kinds`: a built-in one or a plug-in's), checked against the kinds'
    #: registry one layer up (:func:`expertkit.kinds.check_manifest`).
    kind: str
    #: The kind's resources by name (each kind documents its own: see ``docs/kinds.md``).
    resources: dict[str, str] = Field(default_factory=dict)
    #: The dialect the answers are written in, for kinds that have dialects.
    dialect: str | None = None


class _Settings(_Strict):
    """A settings section: the one declaration of each setting (default, documentation, checks); profiles and
    the command line override it (:mod:`expertkit.core.settings`). ``nan`` and ``inf`` are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _count(default: int | None, description: str) -> Any:
    return Field(default=default, ge=1, le=MAX_COUNT, description=description)


class DataSpec(_Settings):
    """Where the expert's data is, and how ``expertkit data generate`` makes it."""

    train: str = Field(default="data/train.jsonl", description="Training set (relative to the expert).")
    eval: str = Field(default="data/eval.jsonl", description="Held-out eval set (relative to the expert).")
    generator: str | None = Field(default=None, description="Name of the dataset generator, if any.")
    train_size: int = _count(6000, "Training records to generate.")
    eval_size: int = _count(320, "Eval records to generate.")
    seed: int = Field(default=0, ge=0, le=MAX_SEED, description="Seed of the generator.")


class TrainingSpec(_Settings):
    """How the expert is trained (``expertkit train``)."""

    method: Literal["lora", "dora", "full"] = Field(default="lora", description="lora, dora or full fine-tuning.")
    lora_r: int = Field(default=16, ge=1, le=MAX_COUNT, description="LoRA/DoRA rank.")
    lora_alpha: int = Field(default=32, ge=1, le=MAX_COUNT, description="LoRA/DoRA scaling alpha.")
    lora_dropout: float = Field(default=0.05, ge=0, lt=1, description="Dropout on the adapter's input.")
    target_modules: str | list[str] = Field(default="all-linear", description="Modules the adapter wraps.")
    learning_rate: float = Field(default=2e-4, gt=0, description="Peak learning rate.")
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = Field(
        default="linear", description="Learning-rate schedule after the warmup.")
    batch_size: int = _count(16, "Examples per device and micro-batch (padded batches; sizes padding-free ones).")
    gradient_accumulation_steps: int = _count(1, "Micro-batches per optimizer step.")
    max_length: int = Field(default=1024, ge=16, le=MAX_COUNT,
                            description="Longest example in tokens (longer ones are lint errors).")
    max_tokens_per_batch: int | None = Field(
        default=None, ge=0, le=MAX_COUNT,
        description="Padding-free batches (expertkit.training.packing) of at most this many tokens per device and "
                    "micro-batch; 0 trains padded batches of batch_size examples; unset, about batch_size "
                    "examples' tokens.")
    steps: int | None = _count(None, "Optimizer steps (unset: from epochs).")
    epochs: float = Field(default=1.0, gt=0, description="Passes over the data, when steps is unset.")
    save_every: int = _count(50, "Checkpoint every N steps.")
    warmup_ratio: float = Field(default=0.03, ge=0, lt=1, description="Warmup as a share of the steps.")
    warmup_steps: int | None = Field(default=None, ge=0, le=MAX_COUNT,
                                     description="Warmup in steps (unset: warmup_ratio of the steps).")
    weight_decay: float = Field(default=0.0, ge=0, description="AdamW weight decay.")
    question_noise: float = Field(
        default=0.0, ge=0, lt=1,
        description="Share of question tokens replaced by random tokens in each epoch (a regulariser for a base "
                    "trained from scratch).")
    seed: int = Field(default=42, ge=0, le=MAX_SEED, description="Seed of weights, data order and noise.")
    eval_every: int | None = _count(None, "Score the checkpoint every N steps while training (none: no scoring).")
    eval_cases: int | None = _count(None, "Score a fixed seeded subset of K eval cases (none: all of them).")
    early_stop: int | None = _count(
        None, "Stop when evaluation.metric has not improved for this many evaluations.")
    min_delta: float = Field(default=0.0, ge=0, description="The smallest rise of the metric that counts as an "
                                                             "improvement.")
    keep: Literal["all", "best", "last"] = Field(
        default="all", description="Which checkpoints stay on disk: all, the best and the latest, or the latest.")


class DecodingSpec(_Settings):
    """How answers are generated (compare, serve, ask)."""

    max_new_tokens: int = _count(256, "Most tokens generated per answer.")
    constrain: Literal["none", "json", "schema"] = Field(
        default="none", description="Constrained decoding (xgrammar): none, json (any JSON) or schema (what the "
                                    "validator accepts).")
    temperature: float = Field(default=0.7, gt=0, description="Sampling temperature for validator-guided "
                                                              "decoding (--samples N); greedy decoding ignores it.")
    top_p: float = Field(default=0.95, gt=0, le=1, description="Nucleus sampling for validator-guided decoding.")
    seed: int = Field(default=0, ge=0, le=MAX_SEED, description="Seed of the sampled candidates.")


class EvaluationSpec(_Settings):
    """How checkpoints are scored (compare, and train's scoring)."""

    metric: Metric = Field(default="valid",
                           description="The metric that picks the best checkpoint (ties go to the earliest step).")
    max_cases: int | None = _count(None, "Score the first N cases (none: all).")
    batch_size: int = _count(32, "Prompts generated together.")


class Manifest(_Strict):
    name: str = Field(pattern=NAME_RE.pattern)
    version: str = Field(default="0.1.0", pattern=VERSION_RE.pattern)
    description: str = ""
    base_model: str = "Qwen/Qwen3-0.6B"
    output: OutputSpec
    contract: ContractSpec
    data: DataSpec = Field(default_factory=DataSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    decoding: DecodingSpec = Field(default_factory=DecodingSpec)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)


class _DuplicateKey(Exception):
    def __init__(self, key: str, line: int, first: int) -> None:
        super().__init__(key)
        self.key, self.line, self.first = key, line, first


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (YAML 1.2 forbids it; PyYAML would
    keep the last silently: a second ``contract:`` block switches the wrapper, a second ``name:`` renames)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                line = key_node.start_mark.line + 1
                if key_node.value in seen:
                    raise _DuplicateKey(key_node.value, line, seen[key_node.value])
                seen[key_node.value] = line
        return super().construct_mapping(node, deep=deep)


def _key_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """Map each YAML key path to its 1-based line, for error messages."""
    lines: dict[tuple[str | int, ...], int] = {}
    seen: set[int] = set()

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in seen:  # an alias: its node was walked already (aliases of aliases grow exponentially)
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, key.value)
                lines[sub] = key.start_mark.line + 1
                walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is not None:
            walk(root, ())
    except (yaml.YAMLError, RecursionError):
        pass
    return lines


def key_line(path: Path, *keys: str) -> int | None:
    """The 1-based line of key ``keys`` (``"training", "seed"``) in the YAML file at ``path``; ``None`` when the
    file or the key is missing."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return _key_lines(text).get(keys)


def parse_manifest(text: str, path: str | Path = MANIFEST_NAME) -> Manifest:
    """Validate manifest text; errors name the file, line and key."""
    try:
        data: Any = yaml.load(text, Loader=_UniqueKeyLoader)
    except _DuplicateKey as exc:
        raise ExpertkitError(f"duplicate key (first given on line {exc.first})", path=path, line=exc.line,
                             key=exc.key) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ExpertkitError(
            f"not valid YAML: {getattr(exc, 'problem', exc)}",
            path=path,
            line=mark.line + 1 if mark else None,
        ) from None
    except RecursionError:
        raise ExpertkitError("YAML nested too deeply", path=path) from None
    if not isinstance(data, dict):
        raise ExpertkitError("the manifest must be a mapping of keys", path=path)
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc) or None
        lines = _key_lines(text)
        line = None
        for cut in range(len(loc), -1, -1):
            if loc[:cut] in lines:
                line = lines[loc[:cut]]
                break
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ExpertkitError(msg + more, path=path, line=line, key=key) from None
    return manifest


def line_of(text: str, key: str) -> int | None:
    """The line of the dotted ``key`` (or of its nearest parent given) in the manifest text."""
    lines = _key_lines(text)
    loc: tuple[str | int, ...] = tuple(int(p) if p.isdigit() else p for p in key.split("."))
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return None


def manifest_path(expert_dir: str | Path) -> Path:
    """The manifest of ``EXPERT_DIR`` (its ``expert.yaml``, or a path to the yaml itself), which must exist."""
    p = Path(expert_dir)
    if not p.exists():
        raise ExpertkitError("no such expert folder or manifest", path=p)
    path = p / MANIFEST_NAME if p.is_dir() else p
    if not path.exists():
        raise ExpertkitError(f"no {MANIFEST_NAME} in this folder", path=p)
    return path


def load_manifest(expert_dir: str | Path) -> Manifest:
    """Read ``EXPERT_DIR/expert.yaml`` (or a path to the yaml itself); ``output.kind`` is not looked up here
    (:func:`expertkit.expert.load_manifest` does)."""
    path = manifest_path(expert_dir)
    return parse_manifest(read_text(path), path)
