"""Live GPU use while a run trains: memory and utilisation per GPU, sampled through NVML or amd-smi."""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from typing import Any

from tui.hardware.amd import amd_smi_records, first, load_json, parse_number
from tui.hardware.device import MIB, CommandRunner, ProbeError, run_command


@dataclass
class GpuSample:
    index: int
    vendor: str
    memory_used_mib: int
    memory_total_mib: int
    utilization_pct: float | None = None
    temperature_c: float | None = None
    power_w: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class UsageSampler:
    """Memory, utilisation, temperature and power of GPUs, sampled on demand (the monitor calls
    it once a second from a worker thread). NVML stays initialised between samples; AMD GPUs are
    read with `amd-smi metric`. Samples that cannot be read are left out, never raised."""

    def __init__(self, indices: list[int] | None = None, nvml=None, run: CommandRunner = run_command):
        self.indices = indices
        self.run = run
        self.nvml = nvml
        self._nvml_ready = False
        self._amd = shutil.which("amd-smi") is not None or run is not run_command
        self.peak_mib: dict[int, int] = {}

    def _start_nvml(self) -> bool:
        if self._nvml_ready:
            return True
        try:
            if self.nvml is None:
                import pynvml

                self.nvml = pynvml
            self.nvml.nvmlInit()
            self._nvml_ready = True
        except Exception:
            self.nvml = None
        return self._nvml_ready

    def sample(self) -> list[GpuSample]:
        samples = self._sample_nvidia() if self._start_nvml() else []
        if not samples and self._amd:
            samples = self._sample_amd()
        if self.indices is not None:
            samples = [s for s in samples if s.index in self.indices]
        for s in samples:
            self.peak_mib[s.index] = max(self.peak_mib.get(s.index, 0), s.memory_used_mib)
        return samples

    def _sample_nvidia(self) -> list[GpuSample]:
        nvml, samples = self.nvml, []
        try:
            count = nvml.nvmlDeviceGetCount()
        except Exception:
            return []
        for index in range(count):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            except Exception:
                continue
            sample = GpuSample(index, "nvidia", memory.used // MIB, memory.total // MIB)
            for attr, read in (("utilization_pct", lambda: float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)),
                               ("temperature_c", lambda: float(nvml.nvmlDeviceGetTemperature(handle, 0))),
                               ("power_w", lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000)):
                try:
                    setattr(sample, attr, read())
                except Exception:  # not supported on this board
                    pass
            samples.append(sample)
        return samples

    def _sample_amd(self) -> list[GpuSample]:
        try:
            records = amd_smi_records(load_json(
                self.run(["amd-smi", "metric", "--usage", "--mem-usage", "--temperature", "--power", "--json"]),
                "amd-smi metric"))
        except ProbeError:
            return []
        samples = []
        for position, record in enumerate(records):
            mem, usage = record.get("mem_usage", {}), record.get("usage", {})
            temperature, power = record.get("temperature", {}), record.get("power", {})
            samples.append(GpuSample(
                int(record.get("gpu", position)), "amd",
                int(parse_number(first(mem, "used_vram"), "MB") or 0), int(parse_number(first(mem, "total_vram"), "MB") or 0),
                parse_number(first(usage, "gfx_activity", "gfx_usage")),
                parse_number(first(temperature, "hotspot", "edge")),
                parse_number(first(power, "socket_power", "average_socket_power"))))
        return samples

    def close(self) -> None:
        if self._nvml_ready:
            try:
                self.nvml.nvmlShutdown()
            except Exception:
                pass
            self._nvml_ready = False
