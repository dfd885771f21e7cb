"""The vendor seam (tui/hardware/vendor.py, the registry tui/hardware/vendors.py): a vendor is one
module plus one registry entry. The registry lists exactly the modules that define a vendor, every
vendor answers every member of the protocol, and the stages ask the registry instead of spelling a
vendor's name: a vendor added to the registry is detected, planned and exported with no other change."""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from tui.hardware import vendors
from tui.hardware.device import Capabilities, Device, GpuSample, ProbeError
from tui.hardware.vendor import Boundaries, Vendor

REPO = Path(__file__).resolve().parents[2]
TUI = REPO / "tui"
GPU = Device(index=0, vendor="nvidia", name="NVIDIA GeForce RTX 4090", memory_total_mib=24564, memory_free_mib=24000,
             memory_used_mib=564, bf16=True, fp16=True, flash_attn2=True, bitsandbytes=True, free=True,
             compute_capability="8.9")
FACTS = {"compute_capability": "8.0", "gfx": "gfx90a"}  # what a hardware profile states besides its flags


def protocol_members() -> list[str]:
    return sorted({*Vendor.__annotations__, *(n for n, v in vars(Vendor).items() if callable(v) and not n.startswith("_"))})


def no_tools(argv):  # no amd-smi, no rocm-smi
    raise ProbeError(f"{argv[0]} not found")


class NoNVML:
    def nvmlInit(self):
        raise RuntimeError("NVML Shared Library Not Found")


NOTHING = Boundaries(nvml=NoNVML(), run=no_tools, sysctl=lambda key: "", system="Linux", machine="x86_64")


def test_the_registry_lists_exactly_the_modules_that_define_a_vendor():
    defining = set()
    for path in sorted((TUI / "hardware").glob("*.py")):
        module = importlib.import_module(f"tui.hardware.{path.stem}")
        if hasattr(module, "VENDOR"):
            defining.add(module.__name__)
    registered = {type(v).__module__ for v in vendors.VENDORS.values()}
    assert registered == defining and len(defining) == 4
    assert [v.name for v in vendors.VENDORS.values()] == list(vendors.VENDORS)
    assert list(vendors.VENDORS)[-1] == "cpu"  # probed last: always there, the last resort
    for schema in ("hardware-profile", "plan"):  # what a profile and plan.json may name
        text = (REPO / "schemas" / f"{schema}.schema.json").read_text()
        assert json.loads(re.search(r'"vendor": (\{"enum": [^}]*\})', text).group(1))["enum"] == list(vendors.VENDORS)


@pytest.mark.parametrize("name", list(vendors.VENDORS))
def test_every_vendor_answers_every_member_of_the_protocol(name):
    vendor = vendors.VENDORS[name]
    assert isinstance(vendor, Vendor)
    members = protocol_members()
    assert {"probe", "capabilities", "live_usage", "visible_devices", "liger", "peak_tflops"} <= set(members)
    assert all(hasattr(vendor, member) for member in members)
    devices, problems = vendor.probe(NOTHING)
    assert all(isinstance(d, Device) and d.vendor == name for d in devices) and all(isinstance(p, str) for p in problems)
    assert isinstance(vendor.capabilities(FACTS), Capabilities)
    usage = vendor.live_usage(NOTHING)
    assert usage is None or (usage.sample() == [] and usage.close() is None)
    assert vendor.visible_devices is None or vendor.visible_devices.endswith("_VISIBLE_DEVICES")
    assert isinstance(vendor.liger, bool) and isinstance(vendor.multi_gpu, bool)
    device = replace(GPU, vendor=name)
    assert all(isinstance(v, float | int) for v in vendor.peak_tflops(device).values())
    assert 0 < vendor.memory_for_training_mib(device) <= device.memory_total_mib
    assert vendors.vendor_of(name) is vendor


def test_an_unknown_vendor_is_one_sentence():
    with pytest.raises(vendors.UnknownVendor, match="unknown vendor 'intel': sft-tui knows nvidia, amd, apple, cpu"):
        vendors.vendor_of("intel")


VENDOR_WORDS = re.compile(r"""["'](nvidia|amd|apple)["']|[A-Z]+_VISIBLE_DEVICES""")
# The context's memory and the allocator per vendor (CONTEXT_GIB) are being reworked in tui/plan/ (memory.py,
# reserve.py) as this seam is made; they join it after.
NOT_YET_ASKED = {"plan/memory.py", "plan/reserve.py"}


def test_no_stage_spells_a_vendor_s_name_outside_its_module():
    in_modules = {f"hardware/{type(v).__module__.rsplit('.', 1)[1]}.py" for v in vendors.VENDORS.values()}
    found = []
    for path in sorted(TUI.rglob("*.py")):
        where = path.relative_to(TUI).as_posix()
        if where.startswith("lf/") or where in in_modules | NOT_YET_ASKED:
            continue  # tui/lf/ runs inside the training environment, which has its own words
        found += [f"{where}: {m.group(0)}" for m in VENDOR_WORDS.finditer(path.read_text(encoding="utf-8"))]
    assert found == []


@dataclass
class NewGpu:
    """A new vendor, as one more module would define it."""

    name: str = "testgpu"
    visible_devices: str | None = "TEST_VISIBLE_DEVICES"
    liger: bool = False
    multi_gpu: bool = True

    def probe(self, boundaries):
        return [replace(GPU, vendor=self.name, name="Test GPU 9000")], []

    def capabilities(self, facts):
        return Capabilities(True, True, False, False, "Test GPU")

    def live_usage(self, boundaries):
        return None

    def peak_tflops(self, device):
        return {"bf16": 100.0}

    def memory_for_training_mib(self, device):
        return device.memory_free_mib


def test_a_vendor_in_the_registry_is_detected_planned_and_exported_with_no_other_change(monkeypatch):
    from tui.bundle.spec import environment_vars
    from tui.hardware.detect import detect
    from tui.hardware.peaks import peak_tflops
    from tui.hardware.profile import profile_capabilities
    from tui.hardware.usage import UsageSampler

    monkeypatch.setattr(vendors, "VENDORS", {"testgpu": NewGpu(), **vendors.VENDORS})
    found = detect(nvml=NoNVML(), run=no_tools)
    assert found.devices[0].name == "Test GPU 9000" and found.devices[-1].vendor == "cpu"
    device = found.devices[0]
    assert peak_tflops(device) == {"bf16": 100.0}
    assert profile_capabilities({"vendor": "testgpu"}).why == "Test GPU"
    assert UsageSampler(nvml=NoNVML(), run=no_tools).sample() == []
    spec = {"hardware": {"vendor": "testgpu", "gpus": 2, "nodes": 1}, "run_id": "r", "plan": {"settings": {}},
            "launch": {"gpu_ids": [0, 1], "ray": False, "modelscope": False}}
    assert ("TEST_VISIBLE_DEVICES", "0,1", True) in environment_vars(spec)
    assert isinstance(GpuSample(0, "testgpu", 1, 2), GpuSample)
