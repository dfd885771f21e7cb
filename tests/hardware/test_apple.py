"""Apple silicon: probe_apple reads the machine through `sysctl`. Faked at that boundary only: a
function answering the keys, and a `sysctl` script on PATH that the real helper runs."""

from __future__ import annotations

import os
import stat

from tui.hardware.apple import probe_apple

M2_MAX = {"hw.memsize": str(32 * 1024**3), "machdep.cpu.brand_string": "Apple M2 Max"}


def test_apple_silicon_is_one_device_with_the_machines_memory():
    asked = []

    def sysctl(key: str) -> str:
        asked.append(key)
        return M2_MAX.get(key, "")

    [device] = probe_apple("Darwin", "arm64", sysctl=sysctl)
    assert (device.vendor, device.name, device.index) == ("apple", "Apple M2 Max", 0)
    assert device.memory_total_mib == device.memory_free_mib == 32 * 1024 and device.memory_used_mib == 0
    assert device.bf16 and device.fp16 and not device.flash_attn2 and not device.bitsandbytes
    assert "hw.memsize" in asked


def test_not_a_mac_or_an_intel_mac_has_no_apple_device():
    assert probe_apple("Linux", "x86_64", sysctl=lambda key: "") == []
    assert probe_apple("Darwin", "x86_64", sysctl=lambda key: "") == []


def test_the_real_helper_runs_sysctl_from_path(tmp_path, monkeypatch):
    """No sysctl argument: the probe runs `sysctl -n KEY` (tui.hardware.device.sysctl), here a script."""
    script = tmp_path / "sysctl"
    cases = "\n".join(f'  {key}) echo "{value}" ;;' for key, value in M2_MAX.items())
    script.write_text(f'#!/bin/sh\n[ "$1" = "-n" ] || exit 2\ncase "$2" in\n{cases}\n  *) exit 1 ;;\nesac\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    [device] = probe_apple("Darwin", "arm64")
    assert device.name == "Apple M2 Max" and device.memory_total_mib == 32 * 1024


def test_a_brand_string_sysctl_does_not_know_is_apple_silicon():
    [device] = probe_apple("Darwin", "arm64", sysctl=lambda key: M2_MAX["hw.memsize"] if key == "hw.memsize" else "")
    assert device.name == "Apple silicon"
