"""run_sft.sh's exits before training (no environment, no llamafactory-cli, --resume without a
checkpoint, no conda, a failing setup command) write exit_code and a one-line exit_reason, which
`sft-tui status`, `monitor --plain/--json` and the monitor screen show as "failed: <reason>"."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.runs.test_runs import BIN, export, sft_tui, wait_for
from tui.runs.lifecycle import run_status

pytestmark = pytest.mark.llamafactory

NO_CONDA_PATH = "/usr/bin:/bin"  # no conda, no llamafactory-cli


def fake_venv(root: Path) -> Path:
    """A virtualenv that activates but holds no LLaMA-Factory."""
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "activate").write_text("export VIRTUAL_ENV_MARK=active\n")
    return root


def failing_conda(root: Path) -> str:
    """A `conda` whose hook is empty and whose `activate` fails: a setup command that fails under set -e."""
    (root / "bin").mkdir(parents=True)
    conda = root / "bin" / "conda"
    conda.write_text("#!/bin/sh\n[ \"$1\" = shell.bash ] && exit 0\necho 'no such env' >&2\nexit 3\n")
    conda.chmod(0o755)
    return f"{root / 'bin'}:{NO_CONDA_PATH}"


CASES = {
    "no-venv": ("venv:{tmp}/nonexistent", [], None, 127,
                "no virtualenv at {tmp}/nonexistent (no bin/activate): create it there with LLaMA-Factory, "
                "or export again with --env venv:PATH"),
    "no-llamafactory": ("venv:{tmp}/empty-venv", [], None, 127,
                        "llamafactory-cli not found; install it in the training environment: "
                        "pip install 'llamafactory==0.9.5'"),
    "resume-without-checkpoint": (f"venv:{BIN.parent}", ["--resume"], None, 1,
                                  "--resume: no checkpoint in {output_dir} yet: start it without --resume"),
    "no-conda": ("conda:nonesuch", [], None, 127,
                 "conda not found (the run's environment is the conda env nonesuch): install conda, "
                 "or export again with --env venv:PATH"),
    "setup-command-fails": ("conda:nonesuch", [], "conda", 3,
                            "run_sft.sh stopped before training: `conda activate nonesuch` failed with status 3; "
                            "see train.log"),
}


@pytest.mark.parametrize("case", CASES)
def test_an_exit_before_training_is_failed_with_its_reason(tiny_model_dir, tmp_path, case):
    env_spec, args, path_kind, code, reason = CASES[case]
    fake_venv(tmp_path / "empty-venv")
    run_dir = export(tmp_path, tiny_model_dir, case, 1, None, "--env", env_spec.format(tmp=tmp_path))
    output_dir = Path(json.loads((run_dir / "plan.json").read_text())["paths"]["output_dir"])
    reason = reason.format(tmp=tmp_path, output_dir=output_dir)
    path = failing_conda(tmp_path / "fake-conda") if path_kind == "conda" else NO_CONDA_PATH
    # started by hand, detached, the way the bundle's README says
    subprocess.run(["bash", str(run_dir / "run_sft.sh"), *args], env={"PATH": path, "HOME": str(tmp_path)},
                   check=True, capture_output=True, timeout=30)
    wait_for(lambda: (run_dir / "exit_code").exists(), timeout=30, what="exit_code")
    status = run_status(run_dir)
    assert (status.status, status.exit_code, status.detail) == ("failed", code, reason)

    table = sft_tui("status", run_dir, check=True).stdout.splitlines()
    assert table[1].split()[:2] == [case, "failed"] and table[2] == f"  failed: {reason}"
    plain = sft_tui("monitor", run_dir, "--plain")
    assert plain.returncode == code
    assert f"failed: {reason}" in plain.stdout.splitlines() and "vanished" not in plain.stdout
    last = json.loads(sft_tui("monitor", run_dir, "--json").stdout.splitlines()[-1])
    assert (last["event"], last["cause"], last["text"], last["exit_code"]) == ("failed", "setup", reason, code)
