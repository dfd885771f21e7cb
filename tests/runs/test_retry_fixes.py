"""`sft-tui retry --fix host-oom|nan|diverged` and its refusals, on recorded logs laid into exported
bundles (tests/data/logs: real NaN runs of the tiny model, the synthetic spike; a CPU cannot provoke a
spike or an out-of-memory kill on demand) and on real tiny-model runs: one killed with SIGKILL, one
with a template LLaMA-Factory does not have. Every refusal is one sentence and writes nothing."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.runs.test_retry import export_for
from tests.runs.test_runs import export, sft_tui, wait_for
from tests.support.llamafactory import BIN, offline_env

LOGS = Path(__file__).parents[1] / "data" / "logs"
HEALTH = LOGS / "health"
TORCHRUN_KILLED = """\
E1202 00:12:44.000000 4242 torch/distributed/elastic/multiprocessing/api.py:874] failed (exitcode: -9) local_rank: 1 (pid: 4244) of binary: /opt/venv/bin/python
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
/opt/venv/lib/python3.11/site-packages/llamafactory/launcher.py FAILED
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-12-02_00:12:44
  host      : gpu-box
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 4244)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 4244
============================================================
"""


def lay(run_dir: Path, source: Path, exit_code: int, tmp_path: Path) -> Path:
    """A recorded train.log (and trainer_log.jsonl, into the run's output directory) with its exit code."""
    (run_dir / "train.log").write_text((source / "train.log" if source.is_dir() else source).read_text()
                                       .replace("@ROOT@", str(tmp_path)))
    if source.is_dir() and (source / "trainer_log.jsonl").is_file():
        saves = tmp_path / "out" / "saves" / run_dir.name
        saves.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / "trainer_log.jsonl", saves / "trainer_log.jsonl")
    (run_dir / "run.pid").write_text("4242\n")
    (run_dir / "exit_code").write_text(f"{exit_code}\n")
    return run_dir


def checkpoint(saves: Path, step: int, lr: float) -> Path:
    """checkpoint-N with what a resume reads: trainer_state.json, and a LambdaLR's scheduler.pt and an
    AdamW's optimizer.pt at learning rate `lr` (torch, in a subprocess of the test venv)."""
    path = saves / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step, "max_steps": 60}))
    (path / "adapter_model.safetensors").write_bytes(b"weights")
    subprocess.run([str(BIN / "python"), "-c", f"""
import torch
w = torch.nn.Parameter(torch.zeros(2))
opt = torch.optim.AdamW([w], lr={lr})
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
opt.step(); sched.step()
torch.save(opt.state_dict(), "{path}/optimizer.pt"); torch.save(sched.state_dict(), "{path}/scheduler.pt")
"""], check=True, timeout=120, env=offline_env())
    return path


def learning_rates(path: Path) -> tuple[list, list]:
    done = subprocess.run([str(BIN / "python"), "-c", f"""
import json, torch
s = torch.load("{path}/scheduler.pt", weights_only=True); o = torch.load("{path}/optimizer.pt", weights_only=True)
print(json.dumps([s["base_lrs"] + s["_last_lr"], [[g["lr"], g["initial_lr"]] for g in o["param_groups"]]]))
"""], check=True, capture_output=True, text=True, timeout=120, env=offline_env())
    return tuple(json.loads(done.stdout))


def refused(run_dir: Path, fix: str) -> str:
    done = sft_tui("retry", run_dir, "--fix", fix)
    assert done.returncode == 2 and done.stdout == "", done.stdout + done.stderr
    assert done.stderr.startswith("sft-tui: ") and done.stderr.count("\n") == 1, done.stderr
    assert not list(run_dir.parent.glob("*-retry*"))
    return done.stderr.removeprefix("sft-tui: ").strip()


def test_a_diverged_run_resumes_before_the_spike_from_its_own_copy_at_half_the_rate(tmp_path):
    run_dir = lay(export_for(tmp_path, "spiky", "per_device_train_batch_size=2"), HEALTH / "spike", 0, tmp_path)
    lr = json.loads((run_dir / "plan.json").read_text())["plan"]["settings"]["learning_rate"]
    saves = tmp_path / "out" / "saves" / "spiky"
    for step in (30, 36, 38, 40):
        checkpoint(saves, step, lr)
    # logged every 2 steps: the spike at step 40 was computed from checkpoint-39's weights, step 38 was the last good
    # loss, computed from step 37's: checkpoint-38 may already hold the weights that went bad
    assert refused(run_dir, "nan") == (
        "spiky did not go NaN (it is finished, and its logs show no NaN or inf loss or gradient norm): `--fix nan` is for "
        f"a run that did; the loss spiked at step 40, which `--fix diverged` is for: sft-tui retry {run_dir} --fix diverged")
    done = sft_tui("retry", run_dir, "--fix", "diverged", check=True)
    assert f"  learning_rate: {lr} -> {lr / 2}\n" in done.stdout
    assert "max_grad_norm" not in done.stdout  # clipping was on already
    assert (f"  resumes from checkpoint-36 of run spiky at step 36 of 60 ({saves.resolve() / 'checkpoint-36'}), the last "
            "saved before the loss spiked at step 40; checkpoint-38 is passed over:") in done.stdout
    copy = tmp_path / "out" / "saves" / "spiky-retry1" / "checkpoint-36"
    config = yaml.safe_load((run_dir.parent / "spiky-retry1" / "train.yaml").read_text())
    assert config["resume_from_checkpoint"] == "../../saves/spiky-retry1/checkpoint-36"
    assert (copy / "trainer_state.json").read_text() == (saves / "checkpoint-36" / "trainer_state.json").read_text()
    assert learning_rates(copy) == ([lr / 2, lr / 2], [[lr / 2, lr / 2]])
    assert learning_rates(saves / "checkpoint-36") == ([lr, lr], [[lr, lr]])  # the run's own, as it was

    # The retry diverged too: its retry halves again, from the retry's own copy, scaled from the rate it trained at.
    again = lay(run_dir.parent / "spiky-retry1", HEALTH / "spike", 0, tmp_path)
    done = sft_tui("retry", again, "--fix", "diverged", check=True)
    assert f"  learning_rate: {lr / 2} -> {lr / 4}\n" in done.stdout
    assert f"  resumes from checkpoint-36 of run spiky-retry1 at step 36 of 60 ({copy.resolve()})" in done.stdout
    assert learning_rates(tmp_path / "out" / "saves" / "spiky-retry2" / "checkpoint-36") == ([lr / 4, lr / 4], [[lr / 4, lr / 4]])
    assert learning_rates(copy) == ([lr / 2, lr / 2], [[lr / 2, lr / 2]])


def test_a_run_stopped_after_its_loss_spiked_is_retried_and_one_stopped_without_is_not(tmp_path):
    run_dir = lay(export_for(tmp_path, "stopped", "per_device_train_batch_size=2"), HEALTH / "spike", 130, tmp_path)
    (run_dir / "state.json").write_text(json.dumps({"pid": 4242, "stop_requested": "2026-12-02T00:00:00+00:00",
                                                    "stop_pid": 4242}))
    assert refused(run_dir, "oom").endswith(", which `--fix diverged` is for: "
                                            f"sft-tui retry {run_dir} --fix diverged")
    (tmp_path / "calm").mkdir()
    calm = lay(export_for(tmp_path / "calm", "calm", "per_device_train_batch_size=2"), HEALTH / "healthy", 130,
               tmp_path / "calm")
    (calm / "state.json").write_text((run_dir / "state.json").read_text())
    assert refused(calm, "diverged").endswith(
        f"`--fix diverged` is for a run that did; it was stopped (sft-tui stop) (no retry fixes that: continue it with "
        f"`sft-tui run {calm} --resume`)")
    assert "Start it:  sft-tui run" in sft_tui("retry", run_dir, "--fix", "diverged", check=True).stdout


def test_a_long_log_is_read_from_its_tail_and_still_shows_an_early_nan_gradient_norm(tmp_path):
    """Over 4 MB, train.log is read as the monitor opens it (its last lines; the numbers are in
    trainer_log.jsonl), and the part before is scanned for the console's grad_norm: under the NaN filter it
    alone shows the NaN (trainer_log.jsonl logs the loss as 0 from step 3)."""
    run_dir = lay(export_for(tmp_path, "long", "per_device_train_batch_size=2"), HEALTH / "nan_default", 0, tmp_path)
    with (run_dir / "train.log").open("a") as log:
        log.write("[WARNING|2026-12-02 00:00:00] some.module:12 >> a warning that says nothing in particular\n" * 60_000)
    assert (run_dir / "train.log").stat().st_size > 4 * 1024 * 1024
    done = sft_tui("retry", run_dir, "--fix", "nan", check=True)
    assert "  starts over: run long saved no checkpoint before the gradient norm went NaN at step 3\n" in done.stdout


def test_a_deepspeed_checkpoint_is_not_resumed_at_a_rate_it_would_undo(tmp_path):
    run_dir = lay(export_for(tmp_path, "ds", "per_device_train_batch_size=2"), HEALTH / "spike", 0, tmp_path)
    lr = json.loads((run_dir / "plan.json").read_text())["plan"]["settings"]["learning_rate"]
    (checkpoint(tmp_path / "out" / "saves" / "ds", 36, lr) / "global_step36").mkdir()
    assert refused(run_dir, "diverged") == (
        "checkpoint-36 is a DeepSpeed checkpoint, whose learning-rate schedule is in global_step36/ (DeepSpeed restores "
        "it, so a halved learning_rate would be undone): start over at the lower rate instead (`sft-tui export --from "
        f"{run_dir}/plan.json --set learning_rate={lr / 2:g} --name ds-retry1`)")


def test_a_nan_in_fp16_on_a_card_with_bf16_trains_in_bf16(tmp_path):
    run_dir = export_for(tmp_path, "half", "fp16=true", "bf16=false", "max_grad_norm=0")
    lay(run_dir, HEALTH / "nan_default", 0, tmp_path)  # the NaN is only in the console's grad_norm
    done = sft_tui("retry", run_dir, "--fix", "nan", check=True)
    assert "  bf16: False -> True\n  fp16: True -> False\n" in done.stdout
    assert "  max_grad_norm: 0 -> 1.0\n" in done.stdout
    assert "why: run half trained in fp16 on a card with bf16, and fp16 overflows: bf16 has fp32's range (nan_fix)" in done.stdout
    assert "  starts over: run half saved no checkpoint before the gradient norm went NaN at step 3\n" in done.stdout
    config = yaml.safe_load((run_dir.parent / "half-retry1" / "train.yaml").read_text())
    assert (config["bf16"], config["fp16"], config["max_grad_norm"]) == (True, False, 1.0)
    assert "resume_from_checkpoint" not in config


@pytest.mark.parametrize("case", ["data", "traceback", "unknown", "zero-loss", "oom", "host-oom-minimum"])
def test_a_failure_without_that_fix_is_refused_with_its_diagnosis(tmp_path, case):
    run_dir = export_for(tmp_path, "bad", "per_device_train_batch_size=2")
    plan = run_dir / "plan.json"
    if case == "data":
        lay(run_dir, LOGS / "undefined_dataset.log", 1, tmp_path)
        assert refused(run_dir, "nan") == (
            "bad did not go NaN (it is failed, and its logs show no NaN or inf loss or gradient norm): `--fix nan` is "
            "for a run that did; it failed: LLaMA-Factory has no dataset named tiny_alpacca in dataset_info.json under "
            "dataset_dir: check `dataset:` in train.yaml against the names in the run's dataset_info.json, or export the "
            "bundle again (no retry fixes that)")
    elif case == "traceback":
        (tmp_path / "t.log").write_text("Traceback (most recent call last):\n  File \"/home/me/my_callback.py\", line 3\n"
                                        "RuntimeError: my callback broke\n")
        lay(run_dir, tmp_path / "t.log", 1, tmp_path)
        assert refused(run_dir, "oom").endswith(
            "`--fix oom` is for a run that did; it failed: RuntimeError: my callback broke (exit 1) (no retry fixes that: "
            "read the traceback in train.log: no change of settings is known to fix it)")
    elif case == "unknown":
        (tmp_path / "u.log").write_text("something odd\n")
        lay(run_dir, tmp_path / "u.log", 3, tmp_path)
        assert refused(run_dir, "host-oom") == (
            "bad was not killed for want of host RAM (it is failed, exit code 3, and a run the kernel's out-of-memory "
            "killer ends exits 137, with no GPU out-of-memory error in its log): `--fix host-oom` is for a run that did; "
            "it failed: exited with status 3; last line: something odd (no retry fixes that: read train.log to see "
            "why it ended)")
    elif case == "zero-loss":
        lay(run_dir, HEALTH / "zero_loss", 0, tmp_path)
        assert refused(run_dir, "diverged").endswith(
            "`--fix diverged` is for a run that did; the loss is exactly 0 at step 2, so every label is likely masked and "
            "nothing is learned: check that the template matches the model, that cutoff_len is longer than the prompts, "
            "or set train_on_prompt (no retry fixes that)")
    elif case == "oom":
        lay(run_dir, LOGS / "cuda_oom.log", 1, tmp_path)
        assert refused(run_dir, "nan").endswith(
            "`--fix nan` is for a run that did; it ran out of GPU memory (tried to allocate 2.32 GiB), which `--fix oom` "
            f"is for: sft-tui retry {run_dir} --fix oom")
    else:  # killed by the kernel, with no worker count left to halve
        lay(run_dir, HEALTH / "healthy", 137, tmp_path)
        watched = sft_tui("monitor", run_dir, "--plain")
        assert watched.returncode == 137
        assert f"  fix: sft-tui retry {run_dir} --fix host-oom   (killed with SIGKILL, likely" in watched.stdout
        assert refused(run_dir, "host-oom").startswith(
            "bad was killed for want of host RAM, and it already tokenizes and loads data in the main process "
            "(preprocessing_num_workers and dataloader_num_workers at their minimum), so no worker count is left to "
            "halve; its host RAM estimated at ")
    assert plan.is_file()


def test_a_worker_killed_under_torchrun_is_a_host_oom_and_its_workers_are_halved(tmp_path):
    run_dir = export_for(tmp_path, "many", "preprocessing_num_workers=16", "dataloader_num_workers=4")
    (tmp_path / "k.log").write_text((HEALTH / "healthy" / "train.log").read_text() + TORCHRUN_KILLED)
    lay(run_dir, tmp_path / "k.log", 1, tmp_path)
    assert refused(run_dir, "oom").endswith(
        "`--fix oom` is for a run that did; it was killed with SIGKILL (exit 1) and its log shows no GPU out-of-memory "
        "error: the kernel's out-of-memory killer, for want of host RAM, which `--fix host-oom` is for: "
        f"sft-tui retry {run_dir} --fix host-oom")
    done = sft_tui("retry", run_dir, "--fix", "host-oom", "--json", check=True)
    result = json.loads(done.stdout)
    assert result["changes"] == {"preprocessing_num_workers": {"from": 16, "to": 8},
                                 "dataloader_num_workers": {"from": 4, "to": 2}}
    assert result["notes"][0].startswith("run many's host RAM estimated at ")
    assert "processes " in result["notes"][0] and "preprocessing " in result["notes"][0]
    config = yaml.safe_load((Path(result["run_dir"]) / "train.yaml").read_text())
    assert (config["preprocessing_num_workers"], config["dataloader_num_workers"]) == (8, 2)
    # the effective batch is the run's: nothing else changed
    assert sorted(result["changes"]) == ["dataloader_num_workers", "preprocessing_num_workers"]
    reasons = json.loads((Path(result["run_dir"]) / "plan.json").read_text())["plan"]["reasons"]
    assert reasons["dataloader_num_workers"]["kind"] == "retry"


@pytest.mark.llamafactory
def test_a_real_run_killed_with_sigkill_is_retried_with_half_the_workers(tiny_model_dir, tmp_path):
    from tui.runs.lifecycle import run_status
    from tui.runs.processes import ProcessTable, command_line

    run_dir = export(tmp_path, tiny_model_dir, "killed", 400, None, "--set", "preprocessing_num_workers=2",
                     "--set", "dataloader_num_workers=1", "--set", "save_steps=2")
    sft_tui("run", run_dir, check=True)
    saves = tmp_path / "out" / "saves" / "killed"
    wait_for(lambda: (saves / "checkpoint-2" / "trainer_state.json").is_file(), timeout=300, what="checkpoint-2")
    table = ProcessTable.read()
    lf = [p for p in table.descendants(run_status(run_dir).pid) if "llamafactory" in (command_line(p) or "")]
    trainer = [p for p in lf if not any(p in table.descendants(q) for q in lf)]  # not a DataLoader worker under it
    assert len(trainer) == 1, lf
    subprocess.run(["kill", f"-{signal.SIGKILL.value}", str(trainer[0])], check=True)  # as the kernel's OOM killer does
    wait_for(lambda: (run_dir / "exit_code").is_file(), timeout=120, what="the exit code")
    assert (run_dir / "exit_code").read_text().strip() == "137"
    assert refused(run_dir, "nan").startswith("killed did not go NaN (it is failed, and its logs show no NaN")
    done = sft_tui("retry", run_dir, "--fix", "host-oom", check=True)
    assert "  preprocessing_num_workers: 2 -> 1\n  dataloader_num_workers: 1 -> 0\n" in done.stdout
    assert "  why: halved (at least 1) after the kernel killed run killed for want of host RAM" in done.stdout
    assert "  resumes from checkpoint-" in done.stdout and "  run killed's host RAM estimated at " in done.stdout
    assert "; the retry's, with fewer workers: " in done.stdout
    # LLaMA-Factory's own parser accepts the retry's train.yaml
    assert sft_tui("check", run_dir.parent / "killed-retry1").returncode == 0


@pytest.mark.llamafactory
def test_a_real_run_with_a_template_llamafactory_lacks_is_not_retried(tiny_model_dir, tmp_path):
    run_dir = export(tmp_path, tiny_model_dir, "tmpl", 1)
    config = yaml.safe_load((run_dir / "train.yaml").read_text())
    (run_dir / "train.yaml").write_text(yaml.safe_dump(config | {"template": "no_such_template"}))
    done = subprocess.run(["bash", str(run_dir / "run_sft.sh")], check=False, capture_output=True, text=True,
                          timeout=120, env=offline_env())
    assert done.returncode == 0, done.stderr
    wait_for(lambda: (run_dir / "exit_code").is_file(), timeout=300, what="the exit code")
    for fix in ("oom", "host-oom", "nan", "diverged"):
        assert "it failed: ValueError: Template no_such_template does not exist. (exit 1) (no retry fixes that: read the " \
               "traceback in train.log" in refused(run_dir, fix)
