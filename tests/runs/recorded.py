"""Copies of the recorded run directories under tests/data/runs, made whole for a test."""

from __future__ import annotations

import shutil
from pathlib import Path

RECORDED = Path(__file__).resolve().parents[1] / "data" / "runs"


def recorded_run(tmp_path: Path, name: str) -> Path:
    """A copy of tests/data/runs/<name> in tmp_path: the finished run's bundle files, with <name>'s own
    log, exit code and pid files over them, and its saves (trainer_log.jsonl) where plan.json puts the
    output directory. The recorded files say @ROOT@ for the directory they were recorded in; the copy
    says tmp_path, so the same curve is drawn on any machine."""
    run_dir = tmp_path / "runs" / name
    shutil.copytree(RECORDED / "finished", run_dir)
    shutil.copytree(RECORDED / name, run_dir, dirs_exist_ok=True)
    if (RECORDED / "saves" / name).is_dir():
        shutil.copytree(RECORDED / "saves" / name, tmp_path / "saves" / "tiny-lora")
    for path in [*run_dir.iterdir(), *(tmp_path / "saves").rglob("*")]:
        if path.is_file():
            path.write_text(path.read_text(encoding="utf-8").replace("@ROOT@", str(tmp_path)), encoding="utf-8")
    return run_dir
