"""What hardware there is to train on: detected on this machine, or from a hardware profile.

Detection runs one probe per vendor (NVIDIA through NVML, AMD through the amd-smi or rocm-smi
command, Apple silicon, the CPU). A probe that fails adds one line to `problems` and the other
probes still run. The probes take their library or command as a parameter, so tests fake only
that boundary (pynvml functions, the amd-smi JSON), never this module's logic.

What a device can do (bf16, fp16, flash-attention-2, bitsandbytes) is decided in one place per
vendor: `nvidia_capabilities`, `amd_capabilities`, `apple_capabilities`, `CPU_CAPABILITIES`.
Hardware profiles carry the same flags, and a test checks they agree with these functions.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

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
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def is_gpu(self) -> bool:
        return self.vendor != "cpu"


@dataclass
class Detection:
    devices: list[Device]
    problems: list[str]

    @property
    def gpus(self) -> list[Device]:
        return [d for d in self.devices if d.is_gpu]

    def to_json(self) -> dict[str, Any]:
        return {"devices": [d.to_json() for d in self.devices], "problems": self.problems}


# --- capabilities: the one place each vendor's flags are decided ---------------------------


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


# ROCm architectures sft-tui knows. gfx906 (MI50/MI60, Radeon VII) has no bf16 and its fp16
# training fails numerically (scenario S6), so it trains in fp32 without flash attention or
# bitsandbytes. Unknown architectures get the cautious flags of the oldest one.
_AMD_ARCHS: dict[str, tuple[Capabilities, str]] = {
    "gfx906": (
        Capabilities(False, False, False, False, "gfx906 (Vega 20): no bf16, fp16 unreliable"),
        "MI50/MI60, Radeon VII",
    ),
    "gfx908": (
        Capabilities(True, True, False, False, "gfx908 (CDNA 1): bf16; no flash-attn 2 or bitsandbytes"),
        "MI100",
    ),
    "gfx90a": (Capabilities(True, True, True, True, "gfx90a (CDNA 2)"), "MI200"),
    "gfx942": (Capabilities(True, True, True, True, "gfx942 (CDNA 3)"), "MI300"),
    "gfx1100": (
        Capabilities(True, True, False, True, "gfx1100 (RDNA 3): bf16; no flash-attn 2"),
        "RX 7900",
    ),
}


def normalize_gfx(value: str) -> str:
    """'gfx906:sramecc+:xnack-' -> 'gfx906'; '9.0.6' (HSA style) -> 'gfx906'."""
    value = str(value).strip().lower()
    if re.fullmatch(r"\d+\.\d+\.\d+", value):
        major, minor, step = value.split(".")
        return f"gfx{major}{minor}{int(step):x}"
    return value.split(":", 1)[0]


def amd_capabilities(gfx: str) -> Capabilities:
    gfx = normalize_gfx(gfx)
    if gfx in _AMD_ARCHS:
        return _AMD_ARCHS[gfx][0]
    return Capabilities(
        False, True, False, False, f"{gfx}: architecture unknown to sft-tui, assumed fp16 only"
    )


def apple_capabilities() -> Capabilities:
    # MPS has fp16 and bf16 (macOS 14+); no flash-attn 2 and no bitsandbytes kernels.
    return Capabilities(True, True, False, False, "Apple silicon (MPS)")


CPU_CAPABILITIES = Capabilities(False, False, False, False, "CPU: trains in fp32")


def is_free(used_mib: int, utilization_pct: float | None) -> bool:
    return used_mib < FREE_MAX_USED_MIB and (utilization_pct or 0) < FREE_MAX_UTILIZATION_PCT


def _gpu_device(*, caps: Capabilities, used_mib: int, utilization_pct, **fields) -> Device:
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


# --- NVIDIA (NVML) ----------------------------------------------------------------------------


def _text(value) -> str:
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
        return [], [f"NVIDIA: {_nvml_init_problem(err)}"]
    devices, problems = [], []
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
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


def _nvml_init_problem(err: Exception) -> str:
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
    return _gpu_device(
        caps=nvidia_capabilities(cc),
        index=index,
        vendor="nvidia",
        name=_text(nvml.nvmlDeviceGetName(handle)),
        uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
        memory_total_mib=memory.total // MIB,
        memory_free_mib=memory.free // MIB,
        used_mib=memory.used // MIB,
        utilization_pct=utilization,
        compute_capability=cc,
        driver_version=driver,
        cuda_driver_version=cuda_version,
        processes=processes,
    )


# --- AMD (amd-smi, falling back to rocm-smi) ---------------------------------------------------

CommandRunner = Callable[[list[str]], str]


class ProbeError(Exception):
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


def _load_json(text: str, what: str):
    try:
        return json.loads(text)
    except ValueError:
        raise ProbeError(f"{what} printed output that is not JSON") from None


def _number(value, unit_hint: str = "") -> float | None:
    """A number out of the shapes amd-smi versions use: 5, "5", "5 %", "32768 MB",
    {"value": 5, "unit": "MB"}; None for "N/A"."""
    if isinstance(value, dict):
        return _number(value.get("value"), value.get("unit", unit_hint))
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        number, unit = float(value), unit_hint
    else:
        match = re.match(r"\s*([-+]?\d+(?:\.\d+)?)\s*([A-Za-z%]*)", str(value))
        if not match:
            return None
        number, unit = float(match.group(1)), match.group(2) or unit_hint
    scale = {"b": 1 / MIB, "kb": 1 / 1024, "kib": 1 / 1024, "gb": 1024, "gib": 1024}
    return number * scale.get(unit.lower(), 1)


def _first(mapping: dict, *keys):
    for key in keys:
        if isinstance(mapping, dict) and mapping.get(key) not in (None, "N/A", ""):
            return mapping[key]
    return None


def _amd_smi_records(data) -> list[dict]:
    # ROCm 6.4+ wraps the list as {"gpu_data": [...]}; earlier versions print the list.
    if isinstance(data, dict):
        data = data.get("gpu_data", [data])
    if not isinstance(data, list):
        raise ProbeError("amd-smi printed JSON of an unexpected shape")
    return [record for record in data if isinstance(record, dict)]


def probe_amd(run: CommandRunner = run_command) -> tuple[list[Device], list[str]]:
    """GPUs seen by amd-smi (rocm-smi when amd-smi is absent or fails)."""
    try:
        return _probe_amd_smi(run), []
    except ProbeError as amd_smi_error:
        try:
            return _probe_rocm_smi(run), []
        except ProbeError as rocm_smi_error:
            if "not found" in str(amd_smi_error) and "not found" in str(rocm_smi_error):
                return [], ["AMD: no ROCm tools found (neither amd-smi nor rocm-smi)"]
            return [], [f"AMD: {amd_smi_error}; {rocm_smi_error}"]


def _probe_amd_smi(run: CommandRunner) -> list[Device]:
    static = _amd_smi_records(
        _load_json(run(["amd-smi", "static", "--asic", "--vram", "--json"]), "amd-smi static")
    )
    try:
        metric_records = _amd_smi_records(
            _load_json(run(["amd-smi", "metric", "--usage", "--mem-usage", "--json"]), "amd-smi metric")
        )
    except ProbeError:
        metric_records = []  # usage is nice to have; static info is enough to plan
    metrics = {record.get("gpu", i): record for i, record in enumerate(metric_records)}
    devices = []
    for position, record in enumerate(static):
        index = int(record.get("gpu", position))
        asic, vram = record.get("asic", {}), record.get("vram", {})
        metric = metrics.get(index, {})
        mem_usage, usage = metric.get("mem_usage", {}), metric.get("usage", {})
        gfx = normalize_gfx(_first(asic, "target_graphics_version", "gfx_version") or "unknown")
        total = _number(_first(mem_usage, "total_vram"), "MB") or _number(
            _first(vram, "size", "vram_size", "vram_size_mb"), "MB"
        )
        used = _number(_first(mem_usage, "used_vram"), "MB") or 0
        utilization = _number(_first(usage, "gfx_activity", "gfx_usage", "gfx_busy_inst"))
        devices.append(_amd_device(index, _first(asic, "market_name", "name") or "AMD GPU", gfx, total, used, utilization))
    return devices


def _probe_rocm_smi(run: CommandRunner) -> list[Device]:
    data = _load_json(
        run(["rocm-smi", "--showproductname", "--showmeminfo", "vram", "--showuse", "--json"]),
        "rocm-smi",
    )
    if not isinstance(data, dict):
        raise ProbeError("rocm-smi printed JSON of an unexpected shape")
    devices = []
    for key, card in data.items():
        match = re.fullmatch(r"card(\d+)", key)
        if not match or not isinstance(card, dict):
            continue  # "system" and other non-card entries
        total = _number(card.get("VRAM Total Memory (B)"), "B")
        used = _number(card.get("VRAM Total Used Memory (B)"), "B") or 0
        gfx = normalize_gfx(_first(card, "GFX Version", "gfx_version") or "unknown")
        name = _first(card, "Card Series", "Card series", "Device Name", "Card model") or "AMD GPU"
        devices.append(_amd_device(int(match.group(1)), name, gfx, total, used, _number(card.get("GPU use (%)"))))
    return devices


def _amd_device(index, name, gfx, total_mib, used_mib, utilization) -> Device:
    total, used = int(total_mib or 0), int(used_mib or 0)
    device = _gpu_device(
        caps=amd_capabilities(gfx),
        index=index,
        vendor="amd",
        name=str(name),
        gfx=gfx,
        memory_total_mib=total,
        memory_free_mib=max(total - used, 0),
        used_mib=used,
        utilization_pct=utilization,
    )
    if gfx not in _AMD_ARCHS:
        device.notes.append(amd_capabilities(gfx).why)
    return device


# --- Apple silicon and CPU ---------------------------------------------------------------------


def probe_apple(system: str | None = None, machine: str | None = None, sysctl=None) -> list[Device]:
    """Apple silicon's GPU (MPS) shares the machine's memory; report it as one device."""
    if (system or platform.system()) != "Darwin" or (machine or platform.machine()) != "arm64":
        return []
    sysctl = sysctl or _sysctl
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


def _sysctl(key: str) -> str:
    return subprocess.run(["sysctl", "-n", key], capture_output=True, text=True, timeout=5).stdout.strip()


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
        total = available = int(_sysctl("hw.memsize") or 0) // MIB
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


# --- all together ------------------------------------------------------------------------------


def detect(nvml=None, run: CommandRunner = run_command) -> Detection:
    """Every probe, in order NVIDIA, AMD, Apple, CPU; the CPU is always listed last."""
    devices, problems = [], []
    for probe in (lambda: probe_nvidia(nvml), lambda: probe_amd(run)):
        found, said = probe()
        devices += found
        problems += said
    try:
        devices += probe_apple()
    except Exception as err:
        problems.append(f"Apple: could not read the machine ({err})")
    devices.append(probe_cpu())
    return Detection(devices=devices, problems=problems)


def summary_line(detection: Detection) -> str:
    gpus = detection.gpus
    cpu = next(d for d in detection.devices if d.vendor == "cpu")
    cpu_text = f"CPU with {cpu.cpu_cores} cores and {cpu.memory_total_mib / 1024:.0f} GiB RAM"
    if not gpus:
        return f"No GPU found; {cpu_text}."
    names = ", ".join(f"{d.name} ({d.memory_total_mib / 1024:.0f} GiB)" for d in gpus)
    return f"{len(gpus)} GPU{'s' if len(gpus) > 1 else ''}: {names}; {cpu_text}."


# --- planning for another machine --------------------------------------------------------------


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
            utilization_pct=0.0,
        )
        for index in range(count)
    ]


def profile_capabilities(data: dict) -> Capabilities:
    """What the capability rules say a hardware profile's device can do (tests compare this
    with the flags the profile file states)."""
    vendor = data["vendor"]
    if vendor == "nvidia":
        return nvidia_capabilities(data["compute_capability"])
    if vendor == "amd":
        return amd_capabilities(data["gfx"])
    if vendor == "apple":
        return apple_capabilities()
    return CPU_CAPABILITIES


# --- live usage while a run trains ---------------------------------------------------------------


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
            records = _amd_smi_records(_load_json(
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
                int(_number(_first(mem, "used_vram"), "MB") or 0), int(_number(_first(mem, "total_vram"), "MB") or 0),
                _number(_first(usage, "gfx_activity", "gfx_usage")),
                _number(_first(temperature, "hotspot", "edge")),
                _number(_first(power, "socket_power", "average_socket_power"))))
        return samples

    def close(self) -> None:
        if self._nvml_ready:
            try:
                self.nvml.nvmlShutdown()
            except Exception:
                pass
            self._nvml_ready = False
