"""The demo's data: the bundled sample ships a test split and the demo registers it, so the
wizard's "Evaluate on the test split" works after the demo."""

from __future__ import annotations

import shutil

from tui.after import evaluate
from tui.after.run import Run
from tui.common.resources import data_dir
from tui.datasets.validate import validate_paths
from tui.runs.demo import DEMO_DATASET, DEMO_TEST_SPLIT, prepare_demo


def test_the_sample_test_split_is_valid_and_apart_from_the_training_rows():
    train, test = (data_dir("samples") / name for name in (DEMO_DATASET, DEMO_TEST_SPLIT))
    report = validate_paths([train, test])
    assert not report.has_errors and [f.valid_rows for f in report.files] == [24, 6]
    assert not set(train.read_text().splitlines()) & set(test.read_text().splitlines())


def test_the_demo_registers_the_test_split(tiny_model_dir, tmp_path):
    shutil.copytree(tiny_model_dir, tmp_path / "tiny-qwen2")  # the demo reuses a built tiny model
    status = prepare_demo(tmp_path, start=False)
    run = Run.open(status.run_dir)
    name = evaluate.test_split(run)
    assert name == "demo_alpaca_test"
    assert run.spec["datasets"]["entries"][name]["file_name"] == str(tmp_path / "demo_alpaca" / "test.jsonl")
    assert run.spec["datasets"]["train"] == ["demo_alpaca"]
