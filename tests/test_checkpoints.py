"""The run folder as one object (``expertkit.core.checkpoints``): records round-trip in their on-disk format,
malformed records are one error naming the file and the field, and the layout's answers (checkpoints, latest,
finished, logs, the compare folder)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _reliability import WEIGHTS, assert_one_line_error, run_main, write_checkpoint

from expertkit.core.checkpoints import CheckpointRecord, Run, RunRecord, StopRecord, load_checkpoint
from expertkit.core.errors import ExpertkitError
from expertkit.expert import Expert

#: A checkpoint record as ``train`` writes it (every key), plus one a later version might add.
CHECKPOINT_RECORD: dict[str, Any] = {
    "expert": "mini", "expert_version": "0.1.0", "fingerprint": "abc", "contract": {"wrapper": "qwen3"},
    "method": "lora", "base": "tiny", "base_path": "/cache/tiny", "world_size": 1, "global_batch": 16,
    "global_batch_unit": "examples", "padding_free": False, "max_tokens_per_batch": None, "step": 4,
    "loss": 1.25, "learning_rate": 0.001, "epoch": 0.5, "saved": "2026-01-01T00:00:00+00:00",
    "weights_sha256": {"adapter_model.safetensors": "00ff"}, "eval": {"step": 4, "valid": 0.5},
    "from_a_newer_version": [1, 2],
}
RUN_RECORD: dict[str, Any] = {
    "expert": "mini", "base": "tiny", "method": "lora", "fingerprint": "abc",
    "options": {"steps": 8, "base_path": "/cache/tiny", "seed": 1},
    "data": {"train": "/x/train.jsonl", "records": 10, "skipped": {"too_long": 1}, "sha256": "99"},
    "created": "2026-01-01T00:00:00+00:00",
    "history": [{"action": "train", "from_step": 0, "to_step": 8, "started": "2026-01-01T00:00:00+00:00"}],
    "evaluations": [{"step": 4, "valid": 0.5}], "best": {"name": "checkpoint-4", "step": 4},
}


def test_records_round_trip_in_their_on_disk_format(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoint-4"
    folder.mkdir()
    (folder / "expertkit.json").write_text(json.dumps(CHECKPOINT_RECORD))
    record = CheckpointRecord.read(folder)
    assert (record.step, record.base, record.loss, record.weights_sha256) == (
        4, "tiny", 1.25, {"adapter_model.safetensors": "00ff"})
    assert record.to_json() == CHECKPOINT_RECORD  # undeclared keys kept; nothing added
    record.write(folder)
    assert json.loads((folder / "expertkit.json").read_text()) == CHECKPOINT_RECORD

    old = {"step": 2, "fingerprint": "abc"}  # an older record: what it holds, and no more, is written back
    (folder / "expertkit.json").write_text(json.dumps(old))
    assert CheckpointRecord.read(folder).to_json() == old

    run = Run(tmp_path)
    (tmp_path / "run.json").write_text(json.dumps(RUN_RECORD))
    read = run.record
    assert read is not None and read.base_path == "/cache/tiny" and read.planned_steps == 8
    assert read.data is not None and read.data.sha256 == "99" and read.history[0].action == "train"
    run.write_record(read)
    assert json.loads((tmp_path / "run.json").read_text()) == RUN_RECORD
    read.stopped = StopRecord(step=4, reason="early stop")
    run.write_record(read)
    assert json.loads((tmp_path / "run.json").read_text())["stopped"] == {"step": 4, "reason": "early stop"}
    read.stopped = None  # an early stop that no longer holds is left out, as before, not written as null
    run.write_record(read)
    assert json.loads((tmp_path / "run.json").read_text()) == RUN_RECORD


@pytest.mark.parametrize(("name", "text", "where"), [
    ("expertkit.json", '{"step": "4"}', "expertkit.json: step: checkpoint record has no integer 'step'"),
    ("expertkit.json", '{"step": 4, "loss": "low"}', "expertkit.json: loss: malformed checkpoint record"),
    ("expertkit.json", "[4]", "expertkit.json: checkpoint record is not a JSON object"),
    ("expertkit.json", '{"step": 4,', "expertkit.json:1: unreadable checkpoint record"),
    ("run.json", '{"data": {"sha256": 5}}', "run.json: data.sha256: malformed run record"),
    ("run.json", '{"history": [{"action": "train"}]}', "run.json: history.0.from_step: malformed run record"),
    ("run.json", '"run"', "run.json: run record is not a JSON object"),
])
def test_a_malformed_record_is_one_error_naming_file_and_field(tmp_path: Path, name: str, text: str,
                                                               where: str) -> None:
    folder = tmp_path / "checkpoint-4"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(WEIGHTS)
    (folder / "expertkit.json").write_text('{"step": 4}')
    (folder if name == "expertkit.json" else tmp_path).joinpath(name).write_text(text)
    with pytest.raises(ExpertkitError) as caught:
        Run(tmp_path).record if name == "run.json" else Run(tmp_path).checkpoints()
    assert where in str(caught.value) and "\n" not in str(caught.value)


def test_the_cli_names_a_malformed_record(tmp_path: Path, elastic: Expert, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    checkpoint = write_checkpoint(run / "checkpoint-1", elastic)
    (run / "run.json").write_text('{"expert": ["elastic"]}')
    result = run_main(["compare", elastic.root, "--run", run], capsys, monkeypatch)
    assert_one_line_error(result, "run.json: expert: malformed run record")
    (checkpoint / "expertkit.json").write_text('{"step": 1, "weights_sha256": ["x"]}')
    result = run_main(["package", elastic.root, "--checkpoint", checkpoint, "--out", tmp_path / "e.expert"],
                      capsys, monkeypatch)
    assert_one_line_error(result, "expertkit.json: weights_sha256: malformed checkpoint record")
    assert not (tmp_path / "e.expert").exists()


def test_the_run_folder_layout(tmp_path: Path, elastic: Expert) -> None:
    run = Run(tmp_path / "run")
    assert not run.holds_run() and run.record is None
    with pytest.raises(ExpertkitError, match="no such run folder"):
        run.checkpoints()
    for step in (2, 10):
        write_checkpoint(run.checkpoint_path(step), elastic, step=step)
    write_checkpoint(run.tmp_checkpoint_path(12), elastic, step=12)  # being written
    run.checkpoint_path(14).mkdir()  # its save was cut before the record
    assert run.holds_run()
    assert [c.step for c in run.checkpoints()] == [2, 10] and run.latest == load_checkpoint(run.checkpoint_path(10))
    assert run.incomplete() == ["tmp-checkpoint-12", "checkpoint-14"]
    assert run.latest is not None and run.latest.kind == "adapter" and run.latest.run.path == run.path

    assert not run.finished  # no run record: nothing was planned
    run.write_record(RunRecord(expert="elastic", options={"steps": 20}))
    assert (run.progress().done, run.progress().planned, run.finished) == (10, 20, False)
    run.write_record(RunRecord(expert="elastic", options={"steps": 20}, stopped=StopRecord(step=10, reason="r")))
    assert run.finished and run.progress().stopped_early
    run.write_record(RunRecord(expert="elastic", options={"steps": 10}))
    assert run.finished and not run.progress().stopped_early

    run.remove_checkpoint(run.checkpoints()[0])
    run.remove_tmp_checkpoints()
    assert sorted(c.name for c in run.path.iterdir() if c.is_dir()) == ["checkpoint-10", "checkpoint-14"]

    run.loss_log_path.write_text('{"step": 1}\n{"step": 2}\n{"step": 3}\n{"ste')  # a line cut by a kill
    assert run.trim_log(run.loss_log_path, 2) == [{"step": 1}, {"step": 2}]
    assert run.read_log(run.loss_log_path) == [{"step": 1}, {"step": 2}]

    assert run.compare_report() is None
    run.compare_dir.mkdir()
    run.compare_report_path.write_text('{"models": []')
    with pytest.raises(ExpertkitError, match=r"compare/compare\.json:1: unreadable comparison report"):
        run.compare_report()
