"""Apple silicon (MPS): unified memory shared with the CPU."""

from __future__ import annotations

import platform
from collections.abc import Callable

from tui.hardware.device import MIB, Capabilities, Device, sysctl as read_sysctl


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
