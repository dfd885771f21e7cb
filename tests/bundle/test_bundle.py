"""Run bundles: golden files for scenarios S1-S6, LLaMA-Factory's own check, hostile paths
through real bash, YAML round trips, shellcheck, safe writing and registering."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from tests.support.llamafactory import SAMPLE_ALPACA_ROWS, offline_env, write_jsonl
from tui.bundle.spec import (
    BundleError,
    LaunchOptions,
    load_spec,
    make_spec,
    render_bundle,
    train_settings,
)
from tui.bundle.write import register_into, write_bundle
from tui.common.profiles import load_profiles
from tui.datasets.validate import validate_paths
from tui.hardware.profile import devices_from_profile
from tui.models.resolve import resolve_model
from tui.plan.planner import plan
from tui.plan.values import DataFacts, PlanRequest

BIN = Path(sys.executable).parent
SHELLCHECK = str(BIN / "shellcheck")
PROFILES = load_profiles(user_dir=Path("/nonexistent-sft-tui-user-dir"))
RECIPES = {p.name: p.data for p in PROFILES.of("recipes")}
WHEN = datetime(2026, 11, 22, 9, 30, tzinfo=timezone.utc)
# Golden bundles need the same absolute paths on every machine.
GOLDEN_ROOT = Path("/tmp/sft-tui-golden")

SCENARIOS = {
    # id: hardware, gpus, model, data facts, launch options
    "S1": ("rtx4080-16g", None, "Qwen/Qwen2.5-Coder-14B-Instruct", DataFacts(10_000, 0, 1800, 2048), LaunchOptions(env="conda:chisel-train")),
    "S2": ("rtx3060-12g", None, "Qwen/Qwen2.5-Coder-0.5B", DataFacts(29, 1, 700, 768), LaunchOptions()),
    "S3": ("rtx4090-24g", None, "Qwen/Qwen2.5-Coder-0.5B", DataFacts(2964, 163, 900, 1024), LaunchOptions()),
    "S4": ("rtx3090-24g", None, "Qwen/Qwen2.5-Coder-14B-Instruct", DataFacts(10_550, 0, 1800, 2048), LaunchOptions(modelscope=True)),
    "S5": ("rtx4090-24g", None, "Qwen/Qwen3-4B", DataFacts(5000, 0, 3500, 4096), LaunchOptions(env="venv:/opt/venvs/train")),
    "S6": ("mi50-32g", 2, "Qwen/Qwen2.5-7B-Instruct", DataFacts(5600, 0, 900, 1024), LaunchOptions(slurm=True)),
}


class TextFile(SingleFileSnapshotExtension):
    _write_mode = WriteMode.TEXT
    _file_extension = "txt"


def scenario_data(root: Path, with_splits: bool) -> Path:
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    write_jsonl(data / "train.jsonl", SAMPLE_ALPACA_ROWS)
    if with_splits:
        write_jsonl(data / "val.jsonl", SAMPLE_ALPACA_ROWS[:2])
        write_jsonl(data / "test.jsonl", SAMPLE_ALPACA_ROWS[2:4])
    return data


def scenario_spec(name: str, root: Path) -> dict:
    hardware, gpus, model, facts, launch = SCENARIOS[name]
    data = scenario_data(root / name, with_splits=facts.val_rows > 0)
    report = validate_paths([data])
    devices = devices_from_profile(PROFILES.get("hardware", hardware).data, gpus)
    request = PlanRequest(devices=devices, model=resolve_model(model, PROFILES), recipes=RECIPES, data=facts)
    return make_spec(plan(request), request, report, replace(launch), root / name / "out", run_id=f"{name.lower()}-run",
                     when=WHEN, hardware_name=hardware)


@pytest.fixture(scope="module")
def golden_specs():
    shutil.rmtree(GOLDEN_ROOT, ignore_errors=True)
    return {name: scenario_spec(name, GOLDEN_ROOT) for name in SCENARIOS}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden_bundles(golden_specs, name, snapshot):
    files = render_bundle(golden_specs[name])
    expected = {"plan.json", "train.yaml", "dataset_info.json", "run_sft.sh", "infer.yaml", "export.yaml", "README.md"}
    assert expected <= set(files)
    for file_name in sorted(files):
        assert files[file_name] == snapshot(name=file_name, extension_class=TextFile)


def test_scenario_specifics(golden_specs):
    s6 = render_bundle(golden_specs["S6"])
    assert "ds_z3.json" in s6 and "run_sft.sbatch" in s6
    assert "export FORCE_TORCHRUN=1" in s6["run_sft.sh"] and "default_env HIP_VISIBLE_DEVICES 0,1" in s6["run_sft.sh"]
    s6_yaml = yaml.safe_load(s6["train.yaml"])
    assert s6_yaml["deepspeed"] == "ds_z3.json" and s6_yaml["flash_attn"] == "disabled"
    assert (s6_yaml["bf16"], s6_yaml["fp16"]) == (False, False)
    s1 = render_bundle(golden_specs["S1"])
    assert "conda activate chisel-train" in s1["run_sft.sh"]
    export = yaml.safe_load(s1["export.yaml"])
    assert "quantization_bit" not in export  # merging never uses a quantized base
    assert yaml.safe_load(s1["infer.yaml"])["quantization_bit"] == 4
    assert "export USE_MODELSCOPE_HUB=1" in render_bundle(golden_specs["S4"])["run_sft.sh"]
    assert "modelscope download --model" in render_bundle(golden_specs["S4"])["README.md"]
    s2 = render_bundle(golden_specs["S2"])
    info = json.loads(s2["dataset_info.json"])
    assert set(info) == {"data", "data_val", "data_test"}
    assert yaml.safe_load(s2["train.yaml"])["eval_dataset"] == "data_val"


@pytest.mark.llamafactory
def test_every_scenario_bundle_passes_llamafactory_check(golden_specs, tmp_path):
    for name, spec in golden_specs.items():
        written = write_bundle(spec, force=True)
        done = subprocess.run([str(BIN / "sft-tui"), "check", str(written.run_dir), "--json"],
                              capture_output=True, text=True, timeout=300)
        result = json.loads(done.stdout)
        assert done.returncode == 0 and result["ok"], (name, result)


@pytest.mark.llamafactory
def test_check_reports_a_misspelled_key_a_wrong_type_and_an_unknown_template(golden_specs, tmp_path):
    spec = json.loads(json.dumps(golden_specs["S2"]))
    spec["paths"]["run_dir"] = str(tmp_path / "run")
    write_bundle(spec)
    train_yaml = tmp_path / "run" / "train.yaml"
    text = train_yaml.read_text()
    text = text.replace("lora_alpha: 64", "lora_alfa: 64").replace("lora_rank: 32", "lora_rank: abc")
    train_yaml.write_text(text.replace('template: "qwen"', 'template: "qwen9"'))
    done = subprocess.run([str(BIN / "sft-tui"), "check", str(tmp_path / "run")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert "train.yaml: lora_alfa: not a LLaMA-Factory argument" in lines
    assert "train.yaml: lora_rank: invalid int value: 'abc'" in lines
    assert "train.yaml: template: 'qwen9' is not a template of the installed LLaMA-Factory" in lines


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_rendered_scripts_pass_shellcheck(golden_specs, name, tmp_path):
    files = render_bundle(golden_specs[name])
    for script in [n for n in files if n.endswith((".sh", ".sbatch"))]:
        path = tmp_path / script
        path.write_text(files[script])
        done = subprocess.run([SHELLCHECK, "--shell=bash", str(path)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout


# --- hostile paths through real bash ---------------------------------------------------------------

FRAGMENTS = list("ab xyz'\"$()`;|&<>*?~#!\\{}[]=-\n\té😀中") + ["$(touch pwned)", "`touch pwned`", "--", "-rf", "${HOME}", "yes", "1e-4"]
HOSTILE = st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=6).map("".join).filter(
    lambda s: s.strip() and s not in (".", "..") and not s.startswith("-"))

RECORDER = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["RECORD_TO"], "w") as f:
    json.dump({"argv": sys.argv[1:], "cwd": os.getcwd(), "env": {k: os.environ.get(k) for k in
               ("CUDA_VISIBLE_DEVICES", "RECORD_VRAM", "LLAMABOARD_ENABLED", "LLAMABOARD_WORKDIR", "FORCE_TORCHRUN", "VIRTUAL_ENV_MARK",
                "PYTORCH_CUDA_ALLOC_CONF")}}, f)
"""


def hostile_spec(base: dict, root: Path, run_name: str, out_name: str, venv_name: str, model: str) -> dict:
    spec = json.loads(json.dumps(base))
    # The run directory is named by its run id (a copy under another name is refused); hostile names
    # are the folders above it, where the user chose to put runs/ and saves/.
    out_root = root / out_name / run_name
    spec["paths"] = {"run_dir": str(out_root / "runs" / spec["run_id"]), "output_dir": str(out_root / "saves" / spec["run_id"])}
    spec["launch"]["env"] = f"venv:{root / venv_name}"
    spec["plan"]["settings"]["model_name_or_path"] = model
    return spec


def make_venv(path: Path) -> None:
    (path / "bin").mkdir(parents=True)
    # a minimal activate: what `source venv/bin/activate` does that matters here
    (path / "bin" / "activate").write_text('PATH="$(dirname "${BASH_SOURCE[0]}"):$PATH"\nexport VIRTUAL_ENV_MARK=active\n')
    cli = path / "bin" / "llamafactory-cli"
    cli.write_text(RECORDER)
    cli.chmod(cli.stat().st_mode | stat.S_IEXEC)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(run_name=HOSTILE, out_name=HOSTILE, venv_name=HOSTILE, model=HOSTILE)
def test_hostile_paths_reach_llamafactory_exactly(golden_specs, tmp_path_factory, run_name, out_name, venv_name, model):
    root = tmp_path_factory.mktemp("hostile")
    spec = hostile_spec(golden_specs["S2"], root, run_name, out_name, venv_name, model)
    if "${" in model or "${" in str(root):
        # OmegaConf would read it as an interpolation: refused with a clear sentence (the folders
        # above the run directory never reach the YAML: its paths are relative to the run directory)
        with pytest.raises(BundleError, match="interpolation"):
            render_bundle(spec)
        return
    files = render_bundle(spec)
    run_dir = Path(spec["paths"]["run_dir"])
    run_dir.mkdir(parents=True)
    (run_dir / "run_sft.sh").write_text(files["run_sft.sh"])
    make_venv(root / venv_name)
    record = root / "record.json"
    env = {"PATH": "/usr/bin:/bin", "RECORD_TO": str(record), "HOME": str(root)}
    done = subprocess.run(["bash", str(run_dir / "run_sft.sh"), "--foreground"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    seen = json.loads(record.read_text())
    # From the run directory, with paths relative to it: the bundle would run the same anywhere.
    assert seen["argv"] == ["train", "train.yaml"] and os.path.samefile(seen["cwd"], run_dir)
    assert seen["env"] == {"CUDA_VISIBLE_DEVICES": "0", "RECORD_VRAM": "1", "LLAMABOARD_ENABLED": "1",
                           "LLAMABOARD_WORKDIR": "../../saves/s2-run", "FORCE_TORCHRUN": None, "VIRTUAL_ENV_MARK": "active",
                           "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}
    assert (run_dir / "exit_code").read_text() == "0\n"
    assert not list(root.rglob("pwned"))
    # the YAML loads back to exactly the plan's values, with PyYAML and with OmegaConf
    expected = train_settings(spec)
    assert yaml.safe_load(files["train.yaml"]) == expected
    assert OmegaConf.to_container(OmegaConf.create(files["train.yaml"])) == expected
    assert yaml.safe_load(files["infer.yaml"])["model_name_or_path"] == model


def test_resume_passes_the_newest_checkpoint(golden_specs, tmp_path):
    spec = hostile_spec(golden_specs["S2"], tmp_path, "run dir", "out dir", "venv", "m")
    run_dir, output_dir = Path(spec["paths"]["run_dir"]), Path(spec["paths"]["output_dir"])
    run_dir.mkdir(parents=True)
    (run_dir / "run_sft.sh").write_text(render_bundle(spec)["run_sft.sh"])
    make_venv(tmp_path / "venv")
    env = {"PATH": "/usr/bin:/bin", "RECORD_TO": str(tmp_path / "r.json")}
    done = subprocess.run(["bash", str(run_dir / "run_sft.sh"), "--foreground", "--resume"], env=env, capture_output=True, text=True)
    assert done.returncode == 1 and "no checkpoint" in done.stderr
    for step in (2, 10, 9):
        (output_dir / f"checkpoint-{step}").mkdir(parents=True, exist_ok=True)
    subprocess.run(["bash", str(run_dir / "run_sft.sh"), "--foreground", "--resume"], env=env, check=True, capture_output=True)
    argv = json.loads((tmp_path / "r.json").read_text())["argv"]
    assert argv[2:] == [f"resume_from_checkpoint={output_dir / 'checkpoint-10'}", "overwrite_output_dir=false"]


def test_the_allocator_mode_the_reserve_is_modelled_for_yields_to_the_callers(golden_specs, tmp_path):
    """run_sft.sh gives the CUDA allocator expandable segments (tui/plan/reserve.py says why), unless
    the caller's environment sets PYTORCH_CUDA_ALLOC_CONF; an AMD bundle leaves it alone."""
    spec = hostile_spec(golden_specs["S2"], tmp_path, "run", "out", "venv", "m")
    run_dir = Path(spec["paths"]["run_dir"])
    run_dir.mkdir(parents=True)
    (run_dir / "run_sft.sh").write_text(render_bundle(spec)["run_sft.sh"])
    make_venv(tmp_path / "venv")
    record = tmp_path / "r.json"
    env = {"PATH": "/usr/bin:/bin", "RECORD_TO": str(record), "PYTORCH_CUDA_ALLOC_CONF": "max_split_size_mb:128"}
    subprocess.run(["bash", str(run_dir / "run_sft.sh"), "--foreground"], env=env, check=True, capture_output=True)
    assert json.loads(record.read_text())["env"]["PYTORCH_CUDA_ALLOC_CONF"] == "max_split_size_mb:128"
    amd = json.loads(json.dumps(spec))
    amd["hardware"]["vendor"] = "amd"
    assert "PYTORCH_CUDA_ALLOC_CONF" not in render_bundle(amd)["run_sft.sh"]


def test_missing_llamafactory_is_a_clear_message(golden_specs, tmp_path):
    spec = json.loads(json.dumps(golden_specs["S2"]))
    run_dir = tmp_path / "runs" / spec["run_id"]
    run_dir.mkdir(parents=True)
    (run_dir / "run_sft.sh").write_text(render_bundle(spec)["run_sft.sh"])
    done = subprocess.run(["bash", str(run_dir / "run_sft.sh"), "--foreground"], env={"PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True)
    assert done.returncode == 127 and "llamafactory-cli not found" in done.stderr


# --- writing safely ------------------------------------------------------------------------------------


def test_export_refuses_an_existing_run_and_keeps_edited_files(golden_specs, tmp_path):
    spec = json.loads(json.dumps(golden_specs["S3"]))
    spec["paths"] = {"run_dir": str(tmp_path / "runs" / "r"), "output_dir": str(tmp_path / "saves" / "r")}
    first = write_bundle(spec)
    assert (first.run_dir / "run_sft.sh").stat().st_mode & 0o777 == 0o755
    with pytest.raises(BundleError, match="already exists"):
        write_bundle(spec)
    edited = first.run_dir / "train.yaml"
    edited.write_text(edited.read_text() + "# my note\n")
    spec["plan"]["settings"]["learning_rate"] = 1e-4
    again = write_bundle(spec, force=True)
    assert "train.yaml" in again.kept and "train.yaml" not in again.written
    assert edited.read_text().endswith("# my note\n")
    assert "learning_rate: 0.0001" in (first.run_dir / "train.yaml.sft-tui-new").read_text()
    assert "README.md" in again.written
    assert not list(first.run_dir.glob(".*.tmp"))


def test_export_from_plan_json_renders_the_same_bundle(tiny_model_dir, tmp_path):
    data = scenario_data(tmp_path, with_splits=True)
    out = tmp_path / "out"
    argv = [str(BIN / "sft-tui"), "export", "--hardware", "cpu", "--model", str(tiny_model_dir), "--dataset", str(data),
            "--out", str(out), "--name", "tiny", "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    run_dir = Path(result["run_dir"])
    assert result["command"] == f"bash {run_dir / 'run_sft.sh'}"
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    copy = tmp_path / "plan-copy.json"
    shutil.copy(run_dir / "plan.json", copy)
    for name in before:
        (run_dir / name).unlink()
    done = subprocess.run([str(BIN / "sft-tui"), "export", "--from", str(copy)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
    assert load_spec(run_dir / "plan.json")["run_id"] == "tiny"


def test_register_into_merges_safely(golden_specs, tmp_path):
    entries = golden_specs["S2"]["datasets"]["entries"]
    data_dir = tmp_path / "LLaMA-Factory" / "data"
    data_dir.mkdir(parents=True)
    target = data_dir / "dataset_info.json"
    original = {"alpaca_en_demo": {"file_name": "alpaca_en_demo.json"}, "data": {"file_name": "theirs.json"},
                "zzz": {"file_name": "z.json"}}
    target.write_text(json.dumps(original, indent=2))
    with pytest.raises(BundleError, match="already has data"):
        register_into(data_dir, entries)
    assert json.loads(target.read_text()) == original
    register_into(data_dir, entries, replace=True)
    merged = json.loads(target.read_text())
    assert list(merged) == ["alpaca_en_demo", "data", "zzz"] + [k for k in entries if k != "data"]
    assert merged["data"] == entries["data"] and merged["zzz"] == original["zzz"]
    assert json.loads((data_dir / "dataset_info.json.bak").read_text()) == original
    target.write_text("{ not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        register_into(data_dir, entries, replace=True)
    assert target.read_text() == "{ not json"


@pytest.mark.llamafactory
def test_the_s2_like_bundle_really_trains_with_run_sft_sh(tiny_model_dir, tmp_path):
    data = scenario_data(tmp_path, with_splits=True)
    argv = [str(BIN / "sft-tui"), "export", "--hardware", "cpu", "--model", str(tiny_model_dir), "--dataset", str(data),
            "--out", str(tmp_path / "out"), "--name", "s2-tiny", "--env", f"venv:{BIN.parent}",
            "--set", "num_train_epochs=1", "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    run_dir = Path(json.loads(done.stdout)["run_dir"])
    train = subprocess.run(["bash", str(run_dir / "run_sft.sh"), "--foreground"], capture_output=True, text=True,
                           timeout=600, env=offline_env())
    assert train.returncode == 0, (train.stdout + train.stderr)[-3000:]
    assert (run_dir / "exit_code").read_text() == "0\n"
    saves = tmp_path / "out" / "saves" / "s2-tiny"
    assert (saves / "adapter_model.safetensors").is_file()
    log = [json.loads(line) for line in (saves / "trainer_log.jsonl").read_text().splitlines()]
    assert any("eval_loss" in row for row in log)  # the val split was evaluated
    assert (saves / "running_log.txt").is_file()  # LLAMABOARD_ENABLED=1 reached LLaMA-Factory


@pytest.mark.llamafactory
def test_check_uses_the_run_s_own_training_environment(golden_specs, tmp_path):
    """`sft-tui check` asks the LLaMA-Factory of the environment run_sft.sh activates (here a
    venv whose python notes that it ran, then runs the real one), not the one on PATH."""
    venv = tmp_path / "train-venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\ntouch "{tmp_path / "used"}"\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    spec = json.loads(json.dumps(golden_specs["S2"]))
    spec["paths"]["run_dir"] = str(tmp_path / "run")
    spec["launch"]["env"] = f"venv:{venv}"
    write_bundle(spec)
    done = subprocess.run([str(BIN / "sft-tui"), "check", str(tmp_path / "run")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "used").exists()


@pytest.mark.llamafactory
def test_check_reports_a_setting_whose_package_is_missing(golden_specs, tmp_path):
    """Liger, 8-bit AdamW and 4-bit weights need packages LLaMA-Factory imports only when it loads
    the model: check finds them missing (this test environment has none of them). A bundle planned
    for this machine fails; one planned for another machine gets a note."""
    spec = json.loads(json.dumps(golden_specs["S2"]))
    spec["paths"]["run_dir"] = str(tmp_path / "run")
    spec["hardware"]["name"] = "detected"
    spec["plan"]["settings"] |= {"enable_liger_kernel": True, "optim": "adamw_8bit"}
    write_bundle(spec)
    done = subprocess.run([str(BIN / "sft-tui"), "check", str(tmp_path / "run"), "--json"],
                          capture_output=True, text=True, timeout=300)
    result = json.loads(done.stdout)
    assert done.returncode == 1
    messages = {(p["key"], p["message"]) for p in result["problems"]}
    assert ("enable_liger_kernel", "needs liger-kernel, which this training environment does not have "
            "(pip install liger-kernel)") in messages
    assert ("optim", "needs bitsandbytes, which this training environment does not have (pip install bitsandbytes)") in messages
    plan_json = tmp_path / "run" / "plan.json"
    other = json.loads(plan_json.read_text())
    other["hardware"]["name"] = "rtx4080-16g"
    plan_json.write_text(json.dumps(other))
    done = subprocess.run([str(BIN / "sft-tui"), "check", str(tmp_path / "run"), "--json"],
                          capture_output=True, text=True, timeout=300)
    result = json.loads(done.stdout)
    assert done.returncode == 0 and result["ok"]
    assert any(n.startswith("enable_liger_kernel: needs liger-kernel") and n.endswith("install it on the machine the run is for")
               for n in result["notes"])


def test_a_dataset_with_images_gets_media_dir_at_its_folder(tmp_path, capsys):
    """LLaMA-Factory looks for images under media_dir (default: dataset_dir, the run directory);
    the rows name them relative to the dataset file's folder."""
    from tui.cli.main import main

    data = tmp_path / "vision"
    (data / "img").mkdir(parents=True)
    (data / "img" / "cat.png").write_bytes(b"\x89PNG")
    rows = [{"messages": [{"role": "user", "content": f"<image>What is {i}?"}, {"role": "assistant", "content": "A cat."}],
             "images": ["img/cat.png"]} for i in range(3)]
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["validate", str(data / "train.jsonl")]) == 0
    assert "  rows with media: images 3" in capsys.readouterr().out
    assert main(["export", "--hardware", "rtx4090-24g", "--model", "qwen2.5-0.5b", "--dataset", str(data / "train.jsonl"),
                 "--out", str(tmp_path / "out"), "--name", "v"]) == 0
    train = yaml.safe_load((tmp_path / "out" / "runs" / "v" / "train.yaml").read_text())
    assert train["media_dir"] == str(data)
