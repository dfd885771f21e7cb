"""Live GPU use while a run trains: memory and utilisation per GPU, sampled by each vendor's live
usage (tui.hardware.vendor: NVML for NVIDIA, amd-smi for AMD), the first that reads any GPU."""

from __future__ import annotations

from tui.hardware import vendors
from tui.hardware.device import CommandRunner, GpuSample, run_command
from tui.hardware.vendor import Boundaries

__all__ = ["GpuSample", "UsageSampler"]


class UsageSampler:
    """Memory, utilisation, temperature and power of GPUs, sampled on demand (the monitor calls
    it once a second from a worker thread). The vendors are asked in the registry's order and the
    first that reads any GPU answers (NVML stays initialised between samples; AMD GPUs are read with
    `amd-smi metric`). Samples that cannot be read are left out, never raised."""

    def __init__(self, indices: list[int] | None = None, nvml=None, run: CommandRunner = run_command):
        self.indices = indices
        boundaries = Boundaries(nvml=nvml, run=run)
        self.readers = [usage for vendor in vendors.VENDORS.values()
                        if (usage := vendor.live_usage(boundaries)) is not None]
        self.peak_mib: dict[int, int] = {}

    def sample(self) -> list[GpuSample]:
        samples = []
        for reader in self.readers:
            samples = reader.sample()
            if samples:
                break
        if self.indices is not None:
            samples = [s for s in samples if s.index in self.indices]
        for s in samples:
            self.peak_mib[s.index] = max(self.peak_mib.get(s.index, 0), s.memory_used_mib)
        return samples

    def close(self) -> None:
        for reader in self.readers:
            reader.close()
