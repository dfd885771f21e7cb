"""The vendor seam: everything sft-tui asks of a kind of device, as one protocol. Each vendor is one
module (nvidia.py, amd.py, apple.py, cpu.py) that defines `VENDOR`, and the registry
(tui/hardware/vendors.py) lists them; the stages ask the registry (`vendor_of(device.vendor)`)
instead of spelling a vendor's name, so a new vendor is one module plus one registry entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from tui.hardware.device import Capabilities, CommandRunner, Device, GpuSample, run_command, sysctl


@dataclass(frozen=True)
class Boundaries:
    """What the probes and the usage samplers talk to, which tests fake (and nothing else): NVML
    (the pynvml module), a command runner (amd-smi, rocm-smi), sysctl, and the platform's names."""

    nvml: Any = None
    run: CommandRunner = run_command
    sysctl: Callable[[str], str] = sysctl
    system: str | None = None  # platform.system() when None
    machine: str | None = None  # platform.machine() when None


class LiveUsage(Protocol):
    """A vendor's live use of its GPUs while a run trains (tui.hardware.usage asks each in turn)."""

    def sample(self) -> list[GpuSample]:
        """One sample per GPU; [] when none can be read (never raises)."""
        ...

    def close(self) -> None:
        ...


@runtime_checkable
class Vendor(Protocol):
    name: str  # as Device.vendor, hardware profiles and plan.json spell it
    visible_devices: str | None  # the variable that chooses the GPUs a run sees; None: no choice to make
    liger: bool  # Liger's Triton kernels run on it
    multi_gpu: bool  # torchrun and DeepSpeed spread one step over several of its devices

    def probe(self, boundaries: Boundaries) -> tuple[list[Device], list[str]]:
        """The devices of this vendor on this machine, and one sentence per problem (never raises)."""
        ...

    def capabilities(self, facts: dict) -> Capabilities:
        """What a device can do (bf16, fp16, flash-attention 2, bitsandbytes), decided from the facts a
        probe or a hardware profile states (compute_capability, gfx)."""
        ...

    def live_usage(self, boundaries: Boundaries) -> LiveUsage | None:
        """A sampler of its GPUs' live use, or None where there is none to read."""
        ...

    def peak_tflops(self, device: Device) -> dict[str, float]:
        """{precision: dense peak TFLOPS} of a device known by name; {} when its speed is unknown."""
        ...

    def memory_for_training_mib(self, device: Device) -> float:
        """The memory one training process may use on the device."""
        ...
