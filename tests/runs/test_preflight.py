"""`sft-tui run` checks what it can on this machine before detaching run_sft.sh: the training
environment, --resume's checkpoint, and the hardware the run was planned for (--force)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runs.test_early_exits import fake_venv
from tests.runs.test_runs import BIN, export, sft_tui
from tests.support.llamafactory import offline_env
from tui.hardware.detect import detect
from tui.hardware.device import Detection, Device
from tui.runs.preflight import hardware_mismatch

pytestmark = pytest.mark.llamafactory

BARE_PATH = "/usr/bin:/bin"  # no conda, no llamafactory-cli


def run_here(run_dir: Path, *args, path: str | None = None):
    env = offline_env() | ({"PATH": path} if path else {})
    import subprocess

    from tests.runs.test_runs import SFT_TUI

    return subprocess.run([SFT_TUI, "run", str(run_dir), *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("case, env_spec, path, args, sentence", [
    ("no-venv", "venv:{tmp}/nonexistent", None, [],
     "the run's training environment {tmp}/nonexistent is not a virtualenv (no bin/activate): create it with "
     "LLaMA-Factory (python -m venv {tmp}/nonexistent && {tmp}/nonexistent/bin/pip install 'llamafactory==0.9.5'), "
     "or export again with --env venv:PATH|conda:NAME"),
    ("no-cli-in-venv", "venv:{tmp}/empty-venv", BARE_PATH, [],
     "llamafactory-cli is not in the run's training environment {tmp}/empty-venv: install it there "
     "({tmp}/empty-venv/bin/pip install 'llamafactory==0.9.5'), or export again with --env venv:PATH|conda:NAME"),
    ("no-conda", "conda:nonesuch", BARE_PATH, [],
     "conda is not on PATH, and the run's training environment is the conda env nonesuch: install conda "
     "(or activate it in this shell), or export again with --env venv:PATH|conda:NAME"),
    ("resume-without-checkpoint", f"venv:{BIN.parent}", None, ["--resume"],
     "--resume: no checkpoint in {output_dir} yet: start it without --resume"),
])
def test_run_refuses_at_once_what_cannot_start_here(tiny_model_dir, tmp_path, case, env_spec, path, args, sentence):
    fake_venv(tmp_path / "empty-venv")
    run_dir = export(tmp_path, tiny_model_dir, case, 1, None, "--env", env_spec.format(tmp=tmp_path))
    output_dir = json.loads((run_dir / "plan.json").read_text())["paths"]["output_dir"]
    done = run_here(run_dir, *args, path=path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == "sft-tui: " + sentence.format(tmp=tmp_path, output_dir=output_dir)
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not (run_dir / "run.pid").exists()  # nothing was detached


RTX_4080_PLANNED = "planned for 1 x NVIDIA GeForce RTX 4080 (16 GiB) with bf16"


def test_a_run_planned_for_other_hardware_needs_force_and_then_fails_in_one_sentence(tiny_model_dir, tmp_path):
    if detect().gpus:
        pytest.skip("this machine has a GPU: the sentence names it (see the unit test below)")
    run_dir = export(tmp_path, tiny_model_dir, "elsewhere", 1, None, "--hardware", "rtx4080-16g")
    assert json.loads((run_dir / "plan.json").read_text())["plan"]["settings"]["bf16"] is True
    refused = run_here(run_dir)
    assert refused.returncode == 2
    assert refused.stderr.strip() == f"sft-tui: {RTX_4080_PLANNED}; this machine has no GPU: run it there, or --force"
    assert not (run_dir / "run.pid").exists()

    run_here(run_dir, "--force").check_returncode()
    watched = sft_tui("monitor", run_dir, "--plain")
    assert watched.returncode == 1, watched.stdout
    failed = [line for line in watched.stdout.splitlines() if line.startswith("failed:")]
    assert failed == ["failed: This machine cannot train in bf16 (it has no GPU, or one without bf16): run it on "
                      "the hardware it was planned for, or export it again for this machine (`sft-tui export "
                      "--hardware detected ...`), whose plan leaves bf16 off."]
    assert "Traceback" not in watched.stdout


def gpu(name: str, bf16: bool, vendor: str = "nvidia", index: int = 0) -> Device:
    return Device(index=index, vendor=vendor, name=name, memory_total_mib=15360, memory_free_mib=15000,
                  memory_used_mib=360, bf16=bf16, fp16=True, flash_attn2=False, bitsandbytes=True, free=True)


CPU = Device(index=0, vendor="cpu", name="CPU", memory_total_mib=32768, memory_free_mib=30000, memory_used_mib=2768,
             bf16=False, fp16=False, flash_attn2=False, bitsandbytes=False, free=True, cpu_cores=8)


@pytest.mark.parametrize("gpus, here", [
    ([], "this machine has no GPU"),
    ([gpu("Tesla T4", bf16=False)], "this machine has 1 x Tesla T4 (15 GiB), without bf16"),
    ([gpu("AMD Instinct MI50", bf16=False, vendor="amd")], "this machine has 1 x AMD Instinct MI50 (15 GiB)"),
    ([gpu("NVIDIA GeForce RTX 4080", bf16=True)], None),
])
def test_hardware_mismatch_names_both_machines(gpus, here):
    spec = {"hardware": {"name": "rtx4080-16g", "device": "NVIDIA GeForce RTX 4080", "vendor": "nvidia", "gpus": 1},
            "plan": {"settings": {"bf16": True}, "estimate": {"capacity_gib": 15.992}}}
    mismatch = hardware_mismatch(spec, Detection([*gpus, CPU], []))
    if here is None:
        assert mismatch is None
    else:
        assert (mismatch.planned, mismatch.here) == (RTX_4080_PLANNED, here)
    cpu_plan = {"hardware": {"name": "cpu", "device": "CPU", "vendor": "cpu", "gpus": 1}, "plan": {"settings": {}}}
    assert hardware_mismatch(cpu_plan, Detection([*gpus, CPU], [])) is None  # a CPU plan runs anywhere
