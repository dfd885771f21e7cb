"""AMD GPUs through the amd-smi command (rocm-smi as a fallback), what a gfx architecture can do,
their live use, and the vendor seam's answers for them (VENDOR, listed in tui/hardware/vendors.py)."""

from __future__ import annotations

import json
import re
import shutil

from tui.hardware.device import (
    MIB,
    Capabilities,
    CommandRunner,
    Device,
    GpuSample,
    ProbeError,
    gpu_device,
    run_command,
)
from tui.hardware.gpu_peaks import table_peaks

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


def load_json(text: str, what: str):
    try:
        return json.loads(text)
    except ValueError:
        raise ProbeError(f"{what} printed output that is not JSON") from None


def parse_number(value, unit_hint: str = "") -> float | None:
    """A number out of the shapes amd-smi versions use: 5, "5", "5 %", "32768 MB",
    {"value": 5, "unit": "MB"}; None for "N/A"."""
    if isinstance(value, dict):
        return parse_number(value.get("value"), value.get("unit", unit_hint))
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


def first(mapping: dict, *keys):
    for key in keys:
        if isinstance(mapping, dict) and mapping.get(key) not in (None, "N/A", ""):
            return mapping[key]
    return None


def amd_smi_records(data) -> list[dict]:
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
    static = amd_smi_records(
        load_json(run(["amd-smi", "static", "--asic", "--vram", "--json"]), "amd-smi static")
    )
    try:
        metric_records = amd_smi_records(
            load_json(run(["amd-smi", "metric", "--usage", "--mem-usage", "--json"]), "amd-smi metric")
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
        gfx = normalize_gfx(first(asic, "target_graphics_version", "gfx_version") or "unknown")
        total = parse_number(first(mem_usage, "total_vram"), "MB") or parse_number(
            first(vram, "size", "vram_size", "vram_size_mb"), "MB"
        )
        used = parse_number(first(mem_usage, "used_vram"), "MB") or 0
        utilization = parse_number(first(usage, "gfx_activity", "gfx_usage", "gfx_busy_inst"))
        devices.append(_amd_device(index, first(asic, "market_name", "name") or "AMD GPU", gfx, total, used, utilization))
    return devices


def _probe_rocm_smi(run: CommandRunner) -> list[Device]:
    data = load_json(
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
        total = parse_number(card.get("VRAM Total Memory (B)"), "B")
        used = parse_number(card.get("VRAM Total Used Memory (B)"), "B") or 0
        gfx = normalize_gfx(first(card, "GFX Version", "gfx_version") or "unknown")
        name = first(card, "Card Series", "Card series", "Device Name", "Card model") or "AMD GPU"
        devices.append(_amd_device(int(match.group(1)), name, gfx, total, used, parse_number(card.get("GPU use (%)"))))
    return devices


def _amd_device(index, name, gfx, total_mib, used_mib, utilization) -> Device:
    total, used = int(total_mib or 0), int(used_mib or 0)
    device = gpu_device(
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


class AmdSmiUsage:
    """Memory, utilisation, temperature and power of AMD GPUs through `amd-smi metric` (when it is on
    PATH, or a runner is given); what cannot be read is left out, never raised."""

    def __init__(self, run: CommandRunner = run_command):
        self.run = run
        self.available = shutil.which("amd-smi") is not None or run is not run_command

    def sample(self) -> list[GpuSample]:
        if not self.available:
            return []
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
        pass


class Amd:
    name = "amd"
    visible_devices = "HIP_VISIBLE_DEVICES"
    liger = True  # Triton kernels
    multi_gpu = True

    def probe(self, boundaries) -> tuple[list[Device], list[str]]:
        return probe_amd(boundaries.run)

    def capabilities(self, facts: dict) -> Capabilities:
        return amd_capabilities(facts["gfx"])

    def live_usage(self, boundaries) -> AmdSmiUsage:
        return AmdSmiUsage(boundaries.run)

    def peak_tflops(self, device: Device) -> dict[str, float]:
        return table_peaks(device)

    def memory_for_training_mib(self, device: Device) -> float:
        return device.memory_free_mib


VENDOR = Amd()
