"""Padding-free batches on any attention implementation: examples packed into rows, no padding between them.

transformers 5 builds a block-diagonal causal mask from ``position_ids`` for the ``sdpa`` and ``eager``
attention (``transformers.masking_utils.find_packed_sequence_indices``) when the position ids restart
inside a row, no 2-D attention mask is passed and no cache is used; FlashAttention reads the same
position ids. So a batch of short examples need not be padded to its longest one: the examples are laid
one after the other in rows, each with position ids ``0..n-1``, and attend only to themselves. The loss
and the gradients are those of the same examples padded (tests/test_packing.py holds them equal to 1e-5
in fp32 for LoRA, DoRA and full fine-tuning); only the padding's compute is gone.

A batch is a token budget (``max_tokens``, per device and micro-batch): examples are taken in a seeded
random order until the next one would not fit, then laid into as few rows of at most ``row_tokens``
(:data:`ROW_TOKENS`, or the longest example) as they need, filled evenly: the longest first, each into
the emptiest row. Attention costs grow with the square of a row's length, so rows stay short: on CPU
(tiny base, 2 cores, steps interleaved) rows of 256 tokens ran 1.1x the padded batch's tokens/s, rows of
128, 512 or 1,024 about 1.0x. Rows are padded to the batch's longest row; the padding at a row's end is
a sequence of its own (position ids restart there too) and carries no label. The batches are fixed once
per run (their order is shuffled each epoch by the Trainer's sampler), so a resumed run sees the same
batches, and data-parallel processes split them as they split examples.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

IGNORE = -100
#: The longest row of a padding-free batch, unless an example is longer (see the module docstring).
ROW_TOKENS = 256
#: The key the collator adds with the number of real (non-padding) tokens; the trainer pops it.
REAL_TOKENS = "real_tokens"


def pack_batches(
    lengths: Sequence[int], *, max_tokens: int, row_tokens: int, seed: int
) -> list[list[list[int]]]:
    """Batches of rows of example indices: ``batches[b][r]`` lists the examples of row ``r`` of batch ``b``.

    An example longer than ``max_tokens`` or ``row_tokens`` gets a batch or a row of its own (lint keeps
    examples within ``max_length``, which :func:`expertkit.training.train.plan_run` checks against the budget).
    """
    order = np.random.default_rng(seed).permutation(len(lengths))
    batches: list[list[int]] = []
    current: list[int] = []
    used = 0
    for i in order.tolist():
        n = int(lengths[i])
        if current and used + n > max_tokens:
            batches.append(current)
            current, used = [], 0
        current.append(i)
        used += n
    if current:
        batches.append(current)
    return [_rows(batch, lengths, row_tokens) for batch in batches]


def _rows(batch: list[int], lengths: Sequence[int], row_tokens: int) -> list[list[int]]:
    """As few rows as the batch needs, filled evenly (the padding is what rows fall short of the longest):
    the longest examples first, each into the emptiest row with room for it, or a new row."""
    total = sum(int(lengths[i]) for i in batch)
    rows: list[list[int]] = [[] for _ in range(max(1, -(-total // row_tokens)))]
    used = [0] * len(rows)
    for i in sorted(batch, key=lambda k: (-int(lengths[k]), k)):
        n = int(lengths[i])
        r = min(range(len(rows)), key=lambda k: used[k])
        if used[r] and used[r] + n > row_tokens:
            rows.append([])
            used.append(0)
            r = len(rows) - 1
        rows[r].append(i)
        used[r] += n
    return [row for row in rows if row]


class PackedCollator:
    """Turns dataset items ``{"rows": [[example, ...], ...]}`` into one padding-free batch.

    ``examples`` holds the encoded examples (``input_ids``, ``completion_mask``, and whatever ``transform``
    reads); ``transform``, when given, returns an example's input ids to train on (question noise).
    Returns ``input_ids``, ``position_ids`` and ``labels`` (answer tokens only; -100 on the prompt, on the
    first token of every example and on padding), plus :data:`REAL_TOKENS`.
    """

    def __init__(self, examples: Any, pad_token_id: int,
                 transform: Callable[[Mapping[str, Any]], list[int]] | None = None) -> None:
        self.examples = examples
        self.pad_token_id = pad_token_id
        self.transform = transform

    def _ids(self, i: int) -> tuple[list[int], list[int]]:
        row = self.examples[i]
        ids = self.transform(row) if self.transform is not None else list(row["input_ids"])
        return ids, list(row["completion_mask"])

    def __call__(self, items: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        rows = [[self._ids(i) for i in row] for item in items for row in item["rows"]]
        width = max(sum(len(ids) for ids, _ in row) for row in rows)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        position_ids = torch.zeros((len(rows), width), dtype=torch.long)
        real = 0
        for r, row in enumerate(rows):
            offset = 0
            for ids, mask in row:
                n = len(ids)
                tokens = torch.tensor(ids, dtype=torch.long)
                input_ids[r, offset : offset + n] = tokens
                position_ids[r, offset : offset + n] = torch.arange(n)
                keep = torch.tensor(mask, dtype=torch.bool)
                keep[0] = False  # the boundary: nothing predicts an example's first token
                labels[r, offset : offset + n] = torch.where(keep, tokens, IGNORE)
                offset += n
            position_ids[r, offset:] = torch.arange(width - offset)  # the padding: a sequence of its own
            real += offset
        return {"input_ids": input_ids, "position_ids": position_ids, "labels": labels,
                REAL_TOKENS: torch.tensor(real)}
