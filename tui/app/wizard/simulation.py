"""The plan step's simulated step (issue 27): once the analytic plan is shown, a worker judges it on
one training step simulated on fake tensors (tui.plan.simulated.apply_simulation, as `sft-tui plan`
does), and the wizard never waits on it. The line under the verdict shows its progress, then what
was simulated (or why not); the answer replaces the plan shown and `state.plan`. Escape cancels it:
the subprocess is killed, the analytic plan stays and says so. An answer for choices that changed
meanwhile (a setting here, anything on another step) is dropped, and its subprocess killed.

While it runs, or once cancelled, `state.plan` is the analytic plan with `simulated.why_not` saying
so, which is what an export writes into plan.json (as `sft-tui plan --no-simulate` does)."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.timer import Timer
from textual.widgets import Static

from tui.app.workers import WorkerErrors

if TYPE_CHECKING:
    from tui.app.wizard.state import WizardState

RUNNING = "the simulation was still running when this plan was exported"
CANCELLED = "the simulation was cancelled (Escape in the plan step)"
STALE_CHECK_S = 0.5  # how often a running simulation is checked against the choices (on the UI thread)


@dataclass
class Simulating:
    choices: tuple  # state.choices() of the plan being simulated
    shown: Any  # that analytic plan (a tui.plan.values.Plan) (state.plan while it runs)
    cancel: threading.Event
    watch: Timer | None = None


def simulated_line(plan) -> str:
    """What the plan's `simulated` says, in one line (empty without one)."""
    sim = plan.simulated
    if not sim:
        return ""
    if sim.get("peak_gib") is None:
        return f"analytic estimate, not simulated: {sim.get('why_not')}"
    line = (f"simulated ({sim['source']}, {sim['seconds']:.1f} s): one training step on fake tensors peaks at "
            f"{sim['peak_gib']:.2f} GiB in {sim['phase']}, plus {sim['overhead_gib']:.2f} GiB overhead; the analytic "
            f"estimate said {sim['analytic_gib']:.2f} GiB")
    if sim.get("stand_ins"):
        line += "; stand-ins: " + ", ".join(sim["stand_ins"])
    if sim.get("replanned_from"):
        line += "; re-planned: the first plan's simulated step did not fit"
    return line


class PlanSimulation(WorkerErrors):
    """Mixed into PlanStep (which binds Escape to action_cancel_simulation and composes #plan-simulation)."""

    simulating: Simulating | None = None
    if TYPE_CHECKING:  # PlanStep's (Step's state, and the plan step's show)
        state: WizardState

        def show(self, plan) -> None: ...

    def simulate(self, choices: tuple, request, plan) -> None:
        """Judge `plan` (shown, and state.plan) on its simulated step, in the background."""
        self.stop_simulation()
        base = copy.deepcopy(plan)  # the worker's own: the analytic plan stays as it is until the answer
        from tui.plan.simulate_process import mark_not_simulated

        mark_not_simulated(plan, RUNNING)
        self.simulating = Simulating(choices, plan, threading.Event())
        self.simulating.watch = self.set_interval(STALE_CHECK_S, self._check_choices)
        self.refresh_bindings()
        self.simulation_worker(self.simulating, request, base)

    @work(thread=True, exclusive=True, group="simulate", exit_on_error=False)
    def simulation_worker(self, run: Simulating, request, base) -> None:
        from tui.plan.simulate_process import SimulationCancelled
        from tui.plan.calibrated import apply_history
        from tui.plan.simulated import apply_simulation

        name = request.model.name

        def progress(text: str) -> None:
            if not run.cancel.is_set():
                self.app.call_from_thread(self._progress, run, text.replace("of the model", f"of {name}", 1))

        try:
            # judged on its simulated step, then on your runs like it again (their simulated figures)
            result = apply_history(apply_simulation(base, request, progress=progress, cancel=run.cancel), request)
        except SimulationCancelled:
            return
        if not run.cancel.is_set():
            self.app.call_from_thread(self._answered, run, result)

    def _progress(self, run: Simulating, text: str) -> None:
        if run is self.simulating:
            self._say(Text(f"{text.removesuffix('...').rstrip()}… (Esc cancels)", style="italic"))

    def _answered(self, run: Simulating, result) -> None:
        if run is not self.simulating or run.cancel.is_set():
            return
        from tui.plan.simulate_process import mark_not_simulated

        self._done()
        if result.simulated.get("peak_gib") is None:  # not simulated: the plan shown stays, saying why
            mark_not_simulated(run.shown, result.simulated["why_not"])
            result = run.shown
        if not self.state.simulated(run.choices, run.shown, result):
            return  # the choices changed meanwhile: the plan step plans them again
        if result is not run.shown:
            self.show(result)
        self._say(Text(simulated_line(result)), hidden=self._off())

    def action_cancel_simulation(self) -> None:
        """Escape: the subprocess is killed, the analytic plan stays and says so."""
        run = self.simulating
        if run is None:
            return
        self.stop_simulation()
        if self.state.plan is run.shown:
            from tui.plan.simulate_process import mark_not_simulated

            mark_not_simulated(run.shown, CANCELLED)
            self._say(Text("analytic estimate: simulation cancelled", style="yellow"))

    def simulation_failed(self, sentence: str) -> None:
        """The worker raised (tui.app.workers' policy notified it): the analytic plan stays."""
        run = self.simulating
        self._done()
        if run is not None and self.state.plan is run.shown:
            from tui.plan.simulate_process import mark_not_simulated

            mark_not_simulated(run.shown, "the simulation failed")
            self._say(Text(f"analytic estimate: {sentence}", style="red"))

    def stop_simulation(self) -> None:
        """Cancel a running simulation (its subprocess is killed by the worker within POLL_S)."""
        if self.simulating is not None:
            self.simulating.cancel.set()
            self._done()
            self._say(Text(""), hidden=True)

    def _done(self) -> None:
        if self.simulating is not None and self.simulating.watch is not None:
            self.simulating.watch.stop()
        self.simulating = None
        self.refresh_bindings()

    def _check_choices(self) -> None:
        """A simulation of choices that are gone (changed on any step) is stopped at once."""
        run = self.simulating
        if run is not None and (self.state.choices() != run.choices or self.state.plan is not run.shown):
            self.stop_simulation()

    def _off(self) -> bool:
        from tui.plan.simulated import simulation_off

        return simulation_off()  # SFT_TUI_SIMULATE=0 (the tests' default): nothing to say

    def _say(self, text: Text, hidden: bool = False) -> None:
        line = self.query_one("#plan-simulation", Static)
        line.update(text)
        line.display = not hidden and bool(text.plain)

    def on_unmount(self) -> None:
        if self.simulating is not None:  # the app closes: the subprocess goes with it
            self.simulating.cancel.set()
