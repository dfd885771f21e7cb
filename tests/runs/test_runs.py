"""Run and watch with the real LLaMA-Factory: sft-tui run / monitor / stop / status / retry on
bundles of the tiny model, trained on the CPU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.llamafactory import BIN, SAMPLE_ALPACA_ROWS, offline_env, write_jsonl
from tui.runs.lifecycle import run_status
from tui.runs.processes import run_processes

pytestmark = pytest.mark.llamafactory
SFT_TUI = str(BIN / "sft-tui")


def sft_tui(*args, timeout=300, check=False) -> subprocess.CompletedProcess:
    done = subprocess.run([SFT_TUI, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=offline_env())
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def export(tmp_path: Path, model_dir: Path, name: str, epochs: int, data: Path | None = None, *extra) -> Path:
    data = data or write_jsonl(tmp_path / f"{name}.jsonl", SAMPLE_ALPACA_ROWS)
    done = sft_tui("export", "--hardware", "cpu", "--model", model_dir, "--dataset", data, "--out", tmp_path / "out",
                   "--name", name, "--env", f"venv:{BIN.parent}", "--set", f"num_train_epochs={epochs}",
                   "--set", "logging_steps=1", *extra, "--json", check=True)
    return Path(json.loads(done.stdout)["run_dir"])


def wait_for(predicate, timeout=120, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def trained_steps(run_dir: Path) -> int:
    log = Path(run_status(run_dir).output_dir) / "trainer_log.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    return max((r["current_steps"] for r in rows), default=0)


def test_a_run_is_followed_to_the_end(tiny_model_dir, tmp_path):
    run_dir = export(tmp_path, tiny_model_dir, "follow", epochs=2)
    planned_steps = json.loads((run_dir / "plan.json").read_text())["plan"]["steps"]
    started = sft_tui("run", run_dir, check=True)
    assert "sft-tui monitor" in started.stdout
    assert run_status(run_dir).status == "running"  # `run` returned while training goes on
    watched = sft_tui("monitor", run_dir, "--json")
    assert watched.returncode == 0, watched.stdout[-3000:] + watched.stderr
    events = [json.loads(line) for line in watched.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "finished" and "started" in kinds
    steps = [e["current_steps"] for e in events if e["event"] in ("progress", "metrics") and not e.get("final")]
    assert max(steps) == planned_steps and events[-1]["train_loss"] > 0
    losses = [e["loss"] for e in events if e["event"] == "metrics" and "loss" in e and not e.get("final")]
    assert len(losses) == planned_steps
    status = run_status(run_dir)
    assert (status.status, status.exit_code) == ("finished", 0)
    assert (Path(status.output_dir) / "adapter_model.safetensors").is_file()
    table = sft_tui("status", run_dir.parent, check=True).stdout
    assert f"follow  finished  {planned_steps}/{planned_steps}" in table


def test_a_wrong_dataset_path_fails_with_one_sentence(tiny_model_dir, tmp_path):
    data = write_jsonl(tmp_path / "moved.jsonl", SAMPLE_ALPACA_ROWS)
    run_dir = export(tmp_path, tiny_model_dir, "moved", 1, data)
    data.unlink()
    sft_tui("run", run_dir, check=True)
    watched = sft_tui("monitor", run_dir, "--plain")
    assert watched.returncode == 1, watched.stdout
    failed = [line for line in watched.stdout.splitlines() if line.startswith("failed:")]
    assert failed == [f"failed: The dataset file {data} does not exist (moved or deleted since export?): put it back, "
                      "or fix file_name in the run's dataset_info.json."]
    assert "Traceback" not in watched.stdout
    assert run_status(run_dir).status == "failed"


def test_stop_in_the_middle_leaves_no_process(tiny_model_dir, tmp_path):
    run_dir = export(tmp_path, tiny_model_dir, "stopme", epochs=1000)
    sft_tui("run", run_dir, check=True)
    pid = int((run_dir / "run.pid").read_text())
    wait_for(lambda: trained_steps(run_dir) >= 3, what="three steps")
    assert run_processes(pid, pid)  # the script and llamafactory-cli
    stopped = sft_tui("stop", run_dir, "--grace", "30", check=True)
    assert "stopped" in stopped.stdout
    assert run_status(run_dir).status == "stopped"
    assert alive_in_group(pid) == [], "processes of the run's group are still alive"
    assert 3 <= trained_steps(run_dir) < 4000
    plain = sft_tui("monitor", run_dir, "--plain")  # a post-mortem of a stopped run
    assert plain.returncode == 130 and "stopped: stopped at step" in plain.stdout


def alive_in_group(pgid: int) -> list[str]:
    """Processes of the group that still run (a zombie has ended; it waits for its parent to reap it)."""
    alive = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            alive.append(f"{entry} {state} {Path(f'/proc/{entry}/cmdline').read_bytes()[:80]!r}")
    return alive


def test_killing_the_monitor_never_stops_training(tiny_model_dir, tmp_path):
    run_dir = export(tmp_path, tiny_model_dir, "survive", epochs=60)
    sft_tui("run", run_dir, check=True)
    monitor = subprocess.Popen([SFT_TUI, "monitor", str(run_dir), "--plain"], stdout=subprocess.PIPE, text=True,
                               env=offline_env())
    first = monitor.stdout.readline()
    assert first.startswith(("started:", "step ")), first
    monitor.send_signal(signal.SIGKILL)
    monitor.wait(10)
    assert run_status(run_dir).status == "running"
    again = sft_tui("monitor", run_dir, "--plain")  # following again picks up and sees the end
    assert again.returncode == 0, again.stdout[-2000:]
    assert again.stdout.splitlines()[-1].startswith("finished: 240/240 steps")
    assert run_status(run_dir).status == "finished"


def test_a_run_started_by_hand_is_monitored_from_its_pid_file(tiny_model_dir, tmp_path):
    run_dir = export(tmp_path, tiny_model_dir, "byhand", epochs=2)
    subprocess.run(["bash", "-c", "nohup bash run_sft.sh --foreground > train.log 2>&1 &"], cwd=run_dir,
                   env=offline_env(), check=True, timeout=30)
    wait_for(lambda: (run_dir / "run.pid").exists(), what="run.pid")
    watched = sft_tui("monitor", run_dir, "--plain")
    assert watched.returncode == 0, watched.stdout[-2000:]
    assert "finished:" in watched.stdout.splitlines()[-1]


def ran_out_of_memory(run_dir: Path) -> None:
    """The run's files after a CUDA out-of-memory crash (a recorded log): what `retry --fix oom` needs."""
    (run_dir / "train.log").write_bytes((Path(__file__).parents[1] / "data" / "logs" / "cuda_oom.log").read_bytes())
    (run_dir / "exit_code").write_text("1\n")


def test_retry_after_oom_halves_the_micro_batch_and_records_the_run(tiny_model_dir, tmp_path):
    run_dir = export(tmp_path, tiny_model_dir, "oomed", 1, None, "--set", "per_device_train_batch_size=4",
                     "--set", "gradient_accumulation_steps=2")
    ran_out_of_memory(run_dir)
    done = sft_tui("retry", run_dir, "--fix", "oom", "--json", check=True)
    retry = json.loads(done.stdout)
    new_dir = Path(retry["run_dir"])
    assert new_dir == run_dir.parent / "oomed-retry1"
    spec = json.loads((new_dir / "plan.json").read_text())
    settings, reasons = spec["plan"]["settings"], spec["plan"]["reasons"]
    assert spec["follows"] == {"run_id": "oomed", "run_dir": str(run_dir), "reason": "oom"}
    assert settings["per_device_train_batch_size"] == 2 and reasons["per_device_train_batch_size"]["kind"] == "retry"
    # accumulation doubles, even though it was your --set; your other --set values survive
    assert settings["gradient_accumulation_steps"] == 4 and settings["num_train_epochs"] == 1
    assert "ran out of memory" in (new_dir / "train.yaml").read_text()
    assert sft_tui("check", new_dir, timeout=300).returncode == 0
    ran_out_of_memory(new_dir)
    again = json.loads(sft_tui("retry", new_dir, "--fix", "oom", "--json", check=True).stdout)
    assert Path(again["run_dir"]).name == "oomed-retry2" and again["changes"]["per_device_train_batch_size"]["to"] == 1
