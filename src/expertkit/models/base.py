"""Base models: a hub id, a local folder, or ``tiny`` — a small Qwen3-architecture model and byte-level
BPE tokenizer that expertkit builds locally, seeded and deterministic.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expertkit.core import checkpoints
from expertkit.core.errors import ExpertkitError
from expertkit.core.fileio import cache_dir

if TYPE_CHECKING:
    from expertkit.core.checkpoints import BaseRecord

TINY = "tiny"
TINY_VERSION = 1
#: The think tags: plain added tokens (after the wrapper's special control tokens), as in Qwen3.
THINK_TOKENS = ["<think>", "</think>"]
#: Qwen2/Qwen3's pre-tokenizer pattern: digits one by one, words, punctuation runs, newlines.
QWEN_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
#: The tiny base's shape: small enough to train from scratch on CPU in minutes.
TINY_SHAPE: dict[str, Any] = {
    "hidden_size": 128,
    "intermediate_size": 512,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "max_position_embeddings": 2048,
}
TINY_VOCAB = 1536
#: The file that marks a folder as a tiny base built by expertkit (and so ours to replace).
TINY_MARKER = "expertkit_base.json"


def shipped_experts_dir() -> Path:
    """The shipped experts' folder: the package ``expertkit_experts`` (``experts/`` of a checkout, or its
    installed copy), one expert per sub-folder."""
    from importlib.resources import files

    try:
        root = Path(str(files("expertkit_experts")))
    except ModuleNotFoundError:
        raise ExpertkitError("the shipped experts (package expertkit_experts) are not installed; "
                             "reinstall expertkit") from None
    return root


def default_tiny_corpus() -> list[str]:
    """Rendered training conversations of the shipped experts: the tiny tokenizer's corpus."""
    from expertkit.core.contract import PromptContract
    from expertkit.core.data import read_examples
    from expertkit.core.manifest import load_manifest

    texts: list[str] = []
    root = shipped_experts_dir()
    for path in sorted(root.glob("*/expert.yaml")):
        manifest = load_manifest(path)
        contract, train_path = PromptContract(manifest.contract), path.parent / manifest.data.train
        if not train_path.is_file():
            continue
        examples, _ = read_examples(train_path)
        for ex in examples:
            if ex.answer is None:
                continue
            try:
                texts.append(contract.render_conversation(dict(ex.fields), ex.question, ex.answer))
            except ExpertkitError:
                continue
    if not texts:
        raise ExpertkitError("no shipped expert datasets to build the tiny tokenizer from; run "
                             "`expertkit data generate experts/elastic` first", path=root)
    return texts


def build_tokenizer(corpus: Iterable[str], vocab_size: int = TINY_VOCAB) -> Any:
    """A byte-level BPE tokenizer with Qwen's pre-tokenizer, trained on ``corpus``; its control tokens, special
    tokens and chat template are the default wrapper's (the contract's)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from expertkit.core.contract import ContractSpec, FieldSpec, PromptContract

    contract = PromptContract(ContractSpec(fields=[FieldSpec(name="Field")]))  # one field: the wrapper counts
    wrapper = contract.wrapper
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_SPLIT_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(wrapper.control_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus), trainer=trainer)
    tok.add_tokens(THINK_TOKENS)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=wrapper.eos_token,
        pad_token=wrapper.pad_token,
        unk_token=None,
        bos_token=None,
        model_max_length=TINY_SHAPE["max_position_embeddings"],
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = contract.chat_template()
    return fast


def build_tiny_base(
    out_dir: str | Path, *, seed: int = 0, corpus: Sequence[str] | None = None, vocab_size: int = TINY_VOCAB
) -> Path:
    """Write a tiny Qwen3 model and tokenizer to ``out_dir`` (deterministic for a seed and corpus)."""
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    from expertkit.core.fileio import check_output_dir, usual_dir_mode

    out = Path(out_dir)
    check_output_dir(out, key="--out", ours=[TINY_MARKER])  # before the work: never someone else's folder
    texts = list(corpus) if corpus is not None else default_tiny_corpus()
    tokenizer = build_tokenizer(texts, vocab_size)
    eos = tokenizer.convert_tokens_to_ids(tokenizer.eos_token)
    pad = tokenizer.convert_tokens_to_ids(tokenizer.pad_token)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        tie_word_embeddings=True,
        eos_token_id=eos,
        pad_token_id=pad,
        bos_token_id=None,
        **TINY_SHAPE,
    )
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[eos, pad], pad_token_id=pad, do_sample=False, max_new_tokens=256
    )
    parent = out.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name or 'tiny'}.", dir=parent))
    try:
        usual_dir_mode(tmp)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / TINY_MARKER).write_text(json.dumps({"kind": TINY, "version": TINY_VERSION,
                                                  "seed": seed, "vocab_size": len(tokenizer)}))
        replace_folder(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def replace_folder(new: Path, out: Path) -> None:
    """Put the finished folder ``new`` at ``out``: renamed into place, or, where ``out`` is an empty folder or
    an earlier base built by expertkit, its files moved in (an earlier base's files are replaced; nothing else
    is there)."""
    from expertkit.core.fileio import check_output_dir

    check_output_dir(out, key="--out", ours=[TINY_MARKER])  # again: it may have changed during the build
    if not out.exists():
        os.replace(new, out)
        return
    (out / TINY_MARKER).unlink(missing_ok=True)  # no marker while half replaced: never taken for a whole base
    for child in sorted(new.iterdir(), key=lambda c: c.name == TINY_MARKER):  # the marker last
        target = out / child.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(child, target)


def tiny_base_path(seed: int = 0) -> Path:
    """The cached tiny base for the shipped experts' current data, built on first use."""
    texts = default_tiny_corpus()
    digest = hashlib.sha256()
    digest.update(f"v{TINY_VERSION}:{seed}:{TINY_VOCAB}:{json.dumps(TINY_SHAPE, sort_keys=True)}".encode())
    for t in texts:
        digest.update(t.encode())
    path = cache_dir() / f"tiny-{digest.hexdigest()[:16]}"
    if not (path / TINY_MARKER).is_file():
        if path.is_dir():  # a build killed halfway, in our own cache
            shutil.rmtree(path)
        build_tiny_base(path, seed=seed, corpus=texts)
    return path


def resolve_base(base: str) -> str:
    """``tiny`` → its cached folder; a local folder → itself; anything else is taken as a hub id."""
    if base == TINY:
        return str(tiny_base_path())
    p = Path(base).expanduser()
    if p.exists():
        if not (p / "config.json").is_file():
            raise ExpertkitError("not a model folder (no config.json)", path=p)
        return str(p)
    if base.startswith((".", "/", "~")):
        raise ExpertkitError("no such base model folder", path=p)
    return base


def check_hub_reachable(name: str) -> None:
    """Fail at once, not after a minute of retries, for a hub id that is not cached while the hub is offline
    (``HF_HUB_OFFLINE``, or no connection to ``HF_ENDPOINT``)."""
    if Path(name).expanduser().exists() or _in_hub_cache(name):
        return
    why = "HF_HUB_OFFLINE is set" if hub_offline() else None
    if why is None and not _hub_answers():
        why = f"{_hub_endpoint()} cannot be reached"
    if why:
        raise ExpertkitError(f"{name!r} is not a local folder and not in the Hugging Face cache, and the hub is "
                             f"offline ({why}): download it first, or give a folder", key="--base")


def _hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _hub_answers(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub opens (through a proxy, assumed so: the proxy decides)."""
    from urllib.parse import urlparse

    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                                        "all_proxy")):
        return True
    url = urlparse(_hub_endpoint())
    if not url.hostname:
        return True
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=timeout).close()
    except OSError:
        return False
    return True


def hub_offline() -> bool:
    """Whether the Hugging Face hub may not be reached (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``)."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # an id the hub would refuse (HFValidationError): loading says why
        return True


def hub_cached(repo_id: str, filename: str = "config.json") -> str | None:
    """The local Hugging Face cache's copy of ``filename`` of ``repo_id``, if there is one."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, filename)
    except Exception:  # a malformed id is for from_pretrained to report
        return None
    return found if isinstance(found, str) else None


def _hub_kwargs(name: str) -> dict[str, Any]:
    """For a hub id: the one-line error when it is not cached and the hub is offline; ``local_files_only``
    when it is cached and the hub is offline (no minute of retries before the cache is used)."""
    if Path(name).expanduser().exists():
        return {}
    check_hub_reachable(name)
    return {"local_files_only": True} if hub_offline() or not _hub_answers() else {}


def check_base_available(base: str) -> None:
    """For a hub id, the one-line error loading it would end in (offline, nothing cached); quick, and
    nothing is built (``tiny`` and folders are checked where they are loaded)."""
    if base == TINY or base.startswith((".", "/", "~")) or Path(base).expanduser().exists():
        return
    check_hub_reachable(base)


def _load_error(base: str, exc: Exception) -> ExpertkitError:
    return ExpertkitError(
        f"could not load base model {base!r}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]} "
        "(a hub id needs the model in the local Hugging Face cache or network access)",
        key="--base",
    )


def load_tokenizer(base: str) -> Any:
    from transformers import AutoTokenizer

    name = resolve_base(base)
    hub = _hub_kwargs(name)
    try:
        tok = AutoTokenizer.from_pretrained(name, **hub)
    except Exception as exc:
        raise _load_error(base, exc) from None
    if tok.pad_token is None:  # a registered wrapper's padding token where the vocabulary has it
        from expertkit.core.contract import wrappers

        vocab = tok.get_vocab()
        tok.pad_token = next((w.pad_token for w in wrappers() if w.pad_token and w.pad_token in vocab), tok.eos_token)
    return tok


def default_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def default_dtype(device: str) -> Any:
    import torch

    return torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32


def load_model(
    base: str, *, device: str | None = None, dtype: Any = None, attn_implementation: str = "sdpa"
) -> Any:
    """Load a causal LM from a hub id, a local folder or ``tiny`` (bf16 on a GPU, fp32 on CPU)."""
    from transformers import AutoModelForCausalLM

    name = resolve_base(base)
    hub = _hub_kwargs(name)
    device = device or default_device()
    try:
        model = AutoModelForCausalLM.from_pretrained(
            name, dtype=dtype or default_dtype(device), attn_implementation=attn_implementation, **hub
        )
    except Exception as exc:
        raise _load_error(base, exc) from None
    return model.to(device)


def is_base_folder(path: Path) -> bool:
    return (path / "config.json").is_file()


def _base_folder(base: str) -> Path | None:
    """Where a base's files are on this machine: its folder, or its snapshot in the Hugging Face cache."""
    try:
        name = resolve_base(base)
    except ExpertkitError:
        return None
    if Path(name).is_dir():
        return Path(name)
    cached = hub_cached(name)
    return Path(cached).parent if cached else None


def base_fingerprint(base: str) -> str | None:
    """A cheap content fingerprint of a base (its config, tokenizer and the ends of its first weight file):
    two bases with the same shape but other weights (``-Base`` and instruct) differ. ``None`` when the
    base is not on this machine."""
    folder = _base_folder(base)
    if folder is None:
        return None
    digest = hashlib.sha256()
    for name in ("config.json", "tokenizer.json", TINY_MARKER):
        if (folder / name).is_file():
            digest.update(name.encode() + b"\0" + (folder / name).read_bytes())
    shards = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    if shards:
        size = shards[0].stat().st_size
        with shards[0].open("rb") as fh:
            digest.update(str(size).encode() + fh.read(1 << 20))
            fh.seek(max(size - (1 << 20), 0))
            digest.update(fh.read())
    return digest.hexdigest()


def same_base(recorded: str, recorded_path: str | None, given: str) -> bool:
    """Whether ``given`` is the base a checkpoint was trained on: the same name or folder, or the same
    files (a local copy of a hub model, the cached folder of ``tiny``)."""
    if given == recorded or (recorded_path is not None and given == recorded_path):
        return True
    given_path = Path(given).expanduser()
    if (recorded_path and given_path.exists() and Path(recorded_path).exists()
            and given_path.resolve() == Path(recorded_path).resolve()):
        return True
    mine = base_fingerprint(given)
    theirs = base_fingerprint(recorded_path) if recorded_path and Path(recorded_path).exists() else None
    theirs = theirs or base_fingerprint(recorded)
    return mine is not None and mine == theirs


def choose_base(given: str | None, sources: Sequence[tuple[str, BaseRecord]]) -> str:
    """The base to load for checkpoints whose records are ``sources`` (``(label, record)``): the recorded one
    unless ``given``, which must be the same base (:func:`expertkit.core.checkpoints.choose_base`)."""
    return checkpoints.choose_base(given, sources, same_base)
