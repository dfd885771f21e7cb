"""The measured peak memory of a run, and the memory verdict learning from it (issue 26, the memory half).

A monitor following a run samples NVML per process (faked here at the pynvml boundary: the one thing a CPU
machine cannot have) for the run's own process tree, which is real: a live process whose command line is
run_sft.sh's, with a child, in a recorded run directory; the peak lands in the real run history when the
watcher sees the run end. Then the real `sft-tui export` and `plan` commands: two runs that peaked at 0.8 x
their estimate turn a later plan that does not fit into one that does, with the note; --no-history does
not; one run only notes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.runs.recorded import recorded_run
from tui.history.record import compared
from tui.history.store import History
from tui.runs.peaks import PEAKS_FILE
from tui.runs.processes import ProcessTable
from tui.runs.recording import run_key
from tui.runs.watch import RunWatcher

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "s2"
GIB = 1024**3


class Proc:
    def __init__(self, pid, used):
        self.pid, self.usedGpuMemory = pid, used


class FakeNvml:
    """pynvml's functions for two GPUs: on GPU 0 the run's child process at the next of `trainer_gib` each sample,
    and on both a foreign process (pid 1) holding 40 GiB that is not the run's."""

    def __init__(self, trainer_pid: int, trainer_gib: list[float]):
        self.trainer_pid, self.trainer_gib, self.samples = trainer_pid, list(trainer_gib), 0

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        pass

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        foreign = Proc(1, 40 * GIB)
        if handle == 1:
            return [foreign]
        gib = self.trainer_gib[min(self.samples, len(self.trainer_gib) - 1)]
        self.samples += 1
        return [Proc(self.trainer_pid, int(gib * GIB)), foreign]


def test_a_monitor_records_the_peak_gpu_memory_of_the_runs_processes(tmp_path):
    run_dir = recorded_run(tmp_path, "finished")
    (run_dir / "exit_code").unlink()
    launcher = subprocess.Popen(["bash", "-c", "sleep 300 & wait", str(run_dir / "run_sft.sh")], start_new_session=True)
    try:
        children: list[int] = []
        while not children:  # bash forks its sleep at once; no clock is involved in waiting for it
            children = ProcessTable.read().descendants(launcher.pid)
        (run_dir / "run.pid").write_text(f"{launcher.pid}\n")
        nvml = FakeNvml(children[0], [1.0, 3.0, 2.0])
        watcher = RunWatcher(run_dir, nvml=nvml)
        for _ in range(3):
            watcher.poll()
            assert watcher.status.status == "running"
        assert nvml.samples == 3
        assert json.loads((run_dir / PEAKS_FILE).read_text())["gpu_gib"] == {"0": 3.0}  # not GPU 1: no process of the run
        (run_dir / "exit_code").write_text("0\n")
        events = watcher.poll()
    finally:
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()
    assert events[-1].kind == "finished"
    with History() as history:
        row = history.get(*run_key(run_dir))
    assert row["gpu_peak_gib"] == {"0": 3.0} and row["gpu_peak_max_gib"] == 3.0  # the peak, not the last sample
    assert 0 < row["host_peak_gib"] < 1  # bash and sleep's resident memory, the tree's
    plan = json.loads((run_dir / "plan.json").read_text())["plan"]["estimate"]
    assert row["est_per_device_gib"] == round(plan["per_device_gib"], 3) or row["est_per_device_gib"] == plan["per_device_gib"]
    assert row["est_analytic_gib"] == row["est_per_device_gib"] and row["est_simulated_gib"] is None
    memory = compared(row)["memory"]  # what `sft-tui history --json` and its table show
    assert memory["measured_gib"] == 3.0 and memory["measured_gpu_peak_gib"] == {"0": 3.0}
    assert memory["error_pct"] == round((row["est_per_device_gib"] - 3.0) / 3.0 * 100, 1)


def sft_tui(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "sft-tui"), *map(str, args)], capture_output=True, text=True, timeout=300)


ON_3060 = ["--hardware", "rtx3060-12g", "--model", "qwen2.5-3b", "--dataset", DATA, "--no-simulate",
           "--set", "cutoff_len=2048", "--set", "disable_gradient_checkpointing=true"]
BIG = ["--set", "per_device_train_batch_size=24"]  # 13.5 GiB estimated, 11.3 usable on the 12 GiB card


def plan_json(*args) -> dict:
    done = sft_tui("plan", *ON_3060, *args, "--json")
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def runs_that_peaked_at(tmp_path, ratio: float, count: int) -> str:
    """`count` exported bundles (batch 8: they fit), each then measured at `ratio` times its estimate by NVML."""
    for i in range(count):
        done = sft_tui("export", *ON_3060, "--set", "per_device_train_batch_size=8", "--out", tmp_path,
                       "--name", f"run{i}", "--json")
        assert done.returncode == 0, done.stderr
    with History() as history:
        rows = history.runs()
        assert len(rows) == count
        for row in rows:
            history.record(row["run_dir"], row["run_id"], {
                "outcome": "finished", "steps_done": row["planned_steps"], "gpu_peak_gib": {"0": row["est_per_device_gib"] * ratio},
                "gpu_peak_max_gib": row["est_per_device_gib"] * ratio})
    return rows[0]["device"]


def test_two_runs_that_peaked_lower_make_a_plan_that_did_not_fit_fit_and_say_so(tmp_path):
    before = plan_json(*BIG)
    est = before["estimate"]
    assert not est["fits"] and est["per_device_gib"] * 0.8 < est["usable_gib"] < est["per_device_gib"]
    assert "history" not in est
    device = runs_that_peaked_at(tmp_path, 0.8, 2)
    after = plan_json(*BIG)
    history = after["estimate"]["history"]
    corrected = est["per_device_gib"] * 0.8
    text = f"your 2 runs of this model on {device} peaked at 0.80x the estimate (median): judged on {corrected:.1f} GiB per device"
    assert history["text"] == text and text in after["estimate"]["notes"]
    assert history["ratio"] == 0.8 and history["applied"] and history["runs"] == 2
    assert abs(history["corrected_gib"] - corrected) < 0.01
    assert after["estimate"]["fits"] and after["estimate"]["per_device_gib"] == est["per_device_gib"]  # the estimate stays
    assert not any(w.startswith("does not fit") for w in after["warnings"]) and not after["suggestions"]
    assert any(w.startswith(f"tight: {corrected:.1f} of") for w in after["warnings"])  # 10.8 of 11.3: within the margin
    shown = sft_tui("plan", *ON_3060, *BIG)
    assert shown.returncode == 0 and ": fits" in shown.stdout and text in shown.stdout
    bare = plan_json(*BIG, "--no-history")["estimate"]
    assert not bare["fits"] and "history" not in bare and not any("your 2 runs" in n for n in bare["notes"])


def test_one_run_is_noted_and_the_verdict_stays_the_estimates(tmp_path):
    device = runs_that_peaked_at(tmp_path, 0.8, 1)
    after = plan_json(*BIG)
    history = after["estimate"]["history"]
    assert history["text"] == (f"your 1 run of this model on {device} peaked at 0.80x the estimate; one run is not "
                               "enough to judge by (2 are), so the verdict is the estimate's")
    assert not history["applied"] and history["corrected_gib"] is None
    assert not after["estimate"]["fits"] and any(w.startswith("does not fit") for w in after["warnings"])


async def test_the_wizard_judges_the_plan_on_your_runs_too(tmp_path):
    """The app's plan step applies the run history as `sft-tui plan` does: two runs at 0.8x turn the
    verdict to fits, with the note; planned again, the note is there once."""
    from textual.widgets import Input, Select

    from tests.support.pilot import settle
    from tui.app.main import SftTuiApp

    runs_that_peaked_at(tmp_path, 0.8, 2)
    app = SftTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        app.go_to("hardware")
        await settle(app, pilot)
        app.query_one("#hardware-profile", Select).value = "rtx3060-12g"
        await settle(app, pilot)
        app.state.overrides = {"cutoff_len": 2048, "disable_gradient_checkpointing": True,
                               "per_device_train_batch_size": 24}
        app.go_to("model")
        await settle(app, pilot)
        app.query_one("#model-input", Input).value = "qwen2.5-3b"
        await settle(app, pilot)
        app.go_to("dataset")
        await settle(app, pilot)
        app.query_one("#dataset-input", Input).value = str(DATA)
        app.query_one("#dataset-input", Input).focus()
        await pilot.press("enter")
        await settle(app, pilot)
        app.go_to("plan")
        await settle(app, pilot)
        plan = app.state.plan
        assert plan is not None and plan.memory_history is not None, app.state
        assert plan.memory_history["applied"] and plan.fits
        assert sum(n.startswith("your 2 runs of this model") for n in plan.estimate.notes) == 1
        from tui.plan.calibrated import apply_history

        apply_history(plan, app.state.request)  # judged again, as after its simulated step
        assert sum(n.startswith("your 2 runs of this model") for n in plan.estimate.notes) == 1
