"""What the run history's calibration does for the next plan, on real tiny-model runs on this CPU.

    python bench/history_calibration.py [--work DIR]

Run 1 trains on a fresh history (a CPU has no datasheet speed: its plan has no time). Run 2 is planned
with another length or batch, once with the history (calibrated from run 1) and once with --no-history,
then trained; the printed figures are run 2's estimated against measured time, before and after
calibration. Printed, never judged: the tiny model's steps are mostly fixed costs, and the CPU is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.llamafactory import SAMPLE_ALPACA_ROWS, build_tiny_model, offline_env, write_jsonl  # noqa: E402

SFT_TUI = str(Path(sys.executable).parent / "sft-tui")


def sft_tui(env: dict, *args) -> str:
    done = subprocess.run([SFT_TUI, *map(str, args)], capture_output=True, text=True, env=env, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"sft-tui {' '.join(map(str, args))} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def plan_time(env, model, data, settings, *extra) -> dict:
    sets = [x for k, v in settings.items() for x in ("--set", f"{k}={v}")]
    return json.loads(sft_tui(env, "plan", "--hardware", "cpu", "--model", model, "--dataset", data, *sets, *extra,
                              "--json"))["time_estimate"]


def train(env, work, model, data, name, settings) -> dict:
    sets = [x for k, v in settings.items() for x in ("--set", f"{k}={v}")]
    out = json.loads(sft_tui(env, "export", "--hardware", "cpu", "--model", model, "--dataset", data, "--out", work,
                             "--name", name, "--env", f"venv:{Path(sys.executable).parent.parent}", *sets, "--json"))
    sft_tui(env, "run", out["run_dir"])
    subprocess.run([SFT_TUI, "monitor", out["run_dir"], "--plain"], capture_output=True, env=env, timeout=900)
    rows = json.loads(sft_tui(env, "history", "--json"))
    return next(r for r in rows if r["run_id"] == name)


def pct(estimated, measured) -> str:
    return "-" if estimated is None or not measured else f"{(estimated - measured) / measured * 100:+.0f} %"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", metavar="DIR", help="where the model, data, runs and history go (default: a tmp dir)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="history-calibration-"))
    work.mkdir(parents=True, exist_ok=True)
    env = offline_env(SFT_TUI_HISTORY=str(work / "history.sqlite3"), SFT_TUI_SIMULATE="0")
    if (work / "history.sqlite3").exists():
        os.remove(work / "history.sqlite3")
    model = work / "tiny" if (work / "tiny" / "config.json").exists() else build_tiny_model(work / "tiny")
    data = write_jsonl(work / "data.jsonl", SAMPLE_ALPACA_ROWS)
    first = {"num_train_epochs": 2, "logging_steps": 1}
    second = {"num_train_epochs": 4, "logging_steps": 1, "per_device_train_batch_size": 2}
    run1 = train(env, work, model, data, "run1", first)
    print(f"run 1 ({first}): measured {run1['time']['measured_seconds']:.2f} s, "
          f"{run1['time']['measured_tokens_per_second']:,.0f} tok/s")
    before = plan_time(env, model, data, second, "--no-history")
    after = plan_time(env, model, data, second)
    run2 = train(env, work, model, data, "run2", second)
    measured = run2["time"]["measured_seconds"]
    print(f"run 2 ({second}): measured {measured:.2f} s")
    print(f"  before calibration: estimated {before['seconds'] if before['seconds'] is not None else 'none'}"
          f" s  error {pct(before['seconds'], measured)}")
    after_s = after["seconds"]
    print(f"  after calibration:  estimated {after_s} s  error {pct(after_s, measured)}  "
          f"({after.get('calibration', {}).get('text', 'not calibrated')})")
    print(f"work: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
