"""Planning for another machine: the devices a hardware profile describes, and what the
capability rules say its device can do."""

from __future__ import annotations

from tui.hardware.device import Capabilities, Device
from tui.hardware.vendors import vendor_of

MAX_GPUS = 64  # per node: more than any machine has; a typo like 80 or 100 is caught


def gpu_count_problem(count: int) -> str | None:
    """Why `count` is no GPU count per node (the CLI's --gpus, the wizard's GPUs box), or None."""
    if isinstance(count, int) and 1 <= count <= MAX_GPUS:
        return None
    return f"a GPU count is a whole number from 1 to {MAX_GPUS} per node"


def no_gpu_problem(where: str) -> str:
    """Why a GPU count for a machine with no GPU (`where`: "this machine", "the hardware profile
    cpu") means nothing: the plan is for its CPU, one device. The caller adds what to do instead."""
    return f"{where} has no GPU, so the plan is for its CPU"


def devices_from_profile(data: dict, gpus: int | None = None) -> list[Device]:
    """The devices a hardware profile describes, as detection would have reported them
    (all free, nothing in use). `gpus` overrides the profile's GPU count."""
    # A CPU-only profile (gpus: 0) still has one device to train on: the CPU.
    count = max(1, data["gpus"] if gpus is None else gpus)
    return [
        Device(
            index=index,
            vendor=data["vendor"],
            name=data["device"],
            memory_total_mib=data["memory_total_mib"],
            memory_free_mib=data["memory_total_mib"],
            memory_used_mib=0,
            bf16=data["bf16"],
            fp16=data["fp16"],
            flash_attn2=data["flash_attn2"],
            bitsandbytes=data["bitsandbytes"],
            free=True,
            compute_capability=data.get("compute_capability"),
            gfx=data.get("gfx"),
            cpu_cores=data.get("cpu_cores"),
            peak_tflops=data.get("peak_tflops"),
            utilization_pct=0.0,
        )
        for index in range(count)
    ]


def profile_capabilities(data: dict) -> Capabilities:
    """What the capability rules say a hardware profile's device can do (tests compare this
    with the flags the profile file states)."""
    return vendor_of(data["vendor"]).capabilities(data)
