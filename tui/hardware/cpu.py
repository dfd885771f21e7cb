"""The CPU: cores this process may use and the RAM, always listed as a last resort; and the vendor
seam's answers for it (VENDOR, listed last in tui/hardware/vendors.py)."""

from __future__ import annotations

import os
import platform

from tui.hardware.device import MIB, Capabilities, Device, sysctl

CPU_CAPABILITIES = Capabilities(False, False, False, False, "CPU: trains in fp32")


def read_meminfo(path: str = "/proc/meminfo") -> tuple[int, int]:
    """(total, available) RAM in MiB."""
    values = {}
    with open(path) as f:
        for line in f:
            key, _, rest = line.partition(":")
            values[key] = int(rest.split()[0]) // 1024  # kB -> MiB
    return values["MemTotal"], values.get("MemAvailable", values.get("MemFree", 0))


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def probe_cpu() -> Device:
    cores = usable_cpus()
    try:
        total, available = read_meminfo()
    except OSError:
        total = available = int(sysctl("hw.memsize") or 0) // MIB
    caps = CPU_CAPABILITIES
    return Device(
        index=0,
        vendor="cpu",
        name=_cpu_name(),
        memory_total_mib=total,
        memory_free_mib=available,
        memory_used_mib=total - available,
        bf16=caps.bf16,
        fp16=caps.fp16,
        flash_attn2=caps.flash_attn2,
        bitsandbytes=caps.bitsandbytes,
        free=True,
        cpu_cores=cores,
    )


class Cpu:
    name = "cpu"
    visible_devices = None
    liger = False
    multi_gpu = False  # planned as one device

    def probe(self, boundaries) -> tuple[list[Device], list[str]]:
        return [probe_cpu()], []

    def capabilities(self, facts: dict) -> Capabilities:
        return CPU_CAPABILITIES

    def live_usage(self, boundaries) -> None:
        return None

    def peak_tflops(self, device: Device) -> dict[str, float]:
        return {}

    def memory_for_training_mib(self, device: Device) -> float:
        return device.memory_free_mib


VENDOR = Cpu()
