"""GPU detection. Only the library boundary is faked: pynvml's functions (raising pynvml's own
error classes), and the amd-smi / rocm-smi commands as executables on PATH that print JSON in
the shapes those tools print. Everything between that boundary and the output is the real code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pynvml
import pytest

from tui.hardware import device as hardware_device
from tui.hardware.amd import amd_capabilities, normalize_gfx, probe_amd
from tui.hardware.cpu import probe_cpu
from tui.hardware.detect import detect
from tui.hardware.nvidia import nvidia_capabilities, probe_nvidia

MIB = 1024 * 1024
BIN = Path(sys.executable).parent


# --- a fake NVML: pynvml's function names and return shapes ---------------------------------


class FakeNVML:
    def __init__(self, gpus=(), driver="550.54.15", cuda=12040, init_error=None, name_as_bytes=False):
        self.gpus = list(gpus)
        self.driver, self.cuda, self.init_error = driver, cuda, init_error
        self.name_as_bytes = name_as_bytes
        self.shut_down = False

    def nvmlInit(self):
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)

    def nvmlShutdown(self):
        self.shut_down = True

    def nvmlSystemGetDriverVersion(self):
        return self.driver

    def nvmlSystemGetCudaDriverVersion(self):
        return self.cuda

    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index):
        return self.gpus[index]

    def nvmlDeviceGetName(self, gpu):
        return gpu["name"].encode() if self.name_as_bytes else gpu["name"]

    def nvmlDeviceGetUUID(self, gpu):
        return gpu["uuid"]

    def nvmlDeviceGetMemoryInfo(self, gpu):
        total, used = gpu["total_mib"] * MIB, gpu["used_mib"] * MIB
        return SimpleNamespace(total=total, used=used, free=total - used)

    def nvmlDeviceGetUtilizationRates(self, gpu):
        if gpu.get("util") is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return SimpleNamespace(gpu=gpu["util"], memory=0)

    def nvmlDeviceGetCudaComputeCapability(self, gpu):
        return gpu["cc"]

    def nvmlDeviceGetComputeRunningProcesses(self, gpu):
        return [SimpleNamespace(pid=pid, usedGpuMemory=mib * MIB) for pid, mib in gpu.get("procs", [])]


def gpu(name="NVIDIA GeForce RTX 4080", cc=(8, 9), total_mib=16376, used_mib=310, util=0, procs=(), uuid=None):
    return dict(name=name, cc=cc, total_mib=total_mib, used_mib=used_mib, util=util, procs=list(procs),
                uuid=uuid or f"GPU-{abs(hash(name)) % 10**8:08d}")


def test_one_nvidia_gpu():
    nvml = FakeNVML([gpu()])
    devices, problems = probe_nvidia(nvml)
    assert problems == []
    (d,) = devices
    assert (d.vendor, d.name, d.index) == ("nvidia", "NVIDIA GeForce RTX 4080", 0)
    assert (d.memory_total_mib, d.memory_used_mib, d.memory_free_mib) == (16376, 310, 16066)
    assert d.compute_capability == "8.9"
    assert (d.bf16, d.fp16, d.flash_attn2, d.bitsandbytes) == (True, True, True, True)
    assert d.free is True
    assert (d.driver_version, d.cuda_driver_version) == ("550.54.15", "12.4")
    assert nvml.shut_down


def test_several_gpus_one_busy_and_bytes_names():
    nvml = FakeNVML(
        [
            gpu("Tesla V100-SXM2-32GB", (7, 0), 32768, 300, 0),
            gpu("Tesla V100-SXM2-32GB", (7, 0), 32768, 20_000, 97, procs=[(4242, 19_700)]),
            gpu("Tesla T4", (7, 5), 15360, 2000, 0),  # idle but holding 2 GiB: not free
        ],
        name_as_bytes=True,
    )
    devices, problems = probe_nvidia(nvml)
    assert problems == []
    assert [d.index for d in devices] == [0, 1, 2]
    assert [d.free for d in devices] == [True, False, False]
    assert devices[1].processes == [{"pid": 4242, "used_memory_mib": 19_700}]
    assert devices[1].utilization_pct == 97
    assert all(d.name.startswith("Tesla") for d in devices)
    # Volta and Turing: fp16 but no bf16 and no flash-attn 2.
    assert [(d.bf16, d.fp16, d.flash_attn2) for d in devices] == [(False, True, False)] * 3


def test_utilization_not_supported_is_tolerated():
    (d,), problems = probe_nvidia(FakeNVML([gpu(util=None)]))
    assert problems == [] and d.utilization_pct is None and d.free


@pytest.mark.parametrize(
    "error, expected",
    [
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "NVIDIA: no driver found (NVML Shared Library Not Found)"),
        (pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH, "NVIDIA: driver/library version mismatch (RM has detected an NVML/RM version mismatch.)"),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "NVIDIA: driver not loaded (Driver Not Loaded)"),
    ],
)
def test_nvml_start_failures_are_one_clear_line(error, expected):
    devices, problems = probe_nvidia(FakeNVML(init_error=error))
    assert devices == []
    assert len(problems) == 1 and problems[0].startswith(expected)


def test_nvml_failure_does_not_stop_the_other_probes(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{fake_amd_tools(tmp_path, static=AMD_SMI_STATIC_NEW, metric=AMD_SMI_METRIC_NEW)}:/usr/bin:/bin")
    detection = detect(nvml=FakeNVML(init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND))
    assert [d.vendor for d in detection.devices] == ["amd", "amd", "cpu"]
    assert detection.problems == ["NVIDIA: no driver found (NVML Shared Library Not Found)"]


# --- AMD: fake amd-smi / rocm-smi executables printing the real tools' JSON shapes ----------

# amd-smi from ROCm 6.4 on: {"gpu_data": [...]}, values as {"value", "unit"} objects.
AMD_SMI_STATIC_NEW = {
    "gpu_data": [
        {
            "gpu": i,
            "asic": {
                "market_name": "AMD Instinct MI50/MI60", "vendor_id": "0x1002",
                "vendor_name": "Advanced Micro Devices Inc. [AMD/ATI]", "device_id": "0x66a1",
                "rev_id": "0x02", "num_compute_units": 60, "target_graphics_version": "gfx906",
            },
            "vram": {"type": "HBM", "vendor": "N/A", "size": {"value": 32768, "unit": "MB"}, "bit_width": 4096},
        }
        for i in range(2)
    ]
}
AMD_SMI_METRIC_NEW = {
    "gpu_data": [
        {
            "gpu": i,
            "usage": {"gfx_activity": {"value": 99 * i, "unit": "%"}, "umc_activity": {"value": 0, "unit": "%"}},
            "mem_usage": {
                "total_vram": {"value": 32752, "unit": "MB"},
                "used_vram": {"value": 10 + 20_000 * i, "unit": "MB"},
                "free_vram": {"value": 32742 - 20_000 * i, "unit": "MB"},
            },
        }
        for i in range(2)
    ]
}
# amd-smi from ROCm 6.0-6.2: a bare list, older key names, values as "N unit" strings.
AMD_SMI_STATIC_OLD = [
    {
        "gpu": 0,
        "asic": {"market_name": "Navi 31 [Radeon RX 7900 XT/7900 XTX]", "target_graphics_version": "gfx1100"},
        "vram": {"vram_type": "GDDR6", "vram_vendor": "N/A", "vram_size_mb": 24560},
    }
]
AMD_SMI_METRIC_OLD = [{"gpu": 0, "usage": {"gfx_usage": "2 %"}, "mem_usage": {"total_vram": "24560 MB", "used_vram": "512 MB"}}]
ROCM_SMI = {
    "card0": {
        "Card Series": "AMD Instinct MI100", "Card model": "0x0c34", "GFX Version": "gfx908",
        "VRAM Total Memory (B)": "34342961152", "VRAM Total Used Memory (B)": "10854400", "GPU use (%)": "0",
    },
    "system": {"Driver version": "6.3.6"},
}


def fake_amd_tools(bin_dir: Path, static=None, metric=None, rocm=None, sleep=0, raw_static=None, exit_code=0) -> Path:
    """Writes fake `amd-smi` (and `rocm-smi`) executables answering as the real ones would."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    if static is not None or raw_static is not None:
        (bin_dir / "static.json").write_text(raw_static if raw_static is not None else json.dumps(static))
        (bin_dir / "metric.json").write_text(json.dumps(metric) if metric is not None else "")
        script = textwrap.dedent(
            f"""\
            #!/bin/bash
            sleep {sleep}
            case "$1" in
              static) cat "{bin_dir}/static.json" ;;
              metric) [ -s "{bin_dir}/metric.json" ] || exit 1; cat "{bin_dir}/metric.json" ;;
              *) echo "unknown command $1" >&2; exit 2 ;;
            esac
            exit {exit_code}
            """
        )
        (bin_dir / "amd-smi").write_text(script)
        (bin_dir / "amd-smi").chmod(0o755)
    if rocm is not None:
        (bin_dir / "rocm.json").write_text(json.dumps(rocm))
        (bin_dir / "rocm-smi").write_text(f"#!/bin/bash\ncat '{bin_dir}/rocm.json'\n")
        (bin_dir / "rocm-smi").chmod(0o755)
    return bin_dir


@pytest.fixture
def amd_path(tmp_path, monkeypatch):
    def install(**kwargs):
        bin_dir = fake_amd_tools(tmp_path / "bin", **kwargs)
        monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
        return bin_dir

    return install


def test_amd_smi_two_mi50s(amd_path):
    amd_path(static=AMD_SMI_STATIC_NEW, metric=AMD_SMI_METRIC_NEW)
    devices, problems = probe_amd()
    assert problems == []
    assert [d.gfx for d in devices] == ["gfx906", "gfx906"]
    assert [d.memory_total_mib for d in devices] == [32752, 32752]
    assert [d.free for d in devices] == [True, False]  # GPU 1 is 99 % busy with 20 GB used
    assert devices[1].utilization_pct == 99
    # gfx906 (scenario S6): fp32 only, no flash attention, no bitsandbytes.
    assert all((d.bf16, d.fp16, d.flash_attn2, d.bitsandbytes) == (False,) * 4 for d in devices)


def test_amd_smi_older_key_names(amd_path):
    amd_path(static=AMD_SMI_STATIC_OLD, metric=AMD_SMI_METRIC_OLD)
    (d,), problems = probe_amd()
    assert problems == []
    assert (d.gfx, d.memory_total_mib, d.memory_used_mib, d.utilization_pct) == ("gfx1100", 24560, 512, 2)
    assert (d.bf16, d.flash_attn2) == (True, False)


def test_amd_smi_without_metrics_still_reports_static_info(amd_path):
    amd_path(static=AMD_SMI_STATIC_OLD, metric=None)
    (d,), problems = probe_amd()
    assert problems == [] and d.memory_total_mib == 24560 and d.utilization_pct is None


def test_rocm_smi_fallback(amd_path):
    amd_path(rocm=ROCM_SMI)
    (d,), problems = probe_amd()
    assert problems == []
    assert (d.name, d.gfx, d.memory_total_mib, d.memory_used_mib) == ("AMD Instinct MI100", "gfx908", 32752, 10)


def test_amd_smi_timing_out(amd_path, monkeypatch):
    monkeypatch.setattr(hardware_device, "AMD_SMI_TIMEOUT_S", 1)
    amd_path(static=AMD_SMI_STATIC_NEW, sleep=5)
    devices, problems = probe_amd()
    assert devices == []
    assert problems == [
        "AMD: `amd-smi static --asic --vram --json` timed out after 1 s; rocm-smi not found"
    ]


def test_amd_smi_printing_garbage(amd_path):
    amd_path(raw_static="AMD SMI: <html>not json")
    devices, problems = probe_amd()
    assert devices == []
    assert problems == ["AMD: amd-smi static printed output that is not JSON; rocm-smi not found"]


def test_amd_smi_failing(amd_path):
    amd_path(static=AMD_SMI_STATIC_NEW, exit_code=3, raw_static="")
    devices, problems = probe_amd()
    assert devices == [] and problems[0].startswith("AMD: ")


def test_no_amd_tools(amd_path):
    amd_path()
    assert probe_amd() == ([], ["AMD: no ROCm tools found (neither amd-smi nor rocm-smi)"])


# --- capability rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cc, bf16, fp16, fa2, bnb",
    [
        ("6.1", False, True, False, True),  # Pascal
        ("7.0", False, True, False, True),  # V100
        ("7.5", False, True, False, True),  # T4, RTX 20xx
        ("8.0", True, True, True, True),  # A100
        ("8.9", True, True, True, True),  # RTX 40xx, L40S
        ("9.0", True, True, True, True),  # H100
        ("3.7", False, False, False, False),  # K80
    ],
)
def test_nvidia_capabilities(cc, bf16, fp16, fa2, bnb):
    caps = nvidia_capabilities(cc)
    assert (caps.bf16, caps.fp16, caps.flash_attn2, caps.bitsandbytes) == (bf16, fp16, fa2, bnb)


@pytest.mark.parametrize(
    "gfx, bf16, fp16",
    [("gfx906", False, False), ("gfx908", True, True), ("gfx90a", True, True), ("gfx942", True, True), ("gfx1100", True, True)],
)
def test_amd_capabilities(gfx, bf16, fp16):
    caps = amd_capabilities(gfx)
    assert (caps.bf16, caps.fp16) == (bf16, fp16)
    assert caps.flash_attn2 is (gfx in ("gfx90a", "gfx942"))


def test_gfx_names_are_normalised():
    assert normalize_gfx("gfx90a:sramecc+:xnack-") == "gfx90a"
    assert normalize_gfx("GFX906") == "gfx906"
    assert normalize_gfx("9.0.10") == "gfx90a"
    assert amd_capabilities("gfx1201").why.startswith("gfx1201: architecture unknown")


# --- this machine, for real -------------------------------------------------------------------


def test_cpu_probe_reads_this_machine():
    cpu = probe_cpu()
    assert cpu.vendor == "cpu" and cpu.cpu_cores >= 1
    assert cpu.memory_total_mib >= cpu.memory_free_mib > 0
    assert not (cpu.bf16 or cpu.fp16 or cpu.flash_attn2 or cpu.bitsandbytes)


def run_cli(*args, env=None):
    return subprocess.run([str(BIN / "sft-tui"), *args], capture_output=True, text=True, env=env, timeout=60)


def test_detect_json_cli_with_fake_amd_smi(tmp_path):
    bin_dir = fake_amd_tools(tmp_path / "bin", static=AMD_SMI_STATIC_NEW, metric=AMD_SMI_METRIC_NEW)
    env = dict(os.environ, PATH=f"{bin_dir}:/usr/bin:/bin")
    done = run_cli("detect", "--json", env=env)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    amd = [d for d in out["devices"] if d["vendor"] == "amd"]
    assert len(amd) == 2
    for device in out["devices"]:
        for key in ("index", "vendor", "name", "memory_total_mib", "memory_free_mib", "bf16", "fp16", "flash_attn2", "bitsandbytes", "free"):
            assert key in device
    assert amd[0]["gfx"] == "gfx906" and amd[0]["free"] is True and amd[1]["free"] is False


def test_detect_on_this_machine_is_honest():
    """No GPU here: the answer is the CPU, with one clear line per probe that found nothing."""
    done = run_cli("detect")
    assert done.returncode == 0 and "Traceback" not in done.stderr
    if not Path("/proc/driver/nvidia").exists():
        assert done.stdout.startswith("No GPU found; CPU with ")
        assert "NVIDIA: no driver found" in done.stdout


class FakeNVMLWithSensors(FakeNVML):
    """NVML's temperature (NVML_TEMPERATURE_GPU = 0) and power (milliwatts) readings too."""

    def nvmlDeviceGetTemperature(self, gpu, sensor):
        assert sensor == 0
        return gpu["temp"]

    def nvmlDeviceGetPowerUsage(self, gpu):
        if gpu.get("power_mw") is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return gpu["power_mw"]


def test_usage_sampler_reads_memory_utilisation_temperature_power_and_keeps_the_peak():
    from tui.hardware.usage import UsageSampler

    first, second = gpu(used_mib=9000, util=97), gpu(name="NVIDIA A100-SXM4-80GB", used_mib=100, util=None)
    first.update(temp=71, power_mw=285_500)
    second.update(temp=40, power_mw=None)
    nvml = FakeNVMLWithSensors([first, second])
    sampler = UsageSampler(nvml=nvml)
    samples = sampler.sample()
    assert [(s.index, s.memory_used_mib, s.utilization_pct, s.temperature_c, s.power_w) for s in samples] == [
        (0, 9000, 97.0, 71.0, 285.5), (1, 100, None, 40.0, None)]
    first["used_mib"] = 4000
    sampler.sample()
    assert sampler.peak_mib == {0: 9000, 1: 100}  # the peak stays while usage falls
    assert [s.index for s in UsageSampler(indices=[1], nvml=nvml).sample()] == [1]
    sampler.close()
    assert nvml.shut_down


def test_usage_sampler_reads_amd_smi_metrics():
    from tui.hardware.usage import UsageSampler

    metric = [{"gpu": 0, "usage": {"gfx_activity": {"value": 88, "unit": "%"}},
               "mem_usage": {"total_vram": {"value": 32752, "unit": "MB"}, "used_vram": {"value": 20480, "unit": "MB"}},
               "temperature": {"edge": {"value": 60, "unit": "C"}, "hotspot": {"value": 75, "unit": "C"}},
               "power": {"socket_power": {"value": 210, "unit": "W"}}}]
    seen = []

    def run(argv):
        seen.append(argv)
        return json.dumps(metric)

    broken_nvml = FakeNVML(init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    samples = UsageSampler(nvml=broken_nvml, run=run).sample()
    assert seen[0][:2] == ["amd-smi", "metric"]
    assert [(s.vendor, s.memory_used_mib, s.memory_total_mib, s.utilization_pct, s.temperature_c, s.power_w)
            for s in samples] == [("amd", 20480, 32752, 88.0, 75.0, 210.0)]
