"""`sft-tui monitor RUN_DIR --plain --auto-retry N`: a real tiny-model run whose loss goes NaN
(learning_rate 1e30, as tests/runs/test_retry_nan.py makes it) is retried by the monitor itself, from
the checkpoint before the bad step at half the rate, started and followed, up to N retries; the
chain is one lineage in `sft-tui status`. A failure no retry fixes is not retried."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.runs.test_retry import export_for
from tests.runs.test_retry_fixes import lay
from tests.runs.test_runs import export, sft_tui


def config_of(run_dir: Path) -> dict:
    return yaml.safe_load((run_dir / "train.yaml").read_text())


@pytest.mark.llamafactory
def test_a_nan_run_is_retried_by_the_monitor_up_to_n_times_and_the_chain_is_in_status(tiny_model_dir, tmp_path):
    run_dir = export(tmp_path, tiny_model_dir, "nan", 2, None, "--set", "learning_rate=1e30", "--set", "max_grad_norm=0",
                     "--set", "logging_nan_inf_filter=false", "--set", "save_steps=1")
    runs = run_dir.parent
    sft_tui("run", run_dir, check=True)
    watched = sft_tui("monitor", run_dir, "--plain", "--auto-retry", "1", timeout=900)
    out = watched.stdout
    assert watched.returncode == 0, out[-3000:] + watched.stderr[-3000:]
    # exactly one retry: from checkpoint-1 (checkpoint-2's weights gave step 3's NaN loss), at half the rate
    assert ("auto-retry: run nan ended: the loss went NaN at step 3; started retry nan-retry1 from checkpoint-1 with "
            "learning_rate 5e+29, max_grad_norm 1\n") in out, out[-3000:]
    retry1 = runs / "nan-retry1"
    assert (config_of(retry1)["learning_rate"], config_of(retry1)["resume_from_checkpoint"]) == (
        5e29, "../../saves/nan-retry1/checkpoint-1")
    assert (retry1 / "train.log").read_text().splitlines()[0] == "Resuming from ../../saves/nan-retry1/checkpoint-1"
    # the retry went NaN too (5e29 is no sane rate either): no retry is left, and it says what would be next
    assert (f"auto-retry: run nan-retry1 ended: the loss went NaN at step 3; no automatic retry is left (--auto-retry): "
            f"sft-tui retry {retry1.resolve()} --fix nan\n") in out, out[-3000:]
    assert sorted(p.name for p in runs.iterdir()) == ["nan", "nan-retry1"]
    assert "retries: nan -> nan-retry1 (finished)\n" in sft_tui("status", runs, check=True).stdout
    rows = json.loads(sft_tui("status", runs, "--json", check=True).stdout)
    assert {r["name"]: r["follows"] for r in rows} == {"nan": None, "nan-retry1": "nan"}

    # --auto-retry 2 on the ended retry: two more in the chain, each at half the last one's rate, then it stops
    watched = sft_tui("monitor", retry1, "--plain", "--auto-retry", "2", timeout=900)
    assert watched.returncode == 0, watched.stdout[-3000:] + watched.stderr[-3000:]
    started = [line for line in watched.stdout.splitlines() if line.startswith("auto-retry: ") and "started retry" in line]
    assert [line.split("started retry ")[1].split(" ")[0] for line in started] == ["nan-retry2", "nan-retry3"]
    assert "no automatic retry is left (--auto-retry)" in watched.stdout.splitlines()[-1]
    assert sorted(p.name for p in runs.iterdir()) == ["nan", "nan-retry1", "nan-retry2", "nan-retry3"]
    assert [config_of(runs / f"nan-retry{n}")["learning_rate"] for n in (2, 3)] == [2.5e29, 1.25e29]
    assert "retries: nan -> nan-retry1 -> nan-retry2 -> nan-retry3 (finished)\n" in sft_tui("status", runs).stdout


def test_a_failure_no_retry_fixes_is_not_retried(tmp_path):
    run_dir = export_for(tmp_path, "bad", "per_device_train_batch_size=2")
    (tmp_path / "t.log").write_text("Traceback (most recent call last):\n  File \"/home/me/my_callback.py\", line 3\n"
                                    "RuntimeError: my callback broke\n")
    lay(run_dir, tmp_path / "t.log", 1, tmp_path)
    watched = sft_tui("monitor", run_dir, "--plain", "--auto-retry", "3")
    assert watched.returncode == 1, watched.stdout + watched.stderr
    assert watched.stdout.splitlines()[-1] == (
        "auto-retry: run bad ended and is not retried: it failed: RuntimeError: my callback broke (exit 1) (no retry "
        "fixes that: read the traceback in train.log: no change of settings is known to fix it)")
    assert not list(run_dir.parent.glob("*-retry*"))
    done = sft_tui("monitor", run_dir, "--plain", "--json", "--auto-retry", "1")
    last = json.loads(done.stdout.splitlines()[-1])
    assert last["kind"] == "not_retried" and last["retry_dir"] is None and "is not retried" in last["text"]
    assert "retries:" not in sft_tui("status", run_dir.parent).stdout


def test_a_negative_count_is_refused_in_one_sentence(tmp_path):
    run_dir = export_for(tmp_path, "any", "per_device_train_batch_size=2")
    done = sft_tui("monitor", run_dir, "--plain", "--auto-retry", "-1")
    assert (done.returncode, done.stderr) == (
        2, "sft-tui: --auto-retry -1 is not a number of retries: give 0 (never) or more\n"), done.stdout + done.stderr


def test_lineages_branch_and_skip_runs_alone():
    from tui.runs.autoretry import lineage_line, lineages

    rows = [{"name": n, "follows": f, "status": s} for n, f, s in (
        ("a", None, "failed"), ("a-retry1", "a", "failed"), ("a-retry2", "a-retry1", "running"), ("b", None, "finished"),
        ("c", None, "failed"), ("c-retry1", "c", "finished"), ("c-retry2", "c", "failed"))]
    assert [lineage_line(chain) for chain in lineages(rows)] == [
        "a -> a-retry1 -> a-retry2 (running)", "c -> c-retry1 (finished)", "c -> c-retry2 (failed)"]
