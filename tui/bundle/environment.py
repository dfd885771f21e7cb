"""The training environment a bundle's run_sft.sh activates when the user names none: one
decision, used by `sft-tui export`, the wizard's review step and the demo."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LlamaFactoryInstall:
    cli: Path  # llamafactory-cli
    python: Path  # the python beside it (sft-tui's own when there is none)
    env_spec: str | None  # run_sft.sh's --env: venv:PATH when the cli lives in a virtualenv


def find_llamafactory() -> LlamaFactoryInstall | None:
    """LLaMA-Factory beside this python (the usual install: sft-tui[train]), else on PATH."""
    beside = Path(sys.executable).parent / "llamafactory-cli"
    found = beside if beside.exists() else None
    if found is None and shutil.which("llamafactory-cli"):
        found = Path(shutil.which("llamafactory-cli"))
    if found is None:
        return None
    bin_dir = found.parent
    python = bin_dir / "python"
    env_spec = f"venv:{bin_dir.parent}" if (bin_dir / "activate").is_file() else None
    return LlamaFactoryInstall(found, python if python.exists() else Path(sys.executable), env_spec)


def default_env(hardware: str) -> tuple[str | None, str]:
    """(the --env to use, a sentence saying what was chosen and why) when the user gave none.
    Planning for this machine: the environment LLaMA-Factory is installed in here. Planning
    for another machine (a hardware profile): llamafactory-cli on that machine's PATH."""
    if hardware != "detected":
        return None, (f"training environment: llamafactory-cli on the PATH of the {hardware} machine "
                      "(--env conda:NAME|venv:PATH to choose one)")
    install = find_llamafactory()
    if install is None:
        return None, ("training environment: LLaMA-Factory is not installed here, so run_sft.sh expects "
                      "llamafactory-cli on PATH (--env conda:NAME|venv:PATH to choose one)")
    if install.env_spec:
        return install.env_spec, f"training environment: {install.env_spec} (LLaMA-Factory found there: {install.cli})"
    return None, f"training environment: llamafactory-cli on PATH ({install.cli})"
