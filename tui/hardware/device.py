"""A device to train on, as detection or a hardware profile reports it (memory, use, what it
can do), and what the probes share: running an SMI command with a timeout."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from tui.common.errors import SftTuiError

MIB = 1024 * 1024


# A GPU counts as free when it holds less than this much memory and is this idle.
FREE_MAX_USED_MIB = 1024


FREE_MAX_UTILIZATION_PCT = 5


AMD_SMI_TIMEOUT_S = 10


@dataclass(frozen=True)
class Capabilities:
    bf16: bool
    fp16: bool
    flash_attn2: bool
    bitsandbytes: bool
    why: str = ""  # the rule that decided, shown to the user where it matters


@dataclass
class Device:
    index: int
    vendor: str  # nvidia | amd | apple | cpu
    name: str
    memory_total_mib: int
    memory_free_mib: int
    memory_used_mib: int
    bf16: bool
    fp16: bool
    flash_attn2: bool
    bitsandbytes: bool
    free: bool
    compute_capability: str | None = None  # NVIDIA, "8.9"
    gfx: str | None = None  # AMD, "gfx906"
    utilization_pct: float | None = None
    uuid: str | None = None
    driver_version: str | None = None
    cuda_driver_version: str | None = None
    processes: list[dict] = field(default_factory=list)
    cpu_cores: int | None = None  # CPU
    peak_tflops: dict[str, float] | None = None  # a hardware profile's dense peaks {bf16, fp16, fp32}
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def is_gpu(self) -> bool:
        return self.vendor != "cpu"


@dataclass
class GpuSample:
    """One GPU's live use while a run trains (tui.hardware.usage)."""

    index: int
    vendor: str
    memory_used_mib: int
    memory_total_mib: int
    utilization_pct: float | None = None
    temperature_c: float | None = None
    power_w: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Detection:
    devices: list[Device]
    problems: list[str]

    @property
    def gpus(self) -> list[Device]:
        return [d for d in self.devices if d.is_gpu]

    @property
    def host_ram_gib(self) -> float | None:
        """This machine's RAM (the CPU device's memory), for the host RAM check."""
        cpu = next((d for d in self.devices if not d.is_gpu), None)
        return cpu.memory_total_mib / 1024 if cpu and cpu.memory_total_mib else None

    def to_json(self) -> dict[str, Any]:
        return {"devices": [d.to_json() for d in self.devices], "problems": self.problems}


def is_free(used_mib: int, utilization_pct: float | None) -> bool:
    return used_mib < FREE_MAX_USED_MIB and (utilization_pct or 0) < FREE_MAX_UTILIZATION_PCT


def gpu_device(*, caps: Capabilities, used_mib: int, utilization_pct, **fields) -> Device:
    return Device(
        bf16=caps.bf16,
        fp16=caps.fp16,
        flash_attn2=caps.flash_attn2,
        bitsandbytes=caps.bitsandbytes,
        memory_used_mib=used_mib,
        utilization_pct=utilization_pct,
        free=is_free(used_mib, utilization_pct),
        **fields,
    )


CommandRunner = Callable[[list[str]], str]


class ProbeError(SftTuiError):
    """A probe step failed; the message is the user-facing sentence."""


def run_command(argv: list[str]) -> str:
    """Run an SMI command with its timeout; its stdout, or ProbeError with one clear sentence."""
    if shutil.which(argv[0]) is None:
        raise ProbeError(f"{argv[0]} not found")
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=AMD_SMI_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise ProbeError(f"`{' '.join(argv)}` timed out after {AMD_SMI_TIMEOUT_S} s") from None
    except OSError as err:
        raise ProbeError(f"`{' '.join(argv)}` could not run ({err.strerror})") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise ProbeError(
            f"`{' '.join(argv)}` failed with exit {done.returncode}"
            + (f": {detail[-1]}" if detail else "")
        )
    return done.stdout


def sysctl(key: str) -> str:
    return subprocess.run(["sysctl", "-n", key], capture_output=True, text=True, timeout=5).stdout.strip()
