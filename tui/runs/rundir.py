"""A run directory's own records, below everything that launches or checks a run: the one error
of the run stage (RunError), our state.json, and where LLaMA-Factory writes (output_dir_of).
tui.runs.lifecycle (start, status, stop) and tui.runs.preflight (the checks before a start) both
read them, and neither imports the other back."""

from __future__ import annotations

import json
from pathlib import Path

from tui.common.errors import SftTuiError
from tui.common.files import atomic_write

STATE_FILE = "state.json"


class RunError(SftTuiError):
    """A run cannot be started, found or stopped as asked; one sentence."""


def read_state(run_dir: Path) -> dict:
    try:
        state = json.loads((run_dir / STATE_FILE).read_text(encoding="utf-8"))
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def write_state(run_dir: Path, **changes) -> dict:
    state = read_state(run_dir) | changes
    atomic_write(run_dir / STATE_FILE, json.dumps(state, indent=2) + "\n")
    return state


def output_dir_of(run_dir: Path) -> Path | None:
    """LLaMA-Factory's output_dir: train.yaml's (the user may have edited it), resolved from the run
    directory (run_sft.sh runs from there), else saves/<run-id> beside it."""
    from tui.bundle.location import configured_output_dir, own_output_dir, plan_run_id

    run_dir = Path(run_dir).absolute()
    found = configured_output_dir(run_dir)
    if found is None and (run_dir / "plan.json").is_file():
        return own_output_dir(run_dir, plan_run_id(run_dir) or run_dir.name)
    return found
