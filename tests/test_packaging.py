"""A non-editable install into a fresh virtualenv finds its data folders from any directory."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_installs_into_a_fresh_venv_and_works_from_elsewhere(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(REPO)],
        check=True, capture_output=True, timeout=600,
    )
    (wheel,) = wheels.glob("sft_tui-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "tui/_data/schemas/hardware-profile.schema.json" in names
    assert "tui/_data/profiles/models/qwen2.5-14b.yaml" in names
    assert "tui/_data/templates/README.md" in names
    assert "tui/app/app.tcss" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        check=True, capture_output=True, timeout=600,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}

    def run(*args):
        done = subprocess.run([str(venv / "bin" / "sft-tui"), *args], cwd=elsewhere, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    profiles = run("profiles", "--json")
    assert {p["kind"] for p in profiles} == {"hardware", "models", "recipes"}
    assert all(p["source"].startswith(str(venv)) for p in profiles)
    detected = run("detect", "--json")
    assert detected["devices"][-1]["vendor"] == "cpu"
    # The installed app never pulled the training stack in.
    freeze = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "freeze"], capture_output=True, text=True)
    assert not any(name in freeze.stdout.lower() for name in ("torch", "transformers", "llamafactory"))
