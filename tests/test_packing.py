"""Padding-free batches: packing, the collator, and the loss and gradients equal to padded batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from _mini import MANIFEST, mini_base, mini_expert

from expertkit.core.checkpoints import Run
from expertkit.core.errors import ExpertkitError
from expertkit.expert import Expert
from expertkit.models.base import load_tokenizer
from expertkit.training.packing import REAL_TOKENS, PackedCollator, pack_batches
from expertkit.training.train import TrainOptions, build_trainer, encode_dataset, plan_run, train_expert


@pytest.fixture(scope="module")
def expert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    manifest = MANIFEST.replace("max_length: 128", "max_length: 160")
    return mini_expert(tmp_path_factory.mktemp("mini-packed"), 24, manifest=manifest)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, expert_dir: Path) -> str:
    return mini_base(tmp_path_factory.mktemp("b"), expert_dir)


def test_pack_batches_keeps_every_example_once_within_budget() -> None:
    lengths = [50, 70, 30, 90, 20, 60, 40, 80, 10, 100]
    batches = pack_batches(lengths, max_tokens=200, row_tokens=100, seed=3)
    seen = sorted(i for batch in batches for row in batch for i in row)
    assert seen == list(range(len(lengths)))
    for batch in batches:
        assert sum(lengths[i] for row in batch for i in row) <= 200
        assert all(sum(lengths[i] for i in row) <= 100 for row in batch)
    assert batches == pack_batches(lengths, max_tokens=200, row_tokens=100, seed=3)  # seeded
    assert batches != pack_batches(lengths, max_tokens=200, row_tokens=100, seed=4)


def _padded_and_packed(expert: Expert, base: str, tokenizer: Any, tmp_path: Path, method: str,
                       attn: str) -> tuple[Any, dict[str, torch.Tensor], Any, dict[str, torch.Tensor]]:
    """Two trainers on the same examples: one padded batch of them, one padding-free batch of them."""
    data = encode_dataset(expert, tokenizer, max_examples=12)
    lengths = data.lengths
    # a budget that packs about 6 examples, in rows of up to 2-3 of them
    packed_plan = plan_run(expert, TrainOptions(base=base, steps=1, method=method, question_noise=0,
                                                max_tokens_per_batch=6 * max(lengths)), base, data.examples, lengths)
    packed_plan.row_tokens = 2 * max(lengths) + 5
    packed = build_trainer(expert, packed_plan, data, tokenizer, tmp_path / "packed")
    item = packed.train_dataset[0]
    examples = [i for row in item["rows"] for i in row]
    padded_plan = plan_run(expert, TrainOptions(base=base, steps=1, method=method, question_noise=0,
                                                max_tokens_per_batch=0, batch_size=len(examples)),
                           base, data.examples, lengths)
    padded = build_trainer(expert, padded_plan, data, tokenizer, tmp_path / "padded")
    packed_batch = packed.data_collator([item])
    padded_batch = padded.data_collator([padded.train_dataset[i] for i in examples])  # TRL built its labels
    for trainer in (packed, padded):
        trainer.model.config._attn_implementation = attn
        torch.manual_seed(0)
        if method != "full":  # LoRA's B starts at zero: give both adapters the same non-zero weights
            for name, p in sorted(trainer.model.named_parameters()):
                if "lora_" in name:
                    p.data.normal_(0, 0.1)
        trainer.model.eval()  # no dropout: the same function on both sides (gradients flow all the same)
    return packed.model, packed_batch, padded.model, padded_batch


def _loss_and_grads(model: Any, batch: dict[str, torch.Tensor]) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad()
    inputs = {k: v for k, v in batch.items() if k != REAL_TOKENS}
    loss = model(**inputs, use_cache=False).loss
    loss.backward()
    return float(loss.detach()), {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize(("method", "attn"), [("lora", "sdpa"), ("dora", "sdpa"), ("full", "sdpa"),
                                              ("lora", "eager")])
def test_packed_batch_has_the_loss_and_gradients_of_the_padded_batch(
    expert_dir: Path, base: str, tmp_path: Path, method: str, attn: str
) -> None:
    expert = Expert.load(expert_dir)
    tokenizer = load_tokenizer(base)
    packed_model, packed_batch, padded_model, padded_batch = _padded_and_packed(
        expert, base, tokenizer, tmp_path, method, attn)
    # the batch is packed: several examples in a row, position ids restarting, no attention mask
    assert "attention_mask" not in packed_batch and packed_batch["input_ids"].shape[0] >= 2
    restarts = (packed_batch["position_ids"][:, 1:] == 0).sum(dim=1)
    assert (restarts >= 1).all()
    assert int(packed_batch[REAL_TOKENS]) == int(padded_batch["attention_mask"].sum())
    assert int((packed_batch["labels"] != -100).sum()) == int((padded_batch["labels"] != -100).sum())
    assert packed_batch["input_ids"].numel() < padded_batch["input_ids"].numel()

    packed_loss, packed_grads = _loss_and_grads(packed_model, packed_batch)
    padded_loss, padded_grads = _loss_and_grads(padded_model, padded_batch)
    assert abs(packed_loss - padded_loss) <= 1e-5
    assert packed_grads.keys() == padded_grads.keys() and packed_grads
    if method != "full":
        assert all("lora_" in n for n in packed_grads)
    for name, grad in packed_grads.items():
        assert grad.abs().max() > 0, name
        torch.testing.assert_close(grad, padded_grads[name], atol=1e-5, rtol=0, msg=name)


def test_a_padding_free_run_trains_records_and_resumes(expert_dir: Path, base: str, tmp_path: Path) -> None:
    expert = Expert.load(expert_dir)
    run = tmp_path / "run"
    result = train_expert(expert, TrainOptions(base=base, out_dir=run, method="lora", steps=3, save_every=2,
                                               max_tokens_per_batch=400))
    assert result.steps == 3 and result.final_loss is not None and result.tokens > 0
    recorded = Run(run).record
    assert recorded is not None
    assert (recorded.padding_free, recorded.max_tokens_per_batch, recorded.world_size) == (True, 400, 1)
    assert (recorded.global_batch, recorded.global_batch_unit) == (400, "tokens")
    (_, last) = Run(run).checkpoints()
    assert last.record.padding_free is True and last.record.global_batch == 400
    with pytest.raises(ExpertkitError, match="--max-tokens-per-batch"):
        train_expert(expert, TrainOptions(base=base, out_dir=run, resume=True, max_tokens_per_batch=800))
    # an extended run keeps padding-free batches
    extended = train_expert(expert, TrainOptions(base=base, out_dir=run, continue_to=4))
    assert extended.steps == 4 and [c.step for c in Run(run).checkpoints()] == [2, 3, 4]


def test_a_budget_below_the_longest_example_is_refused(expert_dir: Path, base: str, tmp_path: Path) -> None:
    with pytest.raises(ExpertkitError, match="cannot hold the longest example"):
        train_expert(Expert.load(expert_dir), TrainOptions(base=base, out_dir=tmp_path / "r", steps=1,
                                                           max_tokens_per_batch=20))
    assert not (tmp_path / "r" / "run.json").exists()


def test_question_noise_reaches_padding_free_batches(expert_dir: Path, base: str, tmp_path: Path) -> None:
    expert = Expert.load(expert_dir)
    tokenizer = load_tokenizer(base)
    data = encode_dataset(expert, tokenizer)
    plan = plan_run(expert, TrainOptions(base=base, steps=1, question_noise=0.5, max_tokens_per_batch=400), base,
                    data.examples, data.lengths)
    trainer = build_trainer(expert, plan, data, tokenizer, tmp_path / "run")
    collator = trainer.data_collator
    assert isinstance(collator, PackedCollator) and collator.transform is not None
    item = trainer.train_dataset[0]
    noisy = collator([item])
    clean = PackedCollator(collator.examples, collator.pad_token_id)([item])
    changed = noisy["input_ids"] != clean["input_ids"]
    assert changed.any() and torch.equal(noisy["labels"], clean["labels"])
    assert not (changed & (clean["labels"] != -100)).any()  # answers untouched
