"""The settings of runs, compared (`sft-tui compare`, tui.runs.compare): what each run trained with
(plan.json's settings, train.yaml's over them, the plan's recipe and hardware), which of them differ
between runs, and a value as the CLI table and the app show it. Paths inside a run's own
directories read the same in every run (<run_dir>, <output_dir>); keys every run has a value of its
own for (output_dir, run_name, logging_dir) are left out; an absent key equals a null one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tui.runs.rundir import output_dir_of

# Every run has its own value of these by construction: a difference in them says nothing.
PER_RUN_KEYS = frozenset({"output_dir", "run_name", "logging_dir"})


def read_plan(run_dir: Path) -> dict:
    try:
        plan = json.loads((run_dir / "plan.json").read_text(encoding="utf-8"))
        return plan if isinstance(plan, dict) else {}
    except (OSError, ValueError):
        return {}


def run_settings(run_dir: Path, plan: dict | None = None) -> dict:
    """The settings a run trained with: plan.json's, train.yaml's over them, and the plan's
    recipe and hardware."""
    plan = read_plan(run_dir) if plan is None else plan
    body: dict = plan["plan"] if isinstance(plan.get("plan"), dict) else {}
    settings = dict(body.get("settings") or {})
    try:
        config = yaml.safe_load((run_dir / "train.yaml").read_text(encoding="utf-8"))
        if isinstance(config, dict):
            settings.update({k: _typed(v) for k, v in config.items()})
    except (OSError, yaml.YAMLError):
        pass
    if body.get("recipe"):
        settings["recipe"] = body["recipe"]
    hardware: dict = plan["hardware"] if isinstance(plan.get("hardware"), dict) else {}
    if hardware.get("name"):
        gpus = hardware.get("gpus") or 1
        settings["hardware"] = f"{gpus} x {hardware['name']}" if gpus != 1 else hardware["name"]
    own = [(str(run_dir.resolve()), "<run_dir>"), (str(run_dir.absolute()), "<run_dir>")]
    output_dir = output_dir_of(run_dir)
    if output_dir:
        own += [(str(output_dir.resolve()), "<output_dir>"), (str(output_dir.absolute()), "<output_dir>")]
    return {k: _own_paths(v, own) for k, v in settings.items() if k not in PER_RUN_KEYS}


def _own_paths(value, own: list[tuple[str, str]]):
    """A path in the run's own directory (dataset_dir, a DeepSpeed config) is the same setting in
    every run: '<run_dir>/ds_z2.json'. A path elsewhere (another run's checkpoint) stays as it is."""
    if isinstance(value, str):
        for path, name in own:
            if value == path or value.startswith(path + "/"):
                return name + value[len(path):]
    return value


# PyYAML (YAML 1.1) reads `3e-5` as a string; LLaMA-Factory's parser makes it the float it is.
_EXPONENT_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _typed(value):
    return float(value) if isinstance(value, str) and _EXPONENT_NUMBER.match(value.strip()) else value


def _same(value):
    """A value as compared: 2 in one file equals 2.0 in another."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def differences(settings: list[dict]) -> dict[str, list]:
    """Settings whose value is not the same in every run, in the first run's order; absent = None."""
    keys: list[str] = []
    for one in settings:
        keys += [k for k in one if k not in keys]
    out = {}
    for key in keys:
        values = [one.get(key) for one in settings]
        if len({json.dumps(_same(v), sort_keys=True, default=str) for v in values}) > 1:
            out[key] = values
    return out


def shown_value(value) -> str:
    """A setting's value as the CLI table and the app show it."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)
