"""The simulation's subprocess (tui/lf/simulate_step.py run by the training environment's python),
stoppable, and what a plan says while it has no simulated answer.

The CLI waits for the simulation (subprocess.run, as before). The app does not: its worker passes a
`threading.Event`, and setting it kills the subprocess (never left running) and raises
SimulationCancelled out of `tui.plan.simulated.apply_simulation`, so the analytic plan is kept.
"""

from __future__ import annotations

import subprocess
import threading
import time

from tui.common.errors import SftTuiError

POLL_S = 0.2  # how often a running simulation looks at its cancel event
NOT_SIMULATED_NOTE = "memory: the analytic estimate, not simulated: "


class SimulationCancelled(SftTuiError):
    """The simulation was cancelled (its subprocess is killed): there is no answer."""


def run_script(args: list[str], request: str, timeout: float, env: dict,
               cancel: threading.Event | None = None) -> subprocess.CompletedProcess:
    """`args` with `request` on its stdin, its output captured (subprocess.TimeoutExpired past
    `timeout`). With `cancel`, the process is killed as soon as the event is set (SimulationCancelled)."""
    if cancel is None:
        return subprocess.run(args, input=request, capture_output=True, text=True, timeout=timeout, check=False,
                              env=env)
    if cancel.is_set():
        raise SimulationCancelled
    process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    deadline = time.monotonic() + timeout
    sent: str | None = request
    try:
        while True:
            try:
                out, err = process.communicate(sent, timeout=POLL_S)
                return subprocess.CompletedProcess(args, process.returncode, out, err)
            except subprocess.TimeoutExpired:
                sent = None  # the input went with the first call; a retry only reads on
            if cancel.is_set():
                raise SimulationCancelled
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(args, timeout)
    finally:
        if process.returncode is None:  # cancelled, timed out or failed: killed and reaped, not left running
            process.kill()
            process.communicate()


def mark_not_simulated(plan, why: str | None) -> None:
    """`plan` keeps its analytic estimate: `simulated` and one note say why (a previous such note replaced)."""
    plan.simulated = {"peak_gib": None, "why_not": why}
    plan.estimate.notes[:] = [n for n in plan.estimate.notes if not n.startswith(NOT_SIMULATED_NOTE)]
    plan.estimate.notes.append(f"{NOT_SIMULATED_NOTE}{why}")
