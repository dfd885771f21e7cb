"""A device's dense peak TFLOPS per precision: its hardware profile's `peak_tflops`, else what its
vendor knows (tui.hardware.vendor: NVIDIA's and AMD's from the table of known GPUs,
tui/hardware/gpu_peaks.py), else unknown."""

from __future__ import annotations

from tui.hardware.device import Device
from tui.hardware.vendors import vendor_of


def peak_tflops(device: Device) -> dict[str, float]:
    """{precision: dense peak TFLOPS} for the device, or {} when its speed is unknown."""
    if device.peak_tflops:
        return dict(device.peak_tflops)
    return vendor_of(device.vendor).peak_tflops(device)
