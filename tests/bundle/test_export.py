"""`sft-tui export` end to end (the real command in a subprocess): the dataset gate, dropping the
rows with errors into the run directory, `--from plan.json` with `--name`/`--out`, and the
training environment chosen for this machine."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tui.bundle.cleaned import with_cleaned_copies
from tui.bundle.environment import default_env
from tui.bundle.spec import BundleError, load_spec
from tui.bundle.write import write_bundle
from tui.datasets.gate import dataset_refusal
from tui.datasets.validate import validate_paths

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
BROKEN = REPO / "tests" / "data" / "s2-broken" / "train.jsonl"
CLEAN = REPO / "tests" / "data" / "s2"
PROFILE = ["--hardware", "rtx3060-12g", "--model", "qwen2.5-0.5b"]


def export(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "sft-tui"), "export", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_export_refuses_a_dataset_with_errors_and_names_the_first(tmp_path):
    data = tmp_path / "broken.jsonl"
    shutil.copy(BROKEN, data)
    done = export(*PROFILE, "--dataset", data, "--name", "r", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the dataset has 1 error" in done.stderr and f"{data}:3: not valid JSON" in done.stderr
    assert "--drop-errors" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()


def test_export_drop_errors_registers_a_cleaned_copy_in_the_run_directory(tmp_path):
    data = tmp_path / "broken.jsonl"
    shutil.copy(BROKEN, data)
    before = data.read_bytes()
    done = export(*PROFILE, "--dataset", data, "--name", "r", "--drop-errors", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "runs" / "r"
    copy = run_dir / "data" / "broken.jsonl"
    assert json.loads((run_dir / "dataset_info.json").read_text())["broken"]["file_name"] == "data/broken.jsonl"  # inside the bundle: relative, it moves with it
    assert f"{copy}: the copy without the 1 row with errors" in done.stdout
    assert data.read_bytes() == before  # the user's file is never changed
    assert len(copy.read_text().splitlines()) == len(before.splitlines()) - 1
    report = validate_paths([copy])
    assert not report.has_errors and dataset_refusal(report, drop_errors=False) is None


def test_a_refused_export_leaves_no_cleaned_copy_behind(tmp_path):
    """The wizard's drop used to write runs/<id>/data/ before the "already exists" check."""
    data = tmp_path / "broken.jsonl"
    shutil.copy(BROKEN, data)
    assert export(*PROFILE, "--dataset", CLEAN, "--name", "r", cwd=tmp_path).returncode == 0
    spec = load_spec(tmp_path / "runs" / "r" / "plan.json")
    report = validate_paths([data])
    spec["datasets"]["entries"] = {"broken": {"file_name": str(data.resolve()), "formatting": "alpaca"}}
    cleaned_spec, copies = with_cleaned_copies(spec, report)
    assert [c.target for c in copies] == [tmp_path / "runs" / "r" / "data" / "broken.jsonl"]
    with pytest.raises(BundleError, match="already exists"):
        write_bundle(cleaned_spec, cleaned=copies)
    assert not (tmp_path / "runs" / "r" / "data").exists()


def test_the_gate_refuses_missing_files_and_non_jsonl_drops():
    missing = validate_paths([Path("/nonexistent/train.jsonl")])
    assert "fix the path first" in dataset_refusal(missing, drop_errors=True)
    assert dataset_refusal(None, drop_errors=False) == "validate the dataset first"
    assert dataset_refusal(validate_paths([CLEAN]), drop_errors=False) is None


def test_export_from_plan_json_honours_name_and_out(tmp_path):
    assert export(*PROFILE, "--dataset", CLEAN, "--name", "first", cwd=tmp_path).returncode == 0
    plan_json = tmp_path / "runs" / "first" / "plan.json"
    done = export("--from", plan_json, "--name", "second", "--out", tmp_path / "elsewhere", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "elsewhere" / "runs" / "second"
    assert json.loads(done.stdout)["run_dir"] == str(run_dir)
    spec = load_spec(run_dir / "plan.json")
    assert spec["run_id"] == "second" and spec["paths"]["output_dir"] == str(tmp_path / "elsewhere" / "saves" / "second")
    assert 'output_dir: "../../saves/second"' in (run_dir / "train.yaml").read_text()
    assert str(tmp_path) not in (run_dir / "train.yaml").read_text() + (run_dir / "run_sft.sh").read_text()
    bad = export("--from", plan_json, "--name", "../x", cwd=tmp_path)
    assert bad.returncode == 2 and "use letters, digits" in bad.stderr


def test_export_for_this_machine_uses_the_environment_llamafactory_is_in(tmp_path):
    env, said = default_env("detected")
    done = export("--model", "qwen2.5-0.5b", "--dataset", CLEAN, "--name", "here", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert said in done.stdout
    script = (tmp_path / "runs" / "here" / "run_sft.sh").read_text()
    if env:  # this checkout's venv has LLaMA-Factory: run_sft.sh activates it
        assert env == f"venv:{BIN.parent}" and f"VENV={BIN.parent}" in script
    profile_env, profile_said = default_env("rtx3060-12g")
    assert profile_env is None and "rtx3060-12g machine" in profile_said


def test_export_from_plan_json_passes_the_same_gate(tmp_path):
    data = tmp_path / "mine.jsonl"
    shutil.copy(CLEAN / "train.jsonl", data)
    assert export(*PROFILE, "--dataset", data, "--name", "first", cwd=tmp_path).returncode == 0
    with open(data, "a", encoding="utf-8") as f:
        f.write('{"instruction": "broken row", "output": \n')  # the file changed since plan.json was written
    plan_json = tmp_path / "runs" / "first" / "plan.json"
    refused = export("--from", plan_json, "--name", "second", cwd=tmp_path)
    assert refused.returncode == 1 and "the dataset has 1 error" in refused.stderr
    assert not (tmp_path / "runs" / "second").exists()
    done = export("--from", plan_json, "--name", "second", "--drop-errors", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    copy = tmp_path / "runs" / "second" / "data" / "mine.jsonl"
    assert json.loads((tmp_path / "runs" / "second" / "dataset_info.json").read_text())["mine"]["file_name"] == "data/mine.jsonl" and copy.is_file()


def test_plan_warns_about_a_dataset_with_errors(tmp_path):
    done = subprocess.run([str(BIN / "sft-tui"), "plan", *PROFILE, "--dataset", BROKEN], capture_output=True,
                          text=True, timeout=120)
    assert "warning: the dataset has 1 error" in done.stdout and "--drop-errors" in done.stdout


def test_export_force_keeps_an_edited_file_and_names_the_new_version(tmp_path):
    from tui.bundle.spec import NEW_SUFFIX

    assert export(*PROFILE, "--dataset", CLEAN, "--name", "edited", cwd=tmp_path).returncode == 0
    train = tmp_path / "runs" / "edited" / "train.yaml"
    train.write_text(train.read_text() + "# my edit\n")
    done = export(*PROFILE, "--dataset", CLEAN, "--name", "edited", "--set", "lora_rank=16", "--force", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"kept your edited train.yaml; the new version is train.yaml{NEW_SUFFIX}" in done.stdout
    assert (train.parent / f"train.yaml{NEW_SUFFIX}").is_file() and "# my edit" in train.read_text()


def test_export_refuses_gpu_ids_that_are_not_the_plan_s_gpus_and_writes_nothing(tmp_path):
    done = export(*PROFILE, "--dataset", CLEAN, "--name", "r", "--gpu-ids", "0,1", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--gpu-ids names 2 GPUs but the plan uses 1 (--gpus)" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()
