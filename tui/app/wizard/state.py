"""What the wizard's steps share: the choices made so far, and the base of every step."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from textual.containers import VerticalScroll

from tui.hardware.device import Detection

STEPS = (("hardware", "1 Hardware"), ("model", "2 Model"), ("dataset", "3 Dataset"), ("plan", "4 Plan"),
         ("review", "5 Review"), ("run", "6 Run"))


@dataclass
class WizardState:
    hardware: str = "detected"  # or a hardware profile's name
    detection: Detection | None = None
    gpu_indices: list[int] | None = None  # chosen detected GPUs; None: all
    gpus: int | None = None  # a hardware profile's GPU count (--gpus); None: the profile's own
    gpu_problem: str | None = None  # why the GPU count box's text is no count (the hardware step cannot be left)
    model: str = ""
    model_info: object = None
    model_problem: str | None = None  # why the model box's text is not a resolved model (its look-up error)
    datasets: list[str] = field(default_factory=list)
    report: object = None
    drop_errors: bool = False
    recipe: str | None = None
    overrides: dict = field(default_factory=dict)
    request: object = None
    plan: object = None
    env: str = ""
    out_dir: str = "."
    run_name: str = ""
    run_dir: Path | None = None
    exported_plan: tuple | None = None  # plan_key() of the plan run_dir was exported from here (None: not exported here)

    def model_refusal(self) -> str | None:
        """Why the steps after the model cannot be entered yet, or None: they need a resolved model."""
        if self.model_problem:
            return self.model_problem
        return None if self.model_info is not None else "choose a model first: a model profile, hub id or local directory"

    def plan_key(self) -> tuple | None:
        """What a bundle is written from: the plan's settings and layout, and the choices that go
        into the bundle beside them (model, data, dropped rows, hardware). None without a plan."""
        p = self.plan
        if p is None:
            return None
        return (self.model, tuple(self.datasets), self.drop_errors, self.hardware, self.gpus, repr(self.gpu_indices),
                repr(sorted(p.settings.items())), p.recipe, p.n_gpus, p.nodes, p.zero_stage, p.offload)

    def export_is_stale(self) -> bool:
        """run_dir was exported here from a plan that has changed since: it is not the current plan."""
        return self.run_dir is not None and self.exported_plan is not None and self.plan_key() != self.exported_plan

    def host_ram_gib(self) -> float | None:
        """RAM per node: this machine's from the detection, or what the hardware profile states."""
        from tui.common.profiles import load_profiles

        if self.hardware != "detected":
            return load_profiles().get("hardware", self.hardware).data.get("host_ram_gib")
        return self.detection.host_ram_gib if self.detection is not None else None

    def devices(self):
        """The devices the plan is for: the chosen detected GPUs (else the CPU), or a profile's."""
        from tui.common.profiles import load_profiles
        from tui.hardware.profile import devices_from_profile

        if self.hardware != "detected":
            return devices_from_profile(load_profiles().get("hardware", self.hardware).data, self.gpus)
        detection = self.detection
        if detection is None:
            from tui.hardware.detect import detect

            detection = self.detection = detect()
        gpus = [d for d in detection.gpus if self.gpu_indices is None or d.index in self.gpu_indices]
        return gpus or [d for d in detection.devices if d.vendor == "cpu"]


def shown_path(path: Path) -> str:
    """A run directory as the user knows it: relative to the working directory when inside it."""
    import os

    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


class Step(VerticalScroll):
    """A wizard step; `state` is the app's WizardState."""

    @property
    def state(self) -> WizardState:
        return self.app.state

    def shown(self) -> None:
        """Called when the step becomes the current one."""
