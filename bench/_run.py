"""A run folder made in seconds: LoRA adapters with random (untrained) weights saved as complete checkpoints.

The folder has what ``expertkit train`` leaves (see ``expertkit.core.checkpoints``): ``run.json``, and per
checkpoint the PEFT adapter files, the exported chat template, a copy of the manifest and the record
``expertkit.json`` (written last). The adapters are ``peft.get_peft_model(...).save_pretrained`` with
``init_lora_weights=False`` (A and B random, so each checkpoint generates differently from the base),
with the expert's LoRA settings; the base is loaded once and the adapter weights drawn afresh for each
checkpoint.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def make_lora_run(expert: Any, base_path: str, run_dir: Path, steps: Sequence[int] = (100, 200, 300),
                  seed: int = 0) -> Path:
    import math

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from expertkit.core.checkpoints import CHAT_TEMPLATE_NAME, CheckpointRecord, Run, RunRecord
    from expertkit.core.manifest import MANIFEST_NAME

    spec = expert.manifest.training
    run = Run(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    common: dict[str, Any] = {
        "expert": expert.name,
        "expert_version": expert.manifest.version,
        "fingerprint": expert.fingerprint,
        "contract": expert.contract.canonical(),
        "method": "lora",
        "base": base_path,
        "base_path": base_path,
    }
    run.write_record(RunRecord(**{k: v for k, v in common.items() if k not in ("expert_version", "base_path")},
                               options={"base": base_path, "base_path": base_path}))
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    config = LoraConfig(r=spec.lora_r, lora_alpha=spec.lora_alpha, lora_dropout=spec.lora_dropout,
                        target_modules=spec.target_modules, task_type="CAUSAL_LM", init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    for n, step in enumerate(steps):
        if n:
            torch.manual_seed(seed + n)
            with torch.no_grad():
                for name, param in peft_model.named_parameters():
                    if "lora_" in name:
                        torch.nn.init.kaiming_uniform_(param, a=math.sqrt(5))  # nn.Linear's own init
        folder = run.checkpoint_path(step)
        peft_model.save_pretrained(str(folder))
        (folder / CHAT_TEMPLATE_NAME).write_text(expert.contract.chat_template())
        shutil.copyfile(expert.root / MANIFEST_NAME, folder / MANIFEST_NAME)
        CheckpointRecord(**common, step=step).write(folder)
    return run_dir
