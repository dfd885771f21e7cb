"""What hardware there is to train on: detected on this machine, or from a hardware profile.

Detection runs one probe per vendor (NVIDIA through NVML, AMD through the amd-smi or rocm-smi
command, Apple silicon, the CPU). A probe that fails adds one line to `problems` and the other
probes still run. The probes take their library or command as a parameter, so tests fake only
that boundary (pynvml functions, the amd-smi JSON), never this module's logic.

What a device can do (bf16, fp16, flash-attention-2, bitsandbytes) is decided in one place per
vendor, its module's `capabilities` (tui.hardware.vendor: `nvidia_capabilities`, `amd_capabilities`,
`apple_capabilities`, `CPU_CAPABILITIES`). Hardware profiles carry the same flags, and a test checks
they agree with these functions."""

from __future__ import annotations

from tui.hardware import vendors
from tui.hardware.device import CommandRunner, Detection, run_command
from tui.hardware.vendor import Boundaries


def detect(nvml=None, run: CommandRunner = run_command) -> Detection:
    """Every vendor's probe, in the registry's order (NVIDIA, AMD, Apple, CPU): the CPU is always listed last."""
    devices, problems = [], []
    boundaries = Boundaries(nvml=nvml, run=run)
    for vendor in vendors.VENDORS.values():
        found, said = vendor.probe(boundaries)
        devices += found
        problems += said
    return Detection(devices=devices, problems=problems)


def summary_line(detection: Detection) -> str:
    gpus = detection.gpus
    cpu = next(d for d in detection.devices if not d.is_gpu)
    cpu_text = f"CPU with {cpu.cpu_cores} cores and {cpu.memory_total_mib / 1024:.0f} GiB RAM"
    if not gpus:
        return f"No GPU found; {cpu_text}."
    names = ", ".join(f"{d.name} ({d.memory_total_mib / 1024:.0f} GiB)" for d in gpus)
    return f"{len(gpus)} GPU{'s' if len(gpus) > 1 else ''}: {names}; {cpu_text}."
