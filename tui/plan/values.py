"""The planner's value objects: a reason for each setting, the dataset facts planning reads,
the request (hardware, model, data, recipe, overrides) and the Plan that everything else reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from tui.hardware.device import Device
from tui.models.resolve import ModelInfo
from tui.plan.host_ram import HostRam
from tui.plan.memory import Estimate
from tui.plan.timing import TimeEstimate

# Loss points wanted on the curve: logging_steps is capped at steps / this.
LOSS_POINTS = 20


# The plan must leave this fraction of the device's memory unused: the estimate's own error.
SAFETY_MARGIN = 0.06


MEMORY_SETTINGS = (
    "quantization_bit", "per_device_train_batch_size", "cutoff_len", "lora_rank", "lora_target",
    "lora_dropout", "finetuning_type", "bf16", "fp16", "pure_bf16", "flash_attn", "disable_gradient_checkpointing",
)


# Who decided a setting: the hardware forced it, the search fitted it to memory, the recipe, your
# --set, LLaMA-Factory's default, or a retry's fix.
ReasonKind = Literal["forced", "fitted", "recipe", "user", "default", "retry"]


@dataclass(frozen=True)
class Reason:
    kind: ReasonKind
    text: str
    rule: str  # the planner function that decided

    def to_json(self) -> dict:
        return {"kind": self.kind, "text": self.text, "rule": self.rule}


@dataclass(frozen=True)
class DataFacts:
    """What the planner needs from the dataset statistics."""

    train_rows: int
    val_rows: int = 0
    row_tokens_max: int | None = None
    recommended_cutoff: int | None = None
    exact_tokens: bool = False
    row_tokens: dict[int, int] | None = None  # tokens per row -> rows (the length histogram)

    @classmethod
    def from_report(cls, report) -> "DataFacts":
        """From a tui.datasets.ValidationReport: train rows are those of files not named as
        val/test splits."""
        train = sum(f.valid_rows for f in report.files if f.split not in ("val", "test"))
        val = sum(f.valid_rows for f in report.files if f.split == "val")
        stats = report.lengths
        cutoff = stats.recommended_cutoff()["cutoff_len"] if stats.row.n else None
        return cls(train, val, max(stats.row.counts) if stats.row.n else None, cutoff, stats.exact,
                   dict(stats.row.counts) if stats.row.n else None)

    def row_count(self) -> int:
        """Rows the length histogram counts (every file, splits included)."""
        return sum(self.row_tokens.values()) if self.row_tokens else 0

    def tokens_total(self) -> int | None:
        return sum(length * rows for length, rows in self.row_tokens.items()) if self.row_tokens else None

    def rows_longer_than(self, cutoff: int) -> int | None:
        return sum(rows for length, rows in self.row_tokens.items() if length > cutoff) if self.row_tokens else None


@dataclass
class Plan:
    settings: dict[str, Any]
    reasons: dict[str, Reason]
    estimate: Estimate
    capacity_gib: float
    fits: bool
    seq_len: int
    seq_len_source: str
    steps: int | None
    recipe: str
    n_gpus: int
    nodes: int = 1
    zero_stage: int = 0
    offload: bool = False
    warnings: list[str] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    time_estimate: TimeEstimate | None = None  # tui.plan.timing: how long the training steps take
    host_ram: HostRam | None = None  # tui.plan.host_ram: RAM per node, with its parts
    cutoff_options: list[dict] = field(default_factory=list)  # fitting.cutoff_options: each cutoff's cost
    simulated: dict | None = None  # tui.plan.simulated: the simulated step, or why not (set where it was asked)
    memory_history: dict | None = None  # tui.plan.calibrated: what your past runs peaked at against their estimate
    shape: Any = field(default=None, repr=False, compare=False)  # the TrainingShape it was estimated at

    @property
    def usable_gib(self) -> float:
        """What a device may fill: its capacity less the safety margin (the one place it is computed
        for a plan; plan.json's estimate.usable_gib, the CLI and the app read it)."""
        return round(self.capacity_gib * (1 - SAFETY_MARGIN), 3)

    def to_json(self) -> dict:
        return {
            "settings": self.settings,
            "estimate": {
                "per_device_gib": round(self.estimate.per_device_gib, 3),
                "capacity_gib": round(self.capacity_gib, 3),
                "usable_gib": self.usable_gib,
                "safety_margin": SAFETY_MARGIN,
                "fits": self.fits,
                "breakdown": self.estimate.to_json()["breakdown"],
                "cpu_offload_gib": round(self.estimate.cpu_offload_gib, 3),
                "trainable_params": self.estimate.trainable_params,
                "seq_len": self.seq_len,
                "seq_len_source": self.seq_len_source,
                "notes": self.estimate.notes,
                **(self.host_ram.to_json() if self.host_ram else {}),
                **({"simulated": self.simulated} if self.simulated is not None else {}),
                **({"history": self.memory_history} if self.memory_history is not None else {}),
            },
            "reasons": {k: r.to_json() for k, r in self.reasons.items()},
            "steps": self.steps,
            "recipe": self.recipe,
            "gpus": self.n_gpus,
            "nodes": self.nodes,
            "zero_stage": self.zero_stage,
            "offload": self.offload,
            "warnings": self.warnings,
            "suggestions": self.suggestions,
            "time_estimate": self.time_estimate.to_json() if self.time_estimate else None,
            "cutoff_options": self.cutoff_options,
        }


@dataclass
class PlanRequest:
    devices: list[Device]  # the devices to train on (one per GPU; a CPU-only plan has the CPU)
    model: ModelInfo
    recipes: dict[str, dict]  # name -> recipe profile data
    recipe: str | None = None  # None: chosen by decide_recipe
    data: DataFacts | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    nodes: int = 1
    fixes: dict[str, tuple[Any, str]] = field(default_factory=dict)  # key -> (value, why): oom_fix's
    price_per_gpu_hour: float | None = None  # turns the time estimate into a cost (--price-per-gpu-hour)
    packages: dict[str, bool] | None = None  # importable in the training environment; None: unknown
    host_ram_gib: float | None = None  # RAM per node (this machine's, or the hardware profile's)
    # (fixed, growing) factors of the analytic memory model fitted to this model's simulated steps
    # (tui/plan/memory_calibration.py); None: the analytic model as it is
    memory_calibration: tuple[float, float] | None = None
