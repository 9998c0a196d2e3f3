"""The usual approach, as expertkit's users write it today: plain transformers + PEFT, no expertkit.

Shared by ``bench.train``, ``bench.compare`` and ``bench.gpu``. Nothing here imports expertkit, so the
GPU bench can run the baselines on a machine where expertkit's own dependencies are missing.

* Training: the conversation rendered with a chat template (``apply_chat_template``), tokenised without
  padding, ``DataCollatorForLanguageModeling(mlm=False)`` padding each batch to its longest example and
  setting labels = input_ids with the padding masked, ``transformers.Trainer``, PEFT LoRA applied with
  ``get_peft_model``. Loss on every token (the usual recipe; expertkit's is answer-only).
* Comparison: each checkpoint loaded as a model of its own (``from_pretrained`` + ``PeftModel.from_pretrained``
  + ``merge_and_unload``), then one prompt at a time through ``model.generate`` (greedy).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

#: Qwen3's chat template in non-thinking mode, reduced to system/user/assistant turns: what
#: ``apply_chat_template(..., enable_thinking=False)`` renders with Qwen3's official template.
QWEN3_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n' + message.content | trim + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if not (enable_thinking is defined and enable_thinking) %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)


def read_records(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    """``{"fields", "question", "answer"}`` records of a JSONL dataset (the shipped experts' shape)."""
    out: list[dict[str, Any]] = []
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                out.append(json.loads(line))
                if limit is not None and len(out) >= limit:
                    break
    return out


def messages(record: dict[str, Any], *, with_answer: bool = True) -> list[dict[str, str]]:
    """System (``Name: value`` lines), user and, for training, assistant messages of a record."""
    system = "\n".join(f"{k}:\n{v}" if "\n" in str(v) else f"{k}: {v}" for k, v in record["fields"].items())
    msgs = [{"role": "system", "content": system}, {"role": "user", "content": record["question"].strip()}]
    if with_answer:
        msgs.append({"role": "assistant", "content": record["answer"].strip()})
    return msgs


def render_texts(tokenizer: Any, records: Iterable[dict[str, Any]], template: str = QWEN3_TEMPLATE) -> list[str]:
    """The training texts, rendered by the chat template."""
    return [tokenizer.apply_chat_template(messages(r), tokenize=False, chat_template=template,
                                          enable_thinking=False) for r in records]


def tokenize_texts(tokenizer: Any, texts: Sequence[str], max_length: int = 1024) -> list[dict[str, list[int]]]:
    """One ``{"input_ids", "attention_mask"}`` per text, unpadded (the collator pads per batch)."""
    enc = tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=max_length)
    return [{"input_ids": ids, "attention_mask": mask}
            for ids, mask in zip(enc["input_ids"], enc["attention_mask"], strict=True)]


class TokenCounter:
    """Counts the real (non-pad) and padded tokens that reach the model's forward in training.

    Counted at the forward, not in the collator: the Trainer's data loader collates one batch ahead.
    A padding-free batch (no attention mask) counts its tokens other than ``pad_id`` (the padding at the
    end of its rows; real examples never hold the pad token).
    """

    def __init__(self, pad_id: int | None = None) -> None:
        self.tokens = 0
        self.padded = 0
        self.pad_id = pad_id

    def attach(self, model: Any) -> Any:
        def hook(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
            if module.training:
                mask = kwargs.get("attention_mask")
                ids = kwargs.get("input_ids")
                if mask is not None:
                    self.tokens += int(mask.sum())
                    self.padded += int(mask.numel())
                elif ids is not None:
                    self.tokens += int((ids != self.pad_id).sum()) if self.pad_id is not None else int(ids.numel())
                    self.padded += int(ids.numel())

        return model.register_forward_pre_hook(hook, with_kwargs=True)


class Baton:
    """Trainers in threads of one process take their optimizer steps in turn (see :func:`meter`).

    Load from other processes then falls on all of them alike, step by step, however it comes and goes.
    Each waits at most ``timeout_s`` for its turn; past that it goes on regardless and ``broken`` is set.
    """

    def __init__(self, names: Sequence[str], timeout_s: float = 900.0) -> None:
        import threading

        self._cond = threading.Condition()
        self._names = list(names)
        self._ready: set[str] = set()
        self._done: set[str] = set()
        self._turn = self._names[0]
        self.timeout_s = timeout_s
        self.broken = False

    def _next(self, name: str) -> str:
        i = self._names.index(name)
        for k in range(1, len(self._names) + 1):
            candidate = self._names[(i + k) % len(self._names)]
            if candidate not in self._done:
                return candidate
        return name

    def _wait(self, name: str, also: Callable[[], bool] = lambda: True) -> None:
        if not self._cond.wait_for(lambda: also() and (self._turn == name or self._turn in self._done),
                                   timeout=self.timeout_s):
            self.broken = True

    def arrive(self, name: str) -> None:
        """Training begins: wait until every trainer is ready (or gone), then for this one's turn."""
        with self._cond:
            self._ready.add(name)
            self._cond.notify_all()
            self._wait(name, lambda: self._ready | self._done >= set(self._names))

    def pass_on(self, name: str) -> None:
        """A step is done: the next trainer's turn; wait for this one's to come back."""
        with self._cond:
            self._turn = self._next(name)
            self._cond.notify_all()
            self._wait(name)

    def leave(self, name: str) -> None:
        with self._cond:
            self._done.add(name)
            if self._turn == name:
                self._turn = self._next(name)
            self._cond.notify_all()


def meter(budget_s: float | None = None, baton: Baton | None = None, name: str = "",
          pad_id: int | None = None) -> Any:
    """A ``TrainerCallback`` that times each optimizer step (``.durations``) and counts the tokens reaching
    the model's forward (``.counter``, ``.step_tokens``); it hooks the model the Trainer trains, whoever
    built it. ``.seconds`` is the training time from the start of training to its end (the loop, data
    loading, logging and checkpoint saves included) less any time spent waiting for the ``baton``.

    With ``budget_s``, training stops (saving a checkpoint, as at the last step) once ``.seconds`` passes
    it; ``.stopped_early`` then says so.
    """
    from transformers import TrainerCallback

    def sync() -> None:
        if _cuda():
            import torch

            torch.cuda.synchronize()

    class Meter(TrainerCallback):
        def __init__(self) -> None:
            self.durations: list[float] = []
            self.step_tokens: list[int] = []
            self.counter = TokenCounter(pad_id)
            self.stopped_early = False
            self.seconds = 0.0
            self._t0 = 0.0
            self._tokens0 = 0
            self._resumed = 0.0
            self._hook: Any = None
            self.began_at: float | None = None  # perf_counter() when training began (before the baton)

        def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            self.began_at = time.perf_counter()
            if model is not None and self._hook is None:
                self._hook = self.counter.attach(model)
            if baton is not None:
                baton.arrive(name)
            sync()
            self._resumed = time.perf_counter()

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            sync()
            self.seconds += time.perf_counter() - self._resumed
            if self._hook is not None:
                self._hook.remove()
                self._hook = None
            if baton is not None:
                baton.leave(name)

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            sync()
            self._t0 = time.perf_counter()
            self._tokens0 = self.counter.tokens

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            sync()
            now = time.perf_counter()
            self.durations.append(now - self._t0)
            self.step_tokens.append(self.counter.tokens - self._tokens0)
            self.seconds += now - self._resumed
            if budget_s is not None and self.seconds > budget_s and state.global_step < state.max_steps:
                self.stopped_early = True
                control.should_training_stop = True
                control.should_save = True
            if baton is not None:
                baton.pass_on(name)
            self._resumed = time.perf_counter()
            return control

    return Meter()


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def steady_tokens_per_s(metered: Any, skip: int) -> float | None:
    """Tokens/s over the steps after the first ``skip`` (compilation, allocator and autotuning warm-up)."""
    durations, tokens = metered.durations[skip:], metered.step_tokens[skip:]
    return sum(tokens) / sum(durations) if durations and sum(durations) > 0 else None


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def lora_config(r: int = 16, alpha: int = 32, dropout: float = 0.05, target_modules: Any = "all-linear") -> Any:
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules,
                      task_type="CAUSAL_LM")


def train_baseline(
    model: Any,
    tokenizer: Any,
    features: Sequence[dict[str, list[int]]],
    *,
    out_dir: str | Path,
    batch_size: int,
    steps: int,
    learning_rate: float,
    lora: Any | None,
    bf16: bool = False,
    seed: int = 42,
    scheduler: str = "linear",
    warmup_steps: int = 0,
    budget_s: float | None = None,
    callbacks: Sequence[Any] = (),
    metered: Any = None,
) -> dict[str, Any]:
    """Train ``steps`` optimizer steps with ``transformers.Trainer`` (+ PEFT LoRA when ``lora``); time ``train()``.

    One checkpoint is saved at the end, as ``expertkit train`` saves one. Past ``budget_s`` seconds training
    stops early; the figures then cover the steps done. ``metered`` (a :func:`meter`, for a baton) replaces
    the default one; ``seconds`` is its training time.
    """
    import torch
    from transformers import Trainer, TrainingArguments

    if lora is not None:
        from peft import get_peft_model

        model = get_peft_model(model, lora)
    from transformers import DataCollatorForLanguageModeling

    collator = DataCollatorForLanguageModeling(tokenizer=tokenizer, mlm=False)
    metered = metered if metered is not None else meter(budget_s)

    gpu = torch.cuda.is_available()
    args = TrainingArguments(
        output_dir=str(out_dir),
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        lr_scheduler_type=scheduler,
        warmup_steps=warmup_steps,
        logging_steps=10,
        save_strategy="steps",
        save_steps=steps,
        report_to="none",
        use_cpu=not gpu,
        bf16=bf16,
        seed=seed,
        disable_tqdm=True,
        dataloader_pin_memory=gpu,
    )
    trainer = Trainer(model=model, args=args, train_dataset=list(features), data_collator=collator,
                      callbacks=[metered, *callbacks])
    out = trainer.train()
    seconds = metered.seconds
    return {
        "steps": trainer.state.global_step,
        "tokens": metered.counter.tokens,
        "padded_tokens": metered.counter.padded,
        "seconds": seconds,
        "tokens_per_s": metered.counter.tokens / seconds if seconds > 0 else 0.0,
        "step_s": metered.durations,
        "step_tokens": metered.step_tokens,
        "stopped_early": metered.stopped_early,
        "loss": float(out.training_loss),
    }


def generate_one_at_a_time(
    model: Any,
    tokenizer: Any,
    records: Sequence[dict[str, Any]],
    *,
    max_new_tokens: int,
    eos_ids: Sequence[int],
    template: str = QWEN3_TEMPLATE,
    deadline: float | None = None,
) -> list[dict[str, Any]]:
    """Greedy outputs, one prompt at a time (the post-mortem's loop); stops early past ``deadline``."""
    import torch

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id
    outs = []
    with torch.inference_mode():
        for r in records:
            if deadline is not None and time.perf_counter() > deadline:
                break
            text = tokenizer.apply_chat_template(messages(r, with_answer=False), tokenize=False,
                                                 add_generation_prompt=True, chat_template=template,
                                                 enable_thinking=False)
            enc = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(device)
            t0 = time.perf_counter()
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=list(eos_ids), pad_token_id=pad)
            new = gen[0, enc["input_ids"].shape[1]:].tolist()
            finished = False
            for n, tok in enumerate(new):
                if tok in eos_ids:
                    new, finished = new[:n], True
                    break
            outs.append({"text": tokenizer.decode(new, skip_special_tokens=False).strip(),
                         "new_tokens": len(new) + int(finished), "finished": finished,
                         "seconds": time.perf_counter() - t0})
    return outs


def load_merged(base_path: str, adapter: str | None, *, device: str, dtype: Any) -> Any:
    """A checkpoint as a model of its own: the base from disk, the adapter applied and merged."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype, attn_implementation="sdpa")
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    return model.to(device).eval()


def compare_baseline(
    base_path: str,
    adapters: Sequence[str | None],
    records: Sequence[dict[str, Any]],
    *,
    max_new_tokens: int,
    budget_s: float,
    device: str,
    dtype: Any,
    score: Callable[[dict[str, Any], str], Any] | None = None,
) -> dict[str, Any]:
    """The post-mortem's sweep: for the base (``None``) and each adapter, a model of its own, one prompt at a time.

    ``budget_s`` is split evenly over the models; past a model's share its remaining outputs are not
    generated and the sweep's time is extrapolated from the measured time per output
    (``extrapolated``). ``score(record, text)`` judges each output (timed with generation).
    """
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_path)
    vocab = tokenizer.get_vocab()
    eos_ids = [vocab[t] for t in ("<|im_end|>", "<|endoftext|>") if t in vocab]
    per_model_budget = budget_s / max(len(adapters), 1)
    load_s = gen_s = score_s = 0.0
    done = tokens = finished = 0
    for adapter in adapters:
        t0 = time.perf_counter()
        model = load_merged(base_path, adapter, device=device, dtype=dtype)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        outs = generate_one_at_a_time(model, tokenizer, records, max_new_tokens=max_new_tokens, eos_ids=eos_ids,
                                      deadline=t1 + per_model_budget)
        t2 = time.perf_counter()
        if score is not None:
            for r, o in zip(records, outs, strict=False):
                score(r, o["text"])
        t3 = time.perf_counter()
        load_s, gen_s, score_s = load_s + t1 - t0, gen_s + t2 - t1, score_s + t3 - t2
        done += len(outs)
        tokens += sum(o["new_tokens"] for o in outs)
        finished += sum(o["finished"] for o in outs)
        del model
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    wanted = len(adapters) * len(records)
    if not done:
        return {"error": "no output generated within the budget", "load_s": round(load_s, 2)}
    per_output = (gen_s + score_s) / done
    seconds = load_s + per_output * wanted  # == load + generate + score when every output was generated
    est_tokens = tokens * wanted / done
    return {
        "models": len(adapters),
        "outputs": wanted,
        "outputs_generated": done,
        "new_tokens": round(est_tokens),
        "seconds": round(seconds, 2),
        "load_s": round(load_s, 2),
        "generation_s": round(gen_s * wanted / done, 2),
        "outputs_per_s": round(wanted / seconds, 3),
        "tokens_per_s": round(est_tokens / seconds, 1),
        "generate_tokens_per_s": round(tokens / gen_s, 1) if gen_s else None,
        "unfinished_share": round(1 - finished / done, 3),
        "extrapolated": done < wanted,
        "torch_threads": torch.get_num_threads(),
    }
