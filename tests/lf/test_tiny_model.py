"""The real thing from day one: LLaMA-Factory trains the tiny model on this machine's CPU."""

import pytest

pytestmark = pytest.mark.llamafactory


def test_tiny_model_is_a_qwen2_directory_sft_tui_can_read(tiny_model_dir):
    from tui.common.profiles import load_profiles
    from tui.models.resolve import read_local_model

    model = read_local_model(tiny_model_dir, load_profiles(["models"]))
    assert model.architecture.model_type == "qwen2"
    assert model.template == "qwen"
    assert model.weights.complete, model.weights.problems()


def test_llamafactory_trains_the_tiny_model(tiny_sft_run):
    assert tiny_sft_run.returncode == 0, tiny_sft_run.log[-3000:]
    log = tiny_sft_run.trainer_log()
    steps = [row for row in log if "loss" in row]
    assert [row["current_steps"] for row in steps] == [1, 2, 3, 4]
    assert all(row["total_steps"] == 4 for row in log)
    assert all(row["loss"] > 0 for row in steps)
    out = tiny_sft_run.output_dir
    assert (out / "adapter_model.safetensors").stat().st_size > 0
    assert (out / "adapter_config.json").is_file()
    assert (out / "checkpoint-4").is_dir()
    assert "train_loss" in tiny_sft_run.log
