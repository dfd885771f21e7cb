"""Gathering a PlanRequest from what a user names: a hardware profile or `detected`, a model
name or directory, dataset files, a recipe, `--set` overrides. This is the I/O around the pure
planner; the CLI and the app both call it.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tui.common.profiles import ProfileSet, load_profiles
from tui.hardware.detect import detect
from tui.hardware.profile import devices_from_profile
from tui.models.architecture import ModelError
from tui.models.resolve import resolve_model
from tui.plan.values import DataFacts, PlanRequest


class RequestError(Exception):
    """Bad input: an unknown profile, an unreadable model or dataset. One sentence."""


def parse_overrides(pairs: list[str]) -> dict:
    """`key=value` pairs; values are read as YAML scalars (4 -> int, 2e-4 -> float, null -> None)."""
    overrides = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            raise RequestError(f"--set {pair!r}: expected KEY=VALUE with a LLaMA-Factory argument name as KEY")
        value = yaml.safe_load(text) if text.strip() else None
        if isinstance(value, str):
            try:
                value = float(value) if any(c in value for c in "eE.") else value
            except ValueError:
                pass
        overrides[key.strip()] = value
    return overrides


def pick_devices(hardware: str, gpus: int | None, profiles: ProfileSet):
    """(devices, problems): a profile's devices, or this machine's (all GPUs, else the CPU)."""
    if hardware == "detected":
        detection = detect()
        found = detection.gpus
        if gpus is not None and found:
            if gpus > len(found):
                raise RequestError(f"--gpus {gpus}: this machine has {len(found)} GPU(s)")
            found = found[:gpus]
        cpu = [d for d in detection.devices if d.vendor == "cpu"]
        return (found or cpu), detection.problems
    profile = profiles.get("hardware", hardware)
    if profile is None:
        raise RequestError(f"unknown hardware {hardware!r}: use `detected` or one of {', '.join(profiles.names('hardware'))}")
    return devices_from_profile(profile.data, gpus), []


def build_request(hardware: str, model: str, datasets: list[str] | None = None, recipe: str | None = None,
                  overrides: dict | None = None, gpus: int | None = None, nodes: int = 1,
                  profiles: ProfileSet | None = None, report=None, devices=None):
    """(PlanRequest, validation report or None). A `report` already made (the wizard validates
    with a progress bar) is used instead of validating `datasets` again; `devices` chosen in the
    wizard are used instead of `hardware`'s."""
    profiles = profiles or load_profiles()
    if devices is None:
        devices, _ = pick_devices(hardware, gpus, profiles)
    try:
        model_info = resolve_model(model, profiles)
    except ModelError as err:
        raise RequestError(str(err)) from None
    recipes = {p.name: p.data for p in profiles.of("recipes")}
    if recipe and recipe not in recipes:
        raise RequestError(f"unknown recipe {recipe!r}: one of {', '.join(sorted(recipes))}")
    data = None
    if report is None and datasets:
        from tui.datasets.validate import validate_paths

        report = validate_paths([Path(p) for p in datasets])
    if report is not None:
        if report.file_errors:
            raise RequestError("; ".join(report.file_errors))
        data = DataFacts.from_report(report)
    request = PlanRequest(devices=devices, model=model_info, recipes=recipes, recipe=recipe, data=data,
                          overrides=overrides or {}, nodes=nodes)
    return request, report
