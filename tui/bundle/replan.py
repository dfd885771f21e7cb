"""A plan.json planned again: the same hardware, the model exactly as it was, the same dataset
files, recipe and your earlier --set values, plus new settings. `sft-tui export --from plan.json
--set KEY=VALUE` and `sft-tui retry` both start here."""

from __future__ import annotations

from tui.plan.requests import build_request

NOT_OVERRIDES = ("model_name_or_path", "template")  # decided from the model, not kept as settings


def earlier_choices(spec: dict, kind: str) -> dict:
    """The settings of the old plan whose reason is of this kind: `user` (your --set) or `retry`
    (an earlier retry's fix), which the new plan keeps."""
    plan_json = spec["plan"]
    return {key: plan_json["settings"][key] for key, reason in plan_json["reasons"].items()
            if reason["kind"] == kind and key in plan_json["settings"] and key not in NOT_OVERRIDES}


def model_argument(spec: dict) -> str:
    """The model exactly as the old plan has it: its model_name_or_path (a hub id or a local
    directory), never the profile's name, which would resolve to the profile's own id (a retry of
    Qwen/Qwen2.5-Coder-14B-Instruct must not become Qwen/Qwen2.5-14B)."""
    return spec["model"]["model_name_or_path"]


def request_from_spec(spec: dict, overrides: dict | None = None):
    """(PlanRequest, validation report) for planning `spec` again with `overrides` on top of
    the settings you gave it before."""
    hardware = spec["hardware"]
    files = [entry["file_name"] for entry in spec["datasets"]["entries"].values()]
    return build_request(hardware["name"], model_argument(spec), files, spec["plan"]["recipe"],
                         earlier_choices(spec, "user") | (overrides or {}),
                         # a CPU plan's one "GPU" is the CPU: no GPU count to ask for
                         None if hardware.get("vendor") == "cpu" else hardware["gpus"], hardware["nodes"])
