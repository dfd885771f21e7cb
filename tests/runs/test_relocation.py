"""Bundles move: a bundle moved to another folder trains there and writes nothing where it was; a
copy under another name is refused before it touches the original's files; `sft-tui pack` carries
a bundle with its data to a machine that has neither, and a damaged archive is refused. With the
real LLaMA-Factory training the tiny model on the CPU."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.runs.test_early_exits import fake_venv
from tests.runs.test_runs import SFT_TUI, export, sft_tui, wait_for
from tests.support.llamafactory import BIN, offline_env
from tui.runs.lifecycle import run_status

pytestmark = pytest.mark.llamafactory


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def train_to_the_end(run_dir: Path, *args, env: dict | None = None) -> subprocess.CompletedProcess:
    started = subprocess.run([SFT_TUI, "run", str(run_dir), *args], capture_output=True, text=True, timeout=120,
                             env=env or offline_env())
    assert started.returncode == 0, started.stdout + started.stderr
    # However slow the machine, the run ends: wait for its exit_code, not for a time.
    wait_for(lambda: (run_dir / "exit_code").exists(), timeout=1200, what=f"{run_dir.name} to finish")
    status = run_status(run_dir)
    assert status.status == "finished", (run_dir / "train.log").read_text()[-3000:]
    return started


def test_a_moved_bundle_trains_where_it_is_and_a_copy_never_touches_the_original(tiny_model_dir, tmp_path):
    run_dir = export(tmp_path, tiny_model_dir, "orig", epochs=1)
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "out", moved)
    run_dir = moved / "runs" / "orig"
    train_to_the_end(run_dir)
    assert not (tmp_path / "out").exists()  # nothing written where the bundle was exported
    assert run_status(run_dir).output_dir == str(moved / "saves" / "orig")
    assert (moved / "saves" / "orig" / "adapter_model.safetensors").is_file()

    # The data-loss case: a finished run copied under another name and started.
    before = tree_hashes(moved)
    shutil.copytree(run_dir, moved / "runs" / "copy")
    refused = sft_tui("run", moved / "runs" / "copy")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip() == (
        f"sft-tui: copy is a copy of run orig, whose files write to saves/orig: give it its own name: sft-tui export "
        f"--from {moved / 'runs' / 'copy' / 'plan.json'} --name copy --force (files you edited are kept)")
    by_hand = subprocess.run(["bash", str(moved / "runs" / "copy" / "run_sft.sh")], capture_output=True, text=True,
                             env=offline_env(), timeout=60)
    assert by_hand.returncode == 2 and "is a copy of run orig" in by_hand.stderr
    after = tree_hashes(moved)
    assert {k: v for k, v in after.items() if not k.startswith("runs/copy/")} == before  # the original untouched
    assert not (moved / "runs" / "copy" / "run.pid").exists() or (
        (moved / "runs" / "copy" / "run.pid").read_bytes() == (run_dir / "run.pid").read_bytes())  # the copied one

    # The fix the sentence gives makes the copy a run of its own, which trains into saves/copy.
    sft_tui("export", "--from", moved / "runs" / "copy" / "plan.json", "--name", "copy", "--force", check=True)
    assert sft_tui("run", moved / "runs" / "copy").returncode == 0
    wait_for(lambda: (moved / "runs" / "copy" / "exit_code").exists(), timeout=1200, what="the copy to finish")
    assert (moved / "saves" / "copy" / "adapter_model.safetensors").is_file()
    assert {k: v for k, v in tree_hashes(moved).items() if k.startswith("saves/orig/")} == {
        k: v for k, v in before.items() if k.startswith("saves/orig/")}


def test_pack_carries_a_bundle_and_its_data_to_a_machine_without_either(tiny_model_dir, tmp_path):
    run_dir = export(tmp_path, tiny_model_dir, "packed", epochs=1)
    data = Path(json.loads((run_dir / "dataset_info.json").read_text())["packed"]["file_name"])
    packed = sft_tui("pack", run_dir, "--json", check=True)
    archive = Path(json.loads(packed.stdout)["archive"])
    assert archive == tmp_path / "out" / "packed.tar.gz"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "runs/packed/MANIFEST.sha256" in names and "runs/packed/data/packed.jsonl" in names
    assert not any(name.endswith(("train.log", "run.pid", "state.json")) for name in names)
    text = sft_tui("pack", run_dir)
    assert text.returncode == 2 and "already exists: --output another name, or --force" in text.stderr

    # The other machine: the archive, nothing else (the user's data file is not there).
    there = tmp_path / "rented"
    there.mkdir()
    data.unlink()
    with tarfile.open(archive) as tar:
        # the "data" filter where this Python has it (3.11.4+): what a careful user's tar would do
        tar.extractall(there, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    bundle = there / "runs" / "packed"
    assert json.loads((bundle / "dataset_info.json").read_text())["packed"]["file_name"] == "data/packed.jsonl"
    assert subprocess.run(["sha256sum", "--check", "--quiet", "MANIFEST.sha256"], cwd=bundle).returncode == 0

    # A damaged copy is refused, naming the file, before anything starts.
    good = (bundle / "data" / "packed.jsonl").read_bytes()
    (bundle / "data" / "packed.jsonl").write_bytes(good[: len(good) // 2])
    refused = sft_tui("run", bundle)
    assert refused.returncode == 2
    assert refused.stderr.strip() == ("sft-tui: 1 file(s) differ from the pack's MANIFEST.sha256: data/packed.jsonl "
                                      "(changed): copy the archive again, or delete MANIFEST.sha256 to run it as it is")
    assert not (bundle / "run.pid").exists()
    (bundle / "data" / "packed.jsonl").write_bytes(good)
    train_to_the_end(bundle)
    assert (there / "saves" / "packed" / "adapter_model.safetensors").is_file()
    assert not (tmp_path / "out" / "saves" / "packed" / "adapter_model.safetensors").exists()


def test_run_names_every_problem_at_once(tiny_model_dir, tmp_path):
    run_dir = export(tmp_path, tiny_model_dir, "elsewhere", 1, None, "--hardware", "rtx4080-16g",
                     "--env", f"venv:{fake_venv(tmp_path / 'empty-venv')}")
    shutil.copytree(run_dir, run_dir.parent / "elsewhere-copy")
    done = subprocess.run([SFT_TUI, "run", str(run_dir.parent / "elsewhere-copy")], capture_output=True, text=True,
                          env=offline_env() | {"PATH": "/usr/bin:/bin"}, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 3, done.stderr
    assert lines[0].startswith("sft-tui: elsewhere-copy is a copy of run elsewhere")
    assert lines[1].startswith(f"sft-tui: llamafactory-cli is not in the run's training environment {tmp_path / 'empty-venv'}")
    assert lines[2].startswith("sft-tui: planned for 1 x NVIDIA GeForce RTX 4080")


def test_a_bundle_naming_no_environment_uses_the_llamafactory_beside_sft_tui(tiny_model_dir, tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) + "\n" for i in range(8)))
    done = sft_tui("export", "--hardware", "cpu", "--model", tiny_model_dir, "--dataset", data, "--out", tmp_path / "out",
                   "--name", "bare", "--set", "num_train_epochs=1", "--json", check=True)
    run_dir = Path(json.loads(done.stdout)["run_dir"])
    assert json.loads((run_dir / "plan.json").read_text())["launch"]["env"] is None
    assert not shutil.which("llamafactory-cli", path="/usr/bin:/bin")
    started = train_to_the_end(run_dir, env=offline_env() | {"PATH": "/usr/bin:/bin"})
    assert (f"llamafactory-cli is not on PATH: using the LLaMA-Factory installed beside sft-tui "
            f"({BIN / 'llamafactory-cli'})") in started.stdout


def test_export_for_another_machine_says_how_to_take_it_there(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"instruction": "q", "output": "a"}\n')
    done = sft_tui("export", "--hardware", "h100-80g", "--model", "qwen2.5-0.5b", "--dataset", data,
                   "--out", tmp_path, "--name", "rented", check=True)
    assert f"Take it there:  sft-tui pack {tmp_path / 'runs' / 'rented'}   (the bundle and its data, one archive)" in done.stdout
    packed = sft_tui("pack", tmp_path / "runs" / "rented", check=True)
    size = round((tmp_path / "rented.tar.gz").stat().st_size / 1e3)  # a small archive is said in kB, not "0.0 MB"
    assert packed.stdout.splitlines()[0] == f"Wrote {tmp_path / 'rented.tar.gz'} (10 files, {size} kB), with MANIFEST.sha256."
    assert "note: " not in packed.stdout  # a hub model, no env, no images: nothing left behind


def test_a_bundle_from_before_relative_paths_is_refused_where_its_script_does_not_point(tmp_path):
    from tui.bundle.location import ownership_problems

    run_dir = tmp_path / "runs" / "old"
    run_dir.mkdir(parents=True)
    (run_dir / "plan.json").write_text(json.dumps({"run_id": "old"}))
    (run_dir / "run_sft.sh").write_text(f"#!/usr/bin/env bash\nRUN_DIR={run_dir}\n")
    assert ownership_problems(run_dir) == []  # where it was written: it runs
    moved = tmp_path / "elsewhere" / "runs" / "old"
    shutil.copytree(run_dir, moved)
    assert ownership_problems(moved) == [
        f"run_sft.sh was written for {run_dir}, not this directory, and would run and write there: give it its own "
        f"name: sft-tui export --from {moved / 'plan.json'} --name old --force (files you edited are kept)"]
