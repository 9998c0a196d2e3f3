"""``quickstart``, bounded: data generated when missing, a few training steps, comparison, reports, rerun."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from _chromium import AMBER, GREEN, RED, render_in_chromium

from expertkit.core.data import load_examples
from expertkit.evaluation.compare import EngineBackend
from expertkit.expert import Expert
from expertkit.models.base import build_tiny_base, shipped_experts_dir
from expertkit.quickstart import QUICKSTART_EXPERT, run_quickstart


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    expert = Expert.load(shipped_experts_dir() / QUICKSTART_EXPERT)
    examples = load_examples(expert.train_path)[:300]
    corpus = [expert.contract.render_conversation(dict(e.fields), e.question, e.answer or "") for e in examples]
    return build_tiny_base(tmp_path_factory.mktemp("base") / "tiny", corpus=corpus, vocab_size=600)


def test_quickstart_end_to_end_in_small(tmp_path: Path, tiny_base: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    expert_dir = tmp_path / "elastic"  # the shipped expert without its data: quickstart generates it
    shutil.copytree(shipped_experts_dir() / QUICKSTART_EXPERT, expert_dir, ignore=shutil.ignore_patterns("data"))
    manifest = expert_dir / "expert.yaml"  # a small eval set: scored at every checkpoint while training
    manifest.write_text(manifest.read_text().replace("eval_size: 320", "eval_size: 4"))
    out = tmp_path / "qs"
    generated: list[tuple[str | None, bool]] = []
    real = EngineBackend.generate

    def counting(self: EngineBackend, name: str | None, prompts: Any, advance: Any, fields: Any) -> Any:
        generated.append((name, self.engine.in_memory))
        return real(self, name, prompts, advance, fields)

    monkeypatch.setattr(EngineBackend, "generate", counting)
    result = run_quickstart(out, expert_dir=expert_dir, base=str(tiny_base), steps=4, save_every=2,
                            max_examples=64, max_cases=4)
    assert (expert_dir / "data" / "train.jsonl").is_file() and (expert_dir / "data" / "eval.jsonl").is_file()
    assert result.run_dir == out / "run"
    assert sorted(p.name for p in result.run_dir.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    report = json.loads((out / "compare" / "compare.json").read_text())
    assert [(m["name"], m["kind"]) for m in report["models"]] == [
        ("base", "base"), ("checkpoint-2", "full"), ("checkpoint-4", "full")]
    assert all(m["cases"] == 4 for m in report["models"])
    # task-scored checkpoints while training, and compare reusing them: only the base is generated
    run = json.loads((result.run_dir / "run.json").read_text())
    assert [e["name"] for e in run["evaluations"]] == ["checkpoint-2", "checkpoint-4"]
    assert run["options"]["early_stop"] == 3 and run["options"]["eval_every"] == 2
    assert generated == [(None, True), (None, True), (None, False)]  # 2 evaluations in training, then the base
    assert [m["reused"] for m in report["models"]] == [0, 4, 4]
    assert [m["valid"] for m in report["models"][1:]] == [e["valid"] for e in run["evaluations"]]
    assert report["training"]["evaluations"] == run["evaluations"]
    markdown = (out / "compare" / "compare.md").read_text()
    assert "## Scores recorded while training" in markdown and "8 output(s) reused" in markdown
    assert report["best"]["name"] in ("checkpoint-2", "checkpoint-4")
    # picked by correctness (equivalence, then component F1, then validity), and the headline says so
    assert report["metric"] == "equivalent" and report["best"]["tie_breaks"] == ["component_f1", "valid"]
    best = next(m for m in report["models"] if m["name"] == report["best"]["name"])
    others = [m for m in report["models"] if m["step"] is not None]
    assert all((best["equivalent"], best["component_f1"], best["valid"]) >=
               (m["equivalent"], m["component_f1"], m["valid"]) for m in others)
    md = (out / "compare" / "compare.md").read_text()
    assert md.splitlines()[2].startswith(f"**{best['name']}: correct ")
    if shutil.which("chromium"):  # .ci/run installs it; test_report.py skips visibly without it
        shown = render_in_chromium(out / "compare" / "report.html", tmp_path)
        assert shown["headline"].startswith(f"{best['name']}: correct ") and shown["best"] == best["name"]
        ok, warn, fail = (int(n) for n in shown["counts"].split(","))
        assert ok + warn + fail == 3 * 4  # every output of every model is coloured
        outcomes = [c["outputs"][m["name"]] for c in report["cases"] for m in report["models"]]
        assert ok == sum(o["correct"] and o["verdict"] == "direct_valid" for o in outcomes)
        assert fail == sum(not o["valid"] or o["reasoning_kind"] is not None for o in outcomes)
        for painted, colour in zip(shown["colours"].split(";"), (GREEN, AMBER, RED), strict=True):
            assert painted in (colour, "none")
    assert {p.name for p in (out / "compare").iterdir()} == {"compare.json", "compare.md", "report.html"}
    printed = capsys.readouterr()
    assert "best checkpoint:" in printed.out and "checkpoint-4" in printed.out  # the table, on stdout
    assert "4/4 comparing" in printed.err and str(out / "compare") in printed.err
    assert "scores recorded while training:" in printed.err and "checkpoint-2: valid" in printed.err

    again = run_quickstart(out, expert_dir=expert_dir, base=str(tiny_base), steps=4, save_every=2,
                           max_examples=64, max_cases=2)
    assert "already trained to step 4" in capsys.readouterr().err
    assert [m["cases"] for m in again.compare.report["models"]] == [2, 2, 2]
