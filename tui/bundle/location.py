"""Where a bundle is: its files name paths relative to its own run directory, so it moves (another
folder, another machine), and a run writes only into its own run and output directories.

- `portable(spec)`: what is written. Dataset files inside the run directory (cleaned copies, data
  carried by `sft-tui pack`) are named relative to it; the user's own files stay absolute (they are
  found again where they are, or carried by `pack`).
- `located(spec, run_dir)`: what is read back. The spec's paths are where the bundle is now, not
  where it was exported, and relative dataset files are resolved from there.
- `ownership_problems(run_dir)`: why running this directory would write into another run's files
  (a copy under another name, a script written for another directory, an output directory that
  belongs to another run); each one sentence with the fix.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import yaml

_LEGACY_RUN_DIR = re.compile(r"^RUN_DIR=(?!\$)['\"]?(/[^'\"\n]*)['\"]?$", re.MULTILINE)


def portable(spec: dict) -> dict:
    spec = copy.deepcopy(spec)
    run_dir = Path(spec["paths"]["run_dir"])
    for entry in spec["datasets"]["entries"].values():
        path = Path(entry["file_name"])
        if path.is_absolute() and path.is_relative_to(run_dir):
            entry["file_name"] = path.relative_to(run_dir).as_posix()
    return spec


def located(spec: dict, run_dir: Path) -> dict:
    run_dir = Path(run_dir).absolute()
    spec = copy.deepcopy(spec)
    spec["paths"] = {"run_dir": str(run_dir), "output_dir": str(own_output_dir(run_dir, spec["run_id"]))}
    for entry in spec["datasets"]["entries"].values():
        if not Path(entry["file_name"]).is_absolute():
            entry["file_name"] = str(run_dir / entry["file_name"])
    return spec


def own_output_dir(run_dir: Path, run_id: str) -> Path:
    return Path(run_dir).absolute().parent.parent / "saves" / run_id


def configured_output_dir(run_dir: Path) -> Path | None:
    """train.yaml's output_dir resolved from the run directory (run_sft.sh runs from there)."""
    run_dir = Path(run_dir).absolute()
    try:
        config = yaml.safe_load((run_dir / "train.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    if isinstance(config, dict) and config.get("output_dir"):
        return Path(os.path.normpath(run_dir / str(config["output_dir"])))
    return None


def plan_run_id(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "plan.json").read_text(encoding="utf-8")).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None


def ownership_problems(run_dir: Path) -> list[str]:
    run_dir = Path(run_dir).absolute()
    problems = []
    run_id = plan_run_id(run_dir)
    rename = (f"give it its own name: sft-tui export --from {run_dir / 'plan.json'} --name {run_dir.name} --force "
              "(files you edited are kept)")
    if run_id and run_id != run_dir.name:
        problems.append(f"{run_dir.name} is a copy of run {run_id}, whose files write to saves/{run_id}: {rename}")
    try:
        script = (run_dir / "run_sft.sh").read_text(encoding="utf-8", errors="replace")
    except OSError:
        script = ""
    legacy = _LEGACY_RUN_DIR.search(script)
    if legacy and Path(legacy.group(1)) != run_dir:
        problems.append(f"run_sft.sh was written for {legacy.group(1)}, not this directory, and would run and write "
                        f"there: {rename}")
    output_dir = configured_output_dir(run_dir)
    if output_dir is not None and run_id and output_dir != own_output_dir(run_dir, run_id):
        owner = _owner_of(output_dir, run_dir)
        if owner:
            problems.append(f"train.yaml's output_dir {output_dir} belongs to run {owner}: put it back to "
                            f"../../saves/{run_dir.name}, or export again")
    return problems


def _owner_of(output_dir: Path, run_dir: Path) -> str | None:
    """The other run (a sibling in the same runs/ folder) whose run or output directory holds output_dir."""
    for other in run_dir.parent.iterdir() if run_dir.parent.is_dir() else ():
        if other == run_dir or not (other / "run_sft.sh").is_file():
            continue
        theirs = [other.absolute(), configured_output_dir(other), own_output_dir(other, plan_run_id(other) or other.name)]
        if any(t is not None and output_dir.is_relative_to(t) for t in theirs):
            return other.name
    return None
