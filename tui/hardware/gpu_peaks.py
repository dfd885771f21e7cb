"""The table of known GPUs' dense peak TFLOPS (profiles/gpu-peaks.yaml), by the name detection
reports; the vendors whose GPUs it lists (NVIDIA, AMD) answer their peak_tflops from it."""

from __future__ import annotations

from functools import lru_cache

import yaml

from tui.common.resources import data_dir
from tui.hardware.device import Device

PRECISIONS = ("bf16", "fp16", "fp32")


@lru_cache(maxsize=1)
def known_peaks() -> tuple[tuple[tuple[str, ...], dict], ...]:
    path = data_dir("profiles") / "gpu-peaks.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return tuple((tuple(n.lower() for n in entry["names"]), {p: entry[p] for p in PRECISIONS if p in entry})
                 for entry in data.get("gpus", []))


def table_peaks(device: Device) -> dict[str, float]:
    """{precision: dense peak TFLOPS} for a GPU the table names, or {}."""
    name = device.name.lower()
    for names, peaks in known_peaks():
        if any(n in name for n in names):
            return dict(peaks)
    return {}
