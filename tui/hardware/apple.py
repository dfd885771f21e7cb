"""Apple silicon (MPS): unified memory shared with the CPU, and the vendor seam's answers for it
(VENDOR, listed in tui/hardware/vendors.py)."""

from __future__ import annotations

import platform
from collections.abc import Callable

from tui.hardware.device import MIB, Capabilities, Device, sysctl as read_sysctl

GPU_SHARE = 0.75  # of unified memory that MPS lets one process use by default


def apple_capabilities() -> Capabilities:
    # MPS has fp16 and bf16 (macOS 14+); no flash-attn 2 and no bitsandbytes kernels.
    return Capabilities(True, True, False, False, "Apple silicon (MPS)")


def probe_apple(system: str | None = None, machine: str | None = None,
                sysctl: Callable[[str], str] = read_sysctl) -> list[Device]:
    """Apple silicon's GPU (MPS) shares the machine's memory; report it as one device. `sysctl`
    answers a key as `sysctl -n KEY` prints it (tests pass a fake)."""
    if (system or platform.system()) != "Darwin" or (machine or platform.machine()) != "arm64":
        return []
    total_mib = int(sysctl("hw.memsize")) // MIB
    caps = apple_capabilities()
    return [
        Device(
            index=0,
            vendor="apple",
            name=sysctl("machdep.cpu.brand_string") or "Apple silicon",
            memory_total_mib=total_mib,
            memory_free_mib=total_mib,
            memory_used_mib=0,
            bf16=caps.bf16,
            fp16=caps.fp16,
            flash_attn2=caps.flash_attn2,
            bitsandbytes=caps.bitsandbytes,
            free=True,
            notes=["unified memory: the GPU shares it with the system"],
        )
    ]


class Apple:
    name = "apple"
    visible_devices = None  # one MPS device: nothing to choose
    liger = False  # no Triton
    multi_gpu = False

    def probe(self, boundaries) -> tuple[list[Device], list[str]]:
        try:
            return probe_apple(boundaries.system, boundaries.machine, boundaries.sysctl), []
        except Exception as err:
            return [], [f"Apple: could not read the machine ({err})"]

    def capabilities(self, facts: dict) -> Capabilities:
        return apple_capabilities()

    def live_usage(self, boundaries) -> None:
        return None

    def peak_tflops(self, device: Device) -> dict[str, float]:
        return {}

    def memory_for_training_mib(self, device: Device) -> float:
        return device.memory_total_mib * GPU_SHARE


VENDOR = Apple()
