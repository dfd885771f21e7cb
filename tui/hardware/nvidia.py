"""NVIDIA GPUs through NVML (nvidia-ml-py), what a compute capability can do, their live use, and
the vendor seam's answers for them (VENDOR, listed in tui/hardware/vendors.py)."""

from __future__ import annotations

from tui.hardware.device import MIB, Capabilities, Device, GpuSample, gpu_device
from tui.hardware.gpu_peaks import table_peaks


def parse_compute_capability(cc: str) -> tuple[int, int]:
    major, _, minor = cc.partition(".")
    return int(major), int(minor or 0)


def nvidia_capabilities(cc: str) -> Capabilities:
    major, minor = parse_compute_capability(cc)
    return Capabilities(
        # Ampere (8.0) and newer have bf16 tensor cores; flash-attn 2 needs Ampere too.
        bf16=major >= 8,
        # Half precision autocast works from Pascal (6.0); tensor cores from Volta (7.0).
        fp16=(major, minor) >= (6, 0),
        flash_attn2=major >= 8,
        # bitsandbytes' CUDA kernels support compute capability 5.0 and newer.
        bitsandbytes=(major, minor) >= (5, 0),
        why=f"NVIDIA compute capability {major}.{minor}",
    )


def nvml_text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def probe_nvidia(nvml=None) -> tuple[list[Device], list[str]]:
    """GPUs seen by NVML. `nvml` is the pynvml module (tests pass a fake with its functions)."""
    if nvml is None:
        try:
            import pynvml

            nvml = pynvml
        except ImportError:
            return [], ["NVIDIA: nvidia-ml-py (pynvml) is not installed"]
    try:
        nvml.nvmlInit()
    except Exception as err:  # pynvml.NVMLError subclasses; a missing library is one of them
        return [], [f"NVIDIA: {nvml_init_problem(err)}"]
    devices, problems = [], []
    try:
        driver = nvml_text(nvml.nvmlSystemGetDriverVersion())
        cuda = nvml.nvmlSystemGetCudaDriverVersion()  # e.g. 12040 for CUDA 12.4
        cuda_version = f"{cuda // 1000}.{cuda % 1000 // 10}"
        for index in range(nvml.nvmlDeviceGetCount()):
            try:
                devices.append(_nvml_device(nvml, index, driver, cuda_version))
            except Exception as err:
                problems.append(f"NVIDIA: GPU {index} could not be read ({err})")
    except Exception as err:
        problems.append(f"NVIDIA: NVML query failed ({err})")
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass
    return devices, problems


def nvml_init_problem(err: Exception) -> str:
    text = str(err)
    if "Not Found" in text or "not found" in text:
        return f"no driver found ({text})"
    if "mismatch" in text.lower():
        return f"driver/library version mismatch ({text}); a reboot after a driver update usually fixes it"
    if "Driver Not Loaded" in text:
        return f"driver not loaded ({text})"
    return f"NVML could not start ({text})"


def _nvml_device(nvml, index: int, driver: str, cuda_version: str) -> Device:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
    cc = f"{major}.{minor}"
    try:
        utilization = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    except Exception:  # not supported on some boards (and MIG instances)
        utilization = None
    try:
        processes = [
            {"pid": p.pid, "used_memory_mib": (p.usedGpuMemory or 0) // MIB}
            for p in nvml.nvmlDeviceGetComputeRunningProcesses(handle)
        ]
    except Exception:
        processes = []
    return gpu_device(
        caps=nvidia_capabilities(cc),
        index=index,
        vendor="nvidia",
        name=nvml_text(nvml.nvmlDeviceGetName(handle)),
        uuid=nvml_text(nvml.nvmlDeviceGetUUID(handle)),
        memory_total_mib=memory.total // MIB,
        memory_free_mib=memory.free // MIB,
        used_mib=memory.used // MIB,
        utilization_pct=utilization,
        compute_capability=cc,
        driver_version=driver,
        cuda_driver_version=cuda_version,
        processes=processes,
    )


class NvmlUsage:
    """Memory, utilisation, temperature and power of NVIDIA GPUs through NVML, which stays
    initialised between samples; what cannot be read is left out, never raised."""

    def __init__(self, nvml=None):
        self.nvml = nvml
        self._ready = False

    def _start(self) -> bool:
        if self._ready:
            return True
        try:
            if self.nvml is None:
                import pynvml

                self.nvml = pynvml
            self.nvml.nvmlInit()
            self._ready = True
        except Exception:
            self.nvml = None
        return self._ready

    def sample(self) -> list[GpuSample]:
        if not self._start():
            return []
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

    def process_memory_mib(self, pids) -> dict[int, int] | None:
        """Per GPU index, the memory (MiB) NVML says the given processes use (nvmlDeviceGetComputeRunningProcesses'
        usedGpuMemory), for the GPUs any of them is on; None when NVML cannot be read here at all."""
        if not self._start():
            return None
        nvml, used = self.nvml, {}
        try:
            count = nvml.nvmlDeviceGetCount()
        except Exception:
            return None
        for index in range(count):
            try:
                mine = [p for p in nvml.nvmlDeviceGetComputeRunningProcesses(nvml.nvmlDeviceGetHandleByIndex(index))
                        if p.pid in pids]
            except Exception:  # this GPU cannot say (MIG, permissions): the others still can
                continue
            if mine:
                used[index] = sum((p.usedGpuMemory or 0) for p in mine) // MIB
        return used

    def close(self) -> None:
        if self._ready:
            try:
                self.nvml.nvmlShutdown()
            except Exception:
                pass
            self._ready = False


class Nvidia:
    name = "nvidia"
    visible_devices = "CUDA_VISIBLE_DEVICES"
    liger = True  # Triton kernels
    multi_gpu = True

    def probe(self, boundaries) -> tuple[list[Device], list[str]]:
        return probe_nvidia(boundaries.nvml)

    def capabilities(self, facts: dict) -> Capabilities:
        return nvidia_capabilities(facts["compute_capability"])

    def live_usage(self, boundaries) -> NvmlUsage:
        return NvmlUsage(boundaries.nvml)

    def peak_tflops(self, device: Device) -> dict[str, float]:
        return table_peaks(device)

    def memory_for_training_mib(self, device: Device) -> float:
        return device.memory_free_mib


VENDOR = Nvidia()
