"""What the wizard's steps share: the choices made so far, and the base of every step."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from textual.containers import VerticalScroll

from tui.app.workers import WorkerErrors
from tui.hardware.device import Detection, Device

if TYPE_CHECKING:  # for mypy only (textual.getters is no older Textual's)
    from textual import getters
    from textual.app import App
    from textual.widget import Widget

    from tui.datasets.report import ValidationReport
    from tui.models.resolve import ModelInfo
    from tui.plan.values import Plan, PlanRequest

STEPS = (("hardware", "1 Hardware"), ("model", "2 Model"), ("dataset", "3 Dataset"), ("plan", "4 Plan"),
         ("review", "5 Review"), ("run", "6 Run"))

# WizardState.choices(): hardware, GPU indices, GPU count, model, datasets, drop_errors, recipe, overrides.
Choices = tuple[str, tuple[int, ...] | None, int | None, str, tuple[str, ...], bool, str | None,
                tuple[tuple[str, Any], ...]]


@dataclass
class WizardState:
    """The choices made so far. The steps read the fields and change them only through the methods
    below: each change the plan depends on goes through `invalidate_plan`, so no step can keep a
    plan of choices that are gone (a GPU deselected, another model, other files...)."""

    hardware: str = "detected"  # or a hardware profile's name
    detection: Detection | None = None
    gpu_indices: list[int] | None = None  # chosen detected GPUs; None: all
    gpus: int | None = None  # a hardware profile's GPU count (--gpus); None: the profile's own
    gpu_problem: str | None = None  # why the GPU count box's text is no count (the hardware step cannot be left)
    model: str = ""
    model_info: ModelInfo | None = None
    model_problem: str | None = None  # why the model box's text is not a resolved model (its look-up error)
    datasets: list[str] = field(default_factory=list)
    report: ValidationReport | None = None
    drop_errors: bool = False
    recipe: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # setting -> its value, typed by the settings gate
    request: PlanRequest | None = None
    plan: Plan | None = None
    env: str = ""
    out_dir: str = "."
    run_name: str = ""
    run_dir: Path | None = None
    exported_choices: Choices | None = None  # choices() when run_dir was exported from here (None: not exported here)

    def model_refusal(self) -> str | None:
        """Why the steps after the model cannot be entered yet, or None: they need a resolved model."""
        if self.model_problem:
            return self.model_problem
        return None if self.model_info is not None else "choose a model first: a model profile, hub id or local directory"

    # --- the one fingerprint ---------------------------------------------------------------------

    def choices(self) -> Choices:
        """What the user chose that the plan and the bundle are made of: what quitting would lose,
        and what tells whether an exported bundle is still of the current plan."""
        return (self.hardware, None if self.gpu_indices is None else tuple(self.gpu_indices), self.gpus, self.model,
                tuple(self.datasets), self.drop_errors, self.recipe, tuple(sorted(self.overrides.items(), key=repr)))

    def export_is_stale(self) -> bool:
        """run_dir was exported here from choices that have changed since: it is not the current plan."""
        return self.run_dir is not None and self.exported_choices is not None and self.choices() != self.exported_choices

    # --- the plan ------------------------------------------------------------------------------

    def invalidate_plan(self) -> None:
        """The plan (and its request) is of choices that changed: the plan step plans again."""
        self.plan = self.request = None

    def planned(self, choices: Choices, request: PlanRequest, plan: Plan) -> bool:
        """Keep a plan made from `choices`, unless the choices changed while it was made."""
        if choices != self.choices():
            return False
        self.request, self.plan = request, plan
        return True

    def simulated(self, choices: Choices, shown: Plan, plan: Plan) -> bool:
        """Keep `plan`, the simulated answer for the plan `shown` of `choices`, unless the choices
        changed (or another plan took its place) while it was simulated: a stale answer is dropped."""
        if choices != self.choices() or self.plan is not shown:
            return False
        self.plan = plan
        return True

    # --- step 1: hardware ------------------------------------------------------------------------

    def detected(self, detection: Detection) -> None:
        self.detection = detection

    def choose_hardware(self, name: str) -> None:
        if name != self.hardware:
            self.hardware = name
            self.invalidate_plan()

    def choose_gpus(self, indices: list[int] | None) -> None:
        """The detected GPUs to plan for (None: all)."""
        if indices != self.gpu_indices:
            self.gpu_indices = None if indices is None else sorted(indices)
            self.invalidate_plan()

    def set_gpu_count(self, count: int | None, problem: str | None = None) -> None:
        """A hardware profile's GPU count (None: the profile's own); `problem`: why the box's text is no count."""
        self.gpu_problem = problem
        if count != self.gpus:
            self.gpus = count
            self.invalidate_plan()

    # --- step 2: model ---------------------------------------------------------------------------

    def model_typed(self, problem: str | None) -> None:
        """The model box changed: `problem` says why it is no resolved model yet (None: it is the resolved one)."""
        self.model_problem = problem

    def model_resolved(self, spec: str, info: ModelInfo) -> None:
        if spec != self.model:
            self.invalidate_plan()
        self.model, self.model_info, self.model_problem = spec, info, None

    # --- step 3: dataset -------------------------------------------------------------------------

    def choose_datasets(self, paths: list[str]) -> None:
        """Files to validate: the report (and the plan made from it) is of other files now."""
        self.datasets, self.report = list(paths), None
        self.invalidate_plan()

    def datasets_edited(self, paths: list[str]) -> None:
        if paths != self.datasets:
            self.report = None
            self.invalidate_plan()

    def dataset_validated(self, report: ValidationReport) -> None:
        self.report = report

    def set_drop_errors(self, drop: bool) -> None:
        self.drop_errors = drop

    # --- step 4: recipe and settings -------------------------------------------------------------

    def choose_recipe(self, recipe: str | None) -> bool:
        """True when it changed (the plan is dropped)."""
        if recipe == self.recipe:
            return False
        self.recipe = recipe
        self.invalidate_plan()
        return True

    def set_overrides(self, values: dict[str, Any]) -> None:
        self.overrides.update(values)
        self.invalidate_plan()

    def clear_override(self, key: str) -> None:
        self.overrides.pop(key, None)
        self.invalidate_plan()

    # --- steps 5 and 6: the bundle and the run ---------------------------------------------------

    def set_launch(self, env: str, out_dir: str, run_name: str) -> None:
        self.env, self.out_dir, self.run_name = env, out_dir or ".", run_name

    def exported(self, run_dir: Path) -> None:
        self.run_dir, self.exported_choices = run_dir, self.choices()

    def attach_run(self, run_dir: Path) -> None:
        """A run exported elsewhere (the demo's): the run step follows it."""
        self.run_dir = run_dir

    def host_ram_gib(self) -> float | None:
        """RAM per node: this machine's from the detection, or what the hardware profile states."""
        if self.hardware != "detected":
            return self._hardware_profile_data().get("host_ram_gib")
        return self.detection.host_ram_gib if self.detection is not None else None

    def _hardware_profile_data(self) -> dict[str, Any]:
        from tui.common.profiles import load_profiles

        profile = load_profiles().get("hardware", self.hardware)
        assert profile is not None, self.hardware  # the hardware step offers only the profiles there are
        return profile.data

    def devices(self) -> list[Device]:
        """The devices the plan is for: the chosen detected GPUs (else the CPU), or a profile's."""
        from tui.hardware.profile import devices_from_profile

        if self.hardware != "detected":
            return devices_from_profile(self._hardware_profile_data(), self.gpus)
        detection = self.detection
        if detection is None:
            from tui.hardware.detect import detect

            detection = self.detection = detect()
        gpus = [d for d in detection.gpus if self.gpu_indices is None or d.index in self.gpu_indices]
        return gpus or [d for d in detection.devices if not d.is_gpu]


def shown_path(path: Path) -> str:
    """A run directory as the user knows it: relative to the working directory when inside it."""
    import os

    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


class WizardHost(Protocol):
    """What the steps ask of the app beyond Textual's App (tui.app.main.SftTuiApp has it; mypy checks)."""

    state: WizardState

    def action_next_step(self) -> None: ...

    def start_demo(self) -> None: ...

    def mark_exported(self) -> None: ...


if TYPE_CHECKING:
    class WizardApp(App[Any], WizardHost):
        """The type of a step's `self.app`, for mypy only: the app itself is tui.app.main.SftTuiApp,
        which this module cannot import (main imports the steps)."""


class Step(WorkerErrors, VerticalScroll):
    """A wizard step; `state` is the app's WizardState."""

    if TYPE_CHECKING:  # Textual's way to type `self.app` (textual.getters.app), for mypy only
        app = getters.app(WizardApp)

    @property
    def state(self) -> WizardState:
        return self.app.state

    def shown(self) -> None:
        """Called when the step becomes the current one."""

    def refusal(self) -> str | None:
        """Why the steps after this one cannot be entered yet (one sentence), or None."""
        return None

    def first_input(self) -> Widget | None:
        """The control the user must fill before going on from here, or None: the app focuses it
        when the step opens and when a refused move stays here."""
        return None
