"""`--gpus` and `--hardware` as a user types them: a count outside 1..64 is refused (the wizard's
GPUs box asks the same question of the same rule), a GPU count for a machine that has no GPU is
refused rather than ignored, "what would fit" on a CPU never offers more devices, and a profile
name typed short or wrong gets "did you mean". Only NVML is faked (this machine's detection)."""

from __future__ import annotations

import json

import pynvml
import pytest

from tui.cli.main import main

PLAN = ["plan", "--model", "qwen2.5-0.5b"]


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cpu_only_machine(monkeypatch):
    """This machine as detection sees it with no GPU: NVML has no driver, no amd-smi on PATH."""
    def no_driver():
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", no_driver)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")


@pytest.mark.parametrize("count", ["0", "-1", "100", "65"])
@pytest.mark.parametrize("hardware", ["rtx4090-24g", "detected"])
def test_a_gpu_count_outside_1_to_64_is_one_sentence_and_exit_2(capsys, count, hardware):
    code, out, err = run_cli(capsys, *PLAN, "--hardware", hardware, "--gpus", count)
    assert (code, out) == (2, "")
    assert err == f"sft-tui: --gpus {count}: a GPU count is a whole number from 1 to 64 per node\n"


def test_the_cli_and_the_wizard_ask_the_same_rule():
    from tui.app.wizard import hardware as wizard_hardware
    from tui.hardware import profile

    assert wizard_hardware.gpu_count_problem is profile.gpu_count_problem
    assert profile.gpu_count_problem(64) is None and profile.gpu_count_problem(1) is None
    assert profile.gpu_count_problem(65) and profile.gpu_count_problem(0)


def test_64_gpus_of_a_profile_are_planned(capsys):
    code, out, _ = run_cli(capsys, *PLAN, "--hardware", "rtx4090-24g", "--gpus", "64", "--json")
    assert code == 0 and json.loads(out)["gpus"] == 64


def test_gpus_on_a_machine_without_a_gpu_is_refused_not_ignored(capsys, cpu_only_machine):
    code, out, err = run_cli(capsys, *PLAN, "--gpus", "2")
    assert (code, out) == (2, "")
    assert err == ("sft-tui: --gpus 2: this machine has no GPU, so the plan is for its CPU: leave --gpus out, "
                   "or plan for another machine with --hardware NAME --gpus 2\n")


def test_gpus_for_the_cpu_profile_is_refused(capsys):
    code, out, err = run_cli(capsys, *PLAN, "--hardware", "cpu", "--gpus", "2")
    assert (code, out) == (2, "")
    assert err == ("sft-tui: --gpus 2: the hardware profile cpu has no GPU, so the plan is for its CPU: "
                   "leave --gpus out, or choose a profile with GPUs\n")


def test_a_cpu_plan_that_does_not_fit_offers_no_more_devices_or_zero(capsys, cpu_only_machine):
    code, out, _ = run_cli(capsys, "plan", "--model", "qwen2.5-7b", "--hardware", "cpu", "--json")
    suggestions = json.loads(out)["suggestions"]
    assert code == 1 and suggestions
    assert not [s for s in suggestions if "ZeRO" in s or "GPUs" in s or "of these" in s], suggestions
    code, out, _ = run_cli(capsys, "plan", "--model", "qwen2.5-7b", "--json")  # this machine, a CPU
    suggestions = json.loads(out)["suggestions"]
    assert code == 1 and not [s for s in suggestions if "ZeRO" in s or "of these" in s], suggestions


def test_a_gpu_plan_that_does_not_fit_still_offers_more_gpus(capsys):
    code, out, _ = run_cli(capsys, "plan", "--model", "llama-3.1-70b", "--hardware", "rtx4090-24g", "--json")
    assert code == 1 and any("ZeRO-3" in s for s in json.loads(out)["suggestions"])


@pytest.mark.parametrize("typed, meant", [
    ("rtx4090", "rtx4090-24g"),      # the name without its memory: a prefix of one profile
    ("rtx4900-24g", "rtx4090-24g"),  # a typo
    ("RTX4090", "rtx4090-24g"),      # any case
    ("a100", "a100-40g, a100-80g"),  # a prefix of two
])
def test_an_unknown_hardware_profile_gets_did_you_mean(capsys, typed, meant):
    code, out, err = run_cli(capsys, *PLAN, "--hardware", typed)
    assert (code, out) == (2, "")
    assert err.startswith(f"sft-tui: unknown hardware {typed!r}: did you mean {meant}")
    assert "`sft-tui profiles hardware` lists them" in err and err.count("\n") == 1


def test_a_hardware_name_like_none_lists_the_choices(capsys):
    code, _, err = run_cli(capsys, *PLAN, "--hardware", "zzzz")
    assert code == 2 and err.startswith("sft-tui: unknown hardware 'zzzz': use `detected` or one of a100-40g, ")


@pytest.mark.parametrize("count", ["0", "-1"])
def test_a_node_count_below_1_is_one_sentence_not_a_traceback(capsys, count):
    code, out, err = run_cli(capsys, *PLAN, "--hardware", "rtx4090-24g", "--nodes", count)
    assert (code, out, err) == (2, "", f"sft-tui: --nodes {count}: a node count is a whole number, at least 1\n")
