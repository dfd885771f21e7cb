"""The training environment a bundle's run_sft.sh activates when the user names none: one
decision, used by `sft-tui export`, the wizard's review step and the demo."""

from __future__ import annotations

from tui.hardware.environment import find_llamafactory


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
