"""`sft-tui compare`: recorded runs (the finished tiny run, and a copy of it varied as a GPU run
with another learning rate would log), the console-only post-mortem, and the real tiny run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tui.cli.main import main
from tui.runs.compare import read_run

REPO = Path(__file__).resolve().parents[2]
RECORDED = REPO / "tests" / "data" / "runs"

# A run as LLaMA-Factory 0.9 logs it on a GPU with RECORD_VRAM=1 and include_num_input_tokens_seen:
# 8 steps, eval every 4, the best train loss before the last step and the best eval loss at step 4.
VARIED_TRAINER_LOG = [
    {"current_steps": 2, "total_steps": 8, "loss": 6.1, "lr": 1e-05, "epoch": 0.5, "percentage": 25.0,
     "elapsed_time": "0:15:30", "remaining_time": "0:46:30", "throughput": 2000.0, "total_tokens": 1860000,
     "vram_allocated": 9.8, "vram_reserved": 11.5},
    {"current_steps": 4, "total_steps": 8, "loss": 5.95, "lr": 3e-05, "epoch": 1.0, "percentage": 50.0,
     "elapsed_time": "0:31:00", "remaining_time": "0:31:00", "throughput": 2010.0, "total_tokens": 3738600,
     "vram_allocated": 10.5, "vram_reserved": 12.25},
    {"current_steps": 4, "total_steps": 8, "eval_loss": 6.0, "epoch": 1.0, "percentage": 50.0,
     "elapsed_time": "0:31:40", "remaining_time": "0:31:40", "vram_allocated": 10.5, "vram_reserved": 12.25},
    {"current_steps": 6, "total_steps": 8, "loss": 5.81, "lr": 7e-05, "epoch": 1.5, "percentage": 75.0,
     "elapsed_time": "0:46:30", "remaining_time": "0:15:30", "throughput": 2020.0, "total_tokens": 5636100,
     "vram_allocated": 10.5, "vram_reserved": 12.25},
    {"current_steps": 8, "total_steps": 8, "loss": 5.9, "lr": 1e-04, "epoch": 2.0, "percentage": 100.0,
     "elapsed_time": "1:02:00", "remaining_time": "0:00:00", "throughput": 2030.0, "total_tokens": 7552000,
     "vram_allocated": 10.5, "vram_reserved": 12.25},
    {"current_steps": 8, "total_steps": 8, "eval_loss": 6.1, "epoch": 2.0, "percentage": 100.0,
     "elapsed_time": "1:02:40", "remaining_time": "0:00:00", "vram_allocated": 10.5, "vram_reserved": 12.25},
]

# LLaMA-Factory's all_results.json (trainer.save_metrics): train and eval metrics merged.
VARIED_RESULTS = {"epoch": 2.0, "total_flos": 1.2e15, "train_loss": 5.94, "train_runtime": 3723.4,
                  "train_samples_per_second": 0.5, "train_steps_per_second": 0.002,
                  "train_tokens_per_second": 2048.0, "eval_loss": 6.1, "eval_runtime": 40.0}


def copy_recorded(tmp_path: Path, name: str, recorded: str = "finished", saves: str | None = "finished") -> Path:
    """tests/data/runs/<recorded> as tmp_path/runs/<name>, its output directory tmp_path/saves/<name>
    (with the recorded trainer_log.jsonl when `saves` names one), @ROOT@ made tmp_path."""
    run_dir = tmp_path / "runs" / name
    shutil.copytree(RECORDED / "finished", run_dir)
    if recorded != "finished":
        shutil.copytree(RECORDED / recorded, run_dir, dirs_exist_ok=True)
    output_dir = tmp_path / "saves" / name
    if saves:
        shutil.copytree(RECORDED / "saves" / saves, output_dir)
    for path in [*run_dir.iterdir(), *output_dir.rglob("*")]:
        if path.is_file():
            path.write_text(path.read_text(encoding="utf-8").replace("@ROOT@", str(tmp_path)), encoding="utf-8")
    plan = json.loads((run_dir / "plan.json").read_text(encoding="utf-8"))
    plan["paths"]["output_dir"] = str(output_dir)
    plan["run_id"] = name
    (run_dir / "plan.json").write_text(json.dumps(plan, indent=2), encoding="utf-8")
    return run_dir


def write_train_yaml(run_dir: Path, **edits: str) -> None:
    """train.yaml as a bundle has it (plan.json's settings, dataset, output_dir), with the user's
    edits written as YAML text (`3e-5` is a string to PyYAML)."""
    plan = json.loads((run_dir / "plan.json").read_text(encoding="utf-8"))
    settings = plan["plan"]["settings"] | {"do_train": True, "dataset": "tiny_alpaca", "dataset_dir": str(run_dir),
                                           "output_dir": plan["paths"]["output_dir"]}
    lines = [f"{key}: {edits[key] if key in edits else json.dumps(value)}" for key, value in settings.items()]
    (run_dir / "train.yaml").write_text("# written by sft-tui\n" + "\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def two_runs(tmp_path):
    """`base`: the recorded finished run. `lr-high`: the same bundle, train.yaml edited to a higher
    learning rate after export (plan.json still says 3e-05), and a GPU run's logs and results."""
    base = copy_recorded(tmp_path, "base")
    write_train_yaml(base, learning_rate="3e-5")
    varied = copy_recorded(tmp_path, "lr-high", saves=None)
    write_train_yaml(varied, learning_rate="1.0e-4", num_train_epochs="2.0")
    plan = json.loads((varied / "plan.json").read_text(encoding="utf-8"))
    plan["plan"]["estimate"]["per_device_gib"] = 13.1
    (varied / "plan.json").write_text(json.dumps(plan, indent=2), encoding="utf-8")
    out = tmp_path / "saves" / "lr-high"
    out.mkdir(parents=True)
    (out / "trainer_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in VARIED_TRAINER_LOG), encoding="utf-8")
    (out / "all_results.json").write_text(json.dumps(VARIED_RESULTS, indent=2), encoding="utf-8")
    return base, varied


def compare_json(capsys, *paths) -> dict:
    assert main(["compare", *map(str, paths), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_compare_json_has_the_differences_and_one_summary_per_run(two_runs, capsys):
    base, varied = two_runs
    out = compare_json(capsys, base, varied)
    # train.yaml wins over plan.json; 3e-5 (a YAML string) is 3e-05; 2.0 epochs is 2; output_dir differs by design
    assert out["differences"] == {"learning_rate": [3e-05, 1e-04]}
    first, second = out["runs"]
    assert first == {
        "name": "base", "run_dir": str(base), "status": "finished", "detail": "",
        "steps_done": 8, "total_steps": 8, "final_loss": 6.23968, "best_loss": 6.23968, "best_loss_step": 8,
        "mean_train_loss": 6.2494,  # from the console's train metrics: the recording kept no all_results.json
        "resumed_at": None,
        "final_eval_loss": None, "best_eval_loss": None, "best_eval_step": None,
        "train_seconds": 0.21, "tokens_per_second": None, "samples_per_second": 152.379,
        "peak_vram_allocated_gib": None, "peak_vram_reserved_gib": None,  # a CPU run logs vram 0.0
        "planned_gib": 0.004, "source": "trainer_log.jsonl"}
    assert second == {
        "name": "lr-high", "run_dir": str(varied), "status": "finished", "detail": "",
        "steps_done": 8, "total_steps": 8, "final_loss": 5.9, "best_loss": 5.81, "best_loss_step": 6,
        "mean_train_loss": 5.94, "resumed_at": None, "final_eval_loss": 6.1, "best_eval_loss": 6.0, "best_eval_step": 4,
        "train_seconds": 3723.4, "tokens_per_second": 2048.0, "samples_per_second": 0.5,
        "peak_vram_allocated_gib": 10.5, "peak_vram_reserved_gib": 12.25, "planned_gib": 13.1,
        "source": "trainer_log.jsonl"}


def test_compare_text_is_two_tables(two_runs, capsys, monkeypatch):
    base, _ = two_runs
    monkeypatch.chdir(base.parent)
    assert main(["compare", "base", "lr-high"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "Settings that differ (1):",
        "  setting        base   lr-high",
        "  learning_rate  3e-05  0.0001",
        "",
        "Results:",
        "                          base       lr-high",
        "  status                  finished   finished",
        "  steps                   8/8        8/8",
        "  train loss, final       6.2397     5.9000",
        "  train loss, best @step  6.2397 @8  5.8100 @6",
        "  train loss, run mean    6.2494     5.9400",
        "  eval loss, final        -          6.1000",
        "  eval loss, best @step   -          6.0000 @4",
        "  train time              0.2 s      1:02:03",
        "  tokens/s                -          2,048",
        "  samples/s               152        0.5",
        "  peak memory, measured   -          12.2 GiB",
        "  peak memory, planned    0.004 GiB  13.1 GiB",
        ("  measured memory: trainer_log.jsonl's peak vram_reserved (RECORD_VRAM=1, set by run_sft.sh); "
         "'-': not logged, or a CPU run"),
    ]


def test_a_runs_directory_compares_every_run_in_it(two_runs, capsys):
    base, _ = two_runs
    (base.parent / "notes").mkdir()  # not a run: skipped
    out = compare_json(capsys, base.parent)
    assert [run["name"] for run in out["runs"]] == ["base", "lr-high"]
    assert list(out["differences"]) == ["learning_rate"]


def test_the_same_run_twice_is_one_run(two_runs, capsys):
    base, _ = two_runs
    assert main(["compare", str(base), str(base) + "/"]) == 2
    assert capsys.readouterr().err == f"sft-tui: comparing needs at least 2 runs; found only {base}\n"


@pytest.mark.parametrize("what", ["one run", "an empty runs directory", "a runs directory with one run"])
def test_fewer_than_two_runs_says_so(tmp_path, capsys, what):
    if what == "one run":
        paths = [copy_recorded(tmp_path, "base")]
    elif what == "an empty runs directory":
        paths = [tmp_path / "runs"]
        paths[0].mkdir()
    else:
        copy_recorded(tmp_path, "base")
        paths = [tmp_path / "runs"]
    assert main(["compare", *map(str, paths)]) == 2
    err = capsys.readouterr().err
    if what == "an empty runs directory":
        assert err == f"sft-tui: {tmp_path / 'runs'} is not a run directory (no run_sft.sh) and holds none\n"
    else:
        assert err == f"sft-tui: comparing needs at least 2 runs; found only {tmp_path / 'runs' / 'base'}\n"


def test_a_path_that_is_not_a_run_directory_is_one_sentence(two_runs, tmp_path, capsys):
    base, _ = two_runs
    (tmp_path / "notes.txt").write_text("x")
    for path, sentence in [
        (tmp_path / "notes.txt", f"{tmp_path / 'notes.txt'} is not a run directory (no run_sft.sh): give runs/<run-id> or runs/"),
        (tmp_path / "saves", f"{tmp_path / 'saves'} is not a run directory (no run_sft.sh) and holds none"),
        (tmp_path / "nowhere", f"{tmp_path / 'nowhere'} does not exist"),
    ]:
        assert main(["compare", str(base), str(path)]) == 2
        assert capsys.readouterr().err == f"sft-tui: {sentence}\n"


def test_a_failed_run_without_its_output_directory_is_read_from_the_console(two_runs, tmp_path, capsys):
    """The recorded OOM run: no saves (copied from another machine), so its curve is the console's."""
    base, _ = two_runs
    oom = copy_recorded(tmp_path, "oom", recorded="oom", saves=None)
    out = compare_json(capsys, base, oom)
    summary = out["runs"][1]
    assert (summary["status"], summary["detail"], summary["source"]) == ("failed", "exit code 1", "train.log")
    assert (summary["steps_done"], summary["total_steps"]) == (4, 12)
    # the Trainer's console line rounds to 4 digits ({'loss': '6.258', ...}); it gives no step
    assert (summary["final_loss"], summary["best_loss"], summary["best_loss_step"]) == (6.258, 6.239, None)
    assert summary["mean_train_loss"] is None and summary["samples_per_second"] is None
    # the oom copy has no train.yaml: what only base's train.yaml says differs
    assert out["differences"] == {"do_train": [True, None], "dataset": ["tiny_alpaca", None],
                                  "dataset_dir": ["<run_dir>", None]}


def test_paths_in_a_runs_own_directories_are_the_same_setting(two_runs, capsys):
    """dataset_dir is each bundle's own directory, a DeepSpeed config sits in it, checkpoints in the
    output directory: the same in every run. A checkpoint of another run is a real difference."""
    base, varied = two_runs
    other_checkpoint = str(base.parent.parent / "saves" / "base" / "checkpoint-4")
    for run_dir, resume in ((base, "<output_dir>/checkpoint-4"), (varied, other_checkpoint)):
        output_dir = run_dir.parent.parent / "saves" / run_dir.name
        resume = resume.replace("<output_dir>", str(output_dir))
        with open(run_dir / "train.yaml", "a", encoding="utf-8") as f:
            f.write(f"deepspeed: {run_dir / 'ds_z2.json'}\nresume_from_checkpoint: {resume}\n")
    out = compare_json(capsys, base, varied)
    assert out["differences"] == {"learning_rate": [3e-05, 1e-04],
                                  "resume_from_checkpoint": ["<output_dir>/checkpoint-4", other_checkpoint]}


def test_tokens_per_second_sources(two_runs):
    _, varied = two_runs
    results = varied.parent.parent / "saves" / "lr-high" / "all_results.json"
    data = json.loads(results.read_text())
    del data["train_tokens_per_second"]
    results.write_text(json.dumps(data | {"effective_tokens_per_sec": 1500.0}))
    assert read_run(varied).tokens_per_second == 1500.0  # LLaMA-Factory's include_effective_tokens_per_second
    results.unlink()
    run = read_run(varied)
    assert run.tokens_per_second == 2030.0  # trainer_log.jsonl's last throughput
    assert run.train_seconds == 0.21 and run.mean_train_loss == 6.2494  # the console's train metrics block
    log = varied / "train.log"
    log.write_text(log.read_text().split("***** train metrics *****")[0])
    run = read_run(varied)
    assert run.train_seconds == 3760.0  # the last row's elapsed_time (1:02:40) without any final metrics
    assert run.mean_train_loss is None and run.samples_per_second is None


def test_compare_on_the_real_tiny_run(tiny_sft_run, two_runs, tmp_path, capsys):
    """The real LLaMA-Factory's output: its trainer_log.jsonl and all_results.json, as written."""
    assert tiny_sft_run.returncode == 0, tiny_sft_run.log[-2000:]
    base, _ = two_runs
    real = tmp_path / "runs" / "real"
    real.mkdir()
    for name in ("run_sft.sh", "run.pid", "plan.json"):
        shutil.copy(base / name, real / name)
    shutil.copy(tiny_sft_run.workdir / "train.yaml", real / "train.yaml")  # output_dir: the real one
    shutil.copy(tiny_sft_run.workdir / "train.log", real / "train.log")
    (real / "exit_code").write_text("0\n")
    results = json.loads((tiny_sft_run.output_dir / "all_results.json").read_text())
    logged = [row for row in tiny_sft_run.trainer_log() if "loss" in row]

    out = compare_json(capsys, base, real)
    summary = out["runs"][1]
    assert (summary["status"], summary["steps_done"], summary["total_steps"]) == ("finished", 4, 4)
    assert summary["final_loss"] == logged[-1]["loss"]
    assert summary["best_loss"] == min(row["loss"] for row in logged)
    assert summary["mean_train_loss"] == results["train_loss"]
    assert summary["train_seconds"] == results["train_runtime"]
    assert summary["samples_per_second"] == results["train_samples_per_second"]
    assert summary["source"] == "trainer_log.jsonl"
    differences = out["differences"]
    assert differences["learning_rate"] == [3e-05, 1e-3]
    assert differences["lora_rank"] == [32, 4]
    assert differences["max_steps"] == [None, 4]
    assert "output_dir" not in differences


def test_tokens_per_second_is_what_the_monitor_measured(tmp_path):
    """A run whose Trainer logged no throughput (spike/: 2 s a step, 3,000 planned tokens a step): compare
    shows the monitor's 1,500 tok/s, from state.json's estimate_vs_actual once the monitor recorded it,
    and from the same reading of the logs before (a run nobody watched, or one still going)."""
    from tests.runs.test_runs import sft_tui
    from tests.runs.test_speed import with_estimate

    run_dir = with_estimate(tmp_path, "spike")
    assert read_run(run_dir).tokens_per_second == 1500.0  # never monitored: no state.json
    assert not (run_dir / "state.json").exists()  # compare writes nothing
    sft_tui("monitor", run_dir, "--plain", check=True)
    state = json.loads((run_dir / "state.json").read_text())
    state["estimate_vs_actual"]["measured_tokens_per_second"] = 1499.0
    (run_dir / "state.json").write_text(json.dumps(state))
    assert read_run(run_dir).tokens_per_second == 1499.0  # the monitor's own record comes first
    (run_dir / "state.json").unlink()
    log = run_dir / "train.log"
    log.write_text(log.read_text().split("***** train metrics")[0])  # still going, at step 60
    (run_dir / "exit_code").unlink()
    assert read_run(run_dir).tokens_per_second == 1500.0
