"""The training environment on this machine: where LLaMA-Factory is installed, and which of the
optional packages the planner's memory levers need are importable there (one subprocess, cached
per python and its modification time in the user cache dir)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# Import names of the packages levers need: 4/8-bit weights and 8-bit optimizers, the Liger
# kernels, FlashAttention-2, ZeRO, Unsloth.
PACKAGES = ("bitsandbytes", "liger_kernel", "flash_attn", "deepspeed", "unsloth")
PROBE_TIMEOUT_S = 30
_PROBE = "import importlib.util, json, sys; print(json.dumps({m: importlib.util.find_spec(m) is not None for m in sys.argv[1:]}))"


@dataclass(frozen=True)
class LlamaFactoryInstall:
    cli: Path  # llamafactory-cli
    python: Path  # the python beside it (sft-tui's own when there is none)
    env_spec: str | None  # run_sft.sh's --env: venv:PATH when the cli lives in a virtualenv


def find_llamafactory() -> LlamaFactoryInstall | None:
    """LLaMA-Factory beside this python (the usual install: the train extra), else on PATH."""
    beside = Path(sys.executable).parent / "llamafactory-cli"
    found = beside if beside.exists() else None
    on_path = shutil.which("llamafactory-cli")
    if found is None and on_path:
        found = Path(on_path)
    if found is None:
        return None
    bin_dir = found.parent
    python = bin_dir / "python"
    env_spec = f"venv:{bin_dir.parent}" if (bin_dir / "activate").is_file() else None
    return LlamaFactoryInstall(found, python if python.exists() else Path(sys.executable), env_spec)


def installed_packages(python: Path) -> dict[str, bool] | None:
    """Which of PACKAGES `python` can import (find_spec: nothing is imported), or None when it
    cannot be asked. Cached per interpreter and its modification time."""
    from tui.common.resources import user_cache_dir

    try:
        stamp = f"{python.resolve()}:{python.stat().st_mtime_ns}"
    except OSError:
        return None
    cache = user_cache_dir() / "packages.json"
    try:
        known = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if isinstance(known.get(stamp), dict) and set(known[stamp]) == set(PACKAGES):
        return known[stamp]
    try:
        done = subprocess.run([str(python), "-c", _PROBE, *PACKAGES], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT_S, check=False)
        found = json.loads(done.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    if not isinstance(found, dict):
        return None
    from tui.common.files import atomic_write

    try:
        atomic_write(cache, json.dumps({**known, stamp: found}, indent=1, sort_keys=True) + "\n")
    except OSError:
        pass  # a read-only cache dir costs a subprocess next time, nothing more
    return found
