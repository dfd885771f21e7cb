"""NVIDIA GPUs through NVML (nvidia-ml-py), and what a compute capability can do."""

from __future__ import annotations

from tui.hardware.device import MIB, Capabilities, Device, gpu_device


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
            import pynvml as nvml
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
