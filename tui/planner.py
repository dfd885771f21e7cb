"""The planner: hardware + model + dataset facts + recipe + overrides -> a Plan.

Each setting is decided in one named rule (a `decide_*` function below) with a reason of one
kind: `forced` (hardware or physics), `fitted` (chosen to fit memory), `recipe`, `user` (set
with --set), `retry` (changed after a run ran out of memory: `oom_fix`) or `default`, and a sentence. The reason names its rule, so `grep` finds the code.
Settings use LLaMA-Factory's own argument names. Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from tui.hardware import Device
from tui.memory import Estimate, TrainingShape, estimate
from tui.models import ModelInfo

# The plan must leave this fraction of the device's memory unused: the estimate's own error.
SAFETY_MARGIN = 0.06
# Below this many optimizer steps a run learns little: warn.
MIN_USEFUL_STEPS = 20
# Datasets smaller than this get the small-dataset recipe by default (scenario S2: 29 rows).
SMALL_DATASET_ROWS = 1000
# Gradient checkpointing goes off (about 30 % faster) when the step needs less than this
# fraction of memory without it.
PLENTIFUL_MEMORY = 0.5
# Loss points wanted on the curve: logging_steps is capped at steps / this.
LOSS_POINTS = 20
LLAMAFACTORY_DEFAULT_CUTOFF = 2048
APPLE_GPU_SHARE = 0.75  # of unified memory that MPS lets one process use by default
MEMORY_SETTINGS = (
    "quantization_bit", "per_device_train_batch_size", "cutoff_len", "lora_rank", "lora_target",
    "lora_dropout", "finetuning_type", "bf16", "fp16", "pure_bf16", "flash_attn", "disable_gradient_checkpointing",
)


@dataclass(frozen=True)
class Reason:
    kind: str  # forced | fitted | recipe | user | default
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

    @classmethod
    def from_report(cls, report) -> "DataFacts":
        """From a tui.datasets.ValidationReport: train rows are those of files not named as
        val/test splits."""
        train = sum(f.valid_rows for f in report.files if f.split not in ("val", "test"))
        val = sum(f.valid_rows for f in report.files if f.split == "val")
        stats = report.lengths
        cutoff = stats.recommended_cutoff()["cutoff_len"] if stats.row.n else None
        return cls(train, val, max(stats.row.counts) if stats.row.n else None, cutoff, stats.exact)


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

    def to_json(self) -> dict:
        return {
            "settings": self.settings,
            "estimate": {
                "per_device_gib": round(self.estimate.per_device_gib, 3),
                "capacity_gib": round(self.capacity_gib, 3),
                "usable_gib": round(self.capacity_gib * (1 - SAFETY_MARGIN), 3),
                "safety_margin": SAFETY_MARGIN,
                "fits": self.fits,
                "breakdown": self.estimate.to_json()["breakdown"],
                "cpu_offload_gib": round(self.estimate.cpu_offload_gib, 3),
                "trainable_params": self.estimate.trainable_params,
                "seq_len": self.seq_len,
                "seq_len_source": self.seq_len_source,
                "notes": self.estimate.notes,
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


class _Decisions:
    """Collects settings and reasons; a user's --set value wins over every rule, and its
    reason still says what sft-tui would have chosen and why."""

    def __init__(self, overrides: dict[str, Any], fixes: dict[str, tuple[Any, str]] | None = None):
        self.fixes = fixes or {}
        # A fix acts as an override in every rule; only its reason differs.
        self.overrides = overrides | {key: value for key, (value, _) in self.fixes.items()}
        self.settings: dict[str, Any] = {}
        self.reasons: dict[str, Reason] = {}

    def decide(self, key: str, value, kind: str, text: str, rule: str):
        if key in self.fixes:
            value, why = self.fixes[key]
            text, kind = why, "retry"
        elif key in self.overrides:
            text = f"set by you with --set; sft-tui would choose {_show(value)}: {text}"
            value, kind = self.overrides[key], "user"
        self.settings[key] = value
        self.reasons[key] = Reason(kind, text, rule)
        return value


def _show(value) -> str:
    if value is None:
        return "none"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# --- the rules --------------------------------------------------------------------------------


def decide_recipe(request: PlanRequest) -> Reason:
    """The recipe: the user's, else small-dataset for small datasets, else standard-lora."""
    rule = "decide_recipe"
    if request.recipe:
        return Reason("user", f"recipe {request.recipe}, chosen by you", rule)
    rows = request.data.train_rows if request.data else None
    if rows is not None and rows < SMALL_DATASET_ROWS:
        return Reason("default", f"{rows} training rows is a small dataset (< {SMALL_DATASET_ROWS}): recipe small-dataset", rule)
    return Reason("default", "recipe standard-lora" + (f" for {rows} rows" if rows else ""), rule)


def default_recipe(request: PlanRequest) -> str:
    if request.recipe:
        return request.recipe
    rows = request.data.train_rows if request.data else None
    return "small-dataset" if rows is not None and rows < SMALL_DATASET_ROWS else "standard-lora"


def decide_precision(d: _Decisions, devices: list[Device]) -> None:
    rule = "decide_precision"
    names = ", ".join(sorted({dev.name for dev in devices}))
    if all(dev.bf16 for dev in devices):
        d.decide("bf16", True, "forced", f"{names} supports bf16: fp32's range at half the memory", rule)
        d.decide("fp16", False, "forced", "bf16 is used instead", rule)
    elif all(dev.fp16 for dev in devices):
        d.decide("bf16", False, "forced", f"{names} has no bf16", rule)
        d.decide("fp16", True, "forced", f"{names} has no bf16: fp16 mixed precision with loss scaling", rule)
    else:
        who = "the CPU" if devices[0].vendor == "cpu" else names
        why = " (fp16 fails numerically on gfx906)" if any(dev.gfx == "gfx906" for dev in devices) else ""
        d.decide("bf16", False, "forced", f"{who} has no usable bf16: trains in fp32{why}", rule)
        d.decide("fp16", False, "forced", f"{who} has no usable fp16: trains in fp32{why}", rule)
    if d.overrides.get("pure_bf16"):
        d.decide("pure_bf16", True, "user", "asked for: weights, gradients and optimizer states in bf16", rule)


def decide_flash_attn(d: _Decisions, devices: list[Device]) -> None:
    rule = "decide_flash_attn"
    eligible = all(dev.flash_attn2 for dev in devices)
    if any(dev.gfx == "gfx906" for dev in devices):
        d.decide("flash_attn", "disabled", "forced",
                 "gfx906 has no flash-attention kernels: eager attention, memory quadratic in length", rule)
    elif d.overrides.get("flash_attn") == "fa2" and not eligible:
        d.settings["flash_attn"] = "auto"
        d.reasons["flash_attn"] = Reason("forced", "you asked for fa2, which needs NVIDIA compute capability 8.0+ "
                                         "or ROCm gfx90a/gfx942; LLaMA-Factory will use sdpa", rule)
    else:
        text = "LLaMA-Factory picks sdpa (memory linear in length)"
        d.decide("flash_attn", "auto", "default", text + ("; fa2 is available: --set flash_attn=fa2" if eligible else ""), rule)


def decide_cutoff(d: _Decisions, request: PlanRequest) -> int:
    rule = "decide_cutoff"
    limit = request.model.architecture.max_position_embeddings
    data = request.data
    if data and data.recommended_cutoff:
        unit = "tokens" if data.exact_tokens else "approximate tokens"
        value, kind, text = data.recommended_cutoff, "default", f"the smallest multiple of 256 covering 99 % of rows ({unit})"
    else:
        value, kind, text = LLAMAFACTORY_DEFAULT_CUTOFF, "default", "LLaMA-Factory's default; no dataset statistics to fit it to"
    if limit and value > limit:
        value, kind, text = limit, "forced", f"the model's context is {limit} tokens"
    return d.decide("cutoff_len", value, kind, text, rule)


def sequence_for_estimate(cutoff: int, data: DataFacts | None) -> tuple[int, str]:
    """Batches are padded to their longest row, so the peak comes with the longest row,
    truncated at cutoff_len."""
    if data and data.row_tokens_max:
        unit = "tokens" if data.exact_tokens else "approximate tokens"
        if data.row_tokens_max < cutoff:
            return data.row_tokens_max, f"the dataset's longest row ({data.row_tokens_max} {unit}), shorter than cutoff_len"
        return cutoff, f"cutoff_len {cutoff}: the dataset's longest rows ({data.row_tokens_max} {unit}) are truncated to it"
    return cutoff, f"cutoff_len {cutoff}: no dataset statistics, so every batch is assumed that long"


SOFT_SETTINGS = ("finetuning_type", "lora_rank", "lora_alpha", "lora_dropout", "lora_target", "learning_rate",
                 "num_train_epochs", "max_steps", "lr_scheduler_type", "warmup_ratio", "warmup_steps", "max_grad_norm")


def decide_soft_settings(d: _Decisions, recipe_name: str, recipe: dict) -> None:
    """LoRA shape, learning rate, schedule: the recipe's."""
    rule = "decide_soft_settings"
    for key in SOFT_SETTINGS:
        if key in recipe:
            d.decide(key, recipe[key], "recipe", f"recipe {recipe_name}", rule)
    if "max_grad_norm" not in d.settings:
        d.decide("max_grad_norm", 1.0, "default", "LLaMA-Factory's default gradient clipping", rule)


def capacity_gib(devices: list[Device]) -> float:
    """Memory a training process can use on the tightest device: free memory, which is the
    total on an idle GPU or a profile; Apple's MPS lets a process use 75 % of unified memory."""
    def usable(dev: Device) -> float:
        return (dev.memory_total_mib * APPLE_GPU_SHARE if dev.vendor == "apple" else dev.memory_free_mib) / 1024

    return min(usable(dev) for dev in devices)


def fits(est: Estimate, capacity: float) -> bool:
    return est.per_device_gib <= capacity * (1 - SAFETY_MARGIN)


def largest_batch(shape: TrainingShape, capacity: float, per_device: int) -> int:
    """The largest micro-batch that divides `per_device` (so the effective batch comes out
    exact) and fits; 0 when not even one row does."""
    for batch in sorted((b for b in range(1, per_device + 1) if per_device % b == 0), reverse=True):
        if fits(estimate(replace(shape, micro_batch=batch)), capacity):
            return batch
    return 0


def _memory_options(d: _Decisions, base: TrainingShape, bnb: bool) -> list[TrainingShape]:
    """What can hold the model, least compromise first: no quantization on each GPU (DDP);
    sharded with ZeRO-2, then ZeRO-3; 8-bit; 4-bit (bitsandbytes hardware only); ZeRO-3 with
    CPU offload."""
    n_total = base.n_gpus
    quants = [d.overrides["quantization_bit"]] if "quantization_bit" in d.overrides else ([None, 8, 4] if bnb else [None])
    zeros = [0, 2, 3] if n_total > 1 else [0]
    options = [replace(base, quantization_bit=q, zero_stage=z) for q in quants for z in zeros]
    if n_total > 1:
        options.append(replace(base, quantization_bit=quants[-1], zero_stage=3, offload=True))
    return options


def _first_fitting(options: list[TrainingShape], capacity: float) -> TrainingShape | None:
    """The first option where one row leaves headroom (twice the safety margin, room for a
    batch longer than estimated), else the first where one row fits at all."""
    for margin in (2 * SAFETY_MARGIN, SAFETY_MARGIN):
        for option in options:
            if estimate(replace(option, micro_batch=1)).per_device_gib <= capacity * (1 - margin):
                return option
    return None


def decide_memory(d: _Decisions, request: PlanRequest, base: TrainingShape, capacity: float,
                  effective_batch: int) -> TrainingShape:
    """Quantization, sharding, cutoff and micro-batch together (see _memory_options and
    _first_fitting). When nothing fits at cutoff_len, the cutoff shrinks (by 256) until one row
    fits, unless you set it. Within the chosen option, the largest micro-batch that fits and
    divides the recipe's effective batch per device."""
    rule = "decide_memory"
    devices, n_total = request.devices, base.n_gpus
    bnb = all(dev.bitsandbytes for dev in devices)
    options = _memory_options(d, base, bnb)
    chosen = _first_fitting(options, capacity)
    if chosen is None and "cutoff_len" not in d.overrides:
        cutoff = d.settings["cutoff_len"]
        for seq in range((min(base.seq_len, cutoff) - 1) // 256 * 256, 255, -256):
            chosen = _first_fitting([replace(o, seq_len=seq) for o in options], capacity)
            if chosen is not None:
                d.settings["cutoff_len"] = seq
                d.reasons["cutoff_len"] = Reason("fitted", f"{cutoff} does not fit even one row per step; {seq} is the longest that does "
                                                 "(longer rows are truncated)", rule)
                break
    found = chosen is not None
    if chosen is None:  # the closest plan: the most compression, one row per step
        chosen = options[-1]
    per_device = max(1, math.ceil(effective_batch / n_total))
    user_batch = d.overrides.get("per_device_train_batch_size")
    batch = int(user_batch) if user_batch else max(1, largest_batch(chosen, capacity, per_device))
    chosen = replace(chosen, micro_batch=batch)
    est = estimate(chosen)

    precision = "16-bit" if base.compute_bytes == 2 else "fp32"
    quant = chosen.quantization_bit
    if quant is None:
        text = (f"{precision} weights fit: {est.per_device_gib:.1f} of {capacity:.1f} GiB" if found
                else "even the most compact plan does not fit")
        if not bnb:
            text = f"{devices[0].name} has no bitsandbytes support; {text}"
        d.decide("quantization_bit", None, "fitted" if bnb else "forced", text, rule)
    else:
        sharded = " even sharded over the GPUs" if n_total > 1 else ""
        tried = "; 8-bit leaves no headroom either" if quant == 4 else ""
        d.decide("quantization_bit", quant, "fitted",
                 f"{precision} weights leave no room in {capacity:.1f} GiB{sharded}{tried}: {quant}-bit bitsandbytes", rule)
        d.decide("quantization_method", "bnb", "forced", "bitsandbytes: LLaMA-Factory's on-the-fly quantization", rule)
    if not found and not user_batch:
        text = "one row per step: the closest plan, and even it does not fit"
    elif batch == per_device:
        text = f"{_plural(batch, 'row')} per device already reaches the recipe's effective batch of {effective_batch} over {_plural(n_total, 'device')}"
    else:
        text = (f"the largest that fits under the {SAFETY_MARGIN:.0%} safety margin ({est.per_device_gib:.1f} of {capacity:.1f} GiB) "
                f"and divides the {per_device} rows per device of the effective batch {effective_batch}")
    d.decide("per_device_train_batch_size", batch, "fitted", text, rule)
    if chosen.zero_stage:
        name = {2: "ds_z2.json", 3: "ds_z3_offload.json" if chosen.offload else "ds_z3.json"}[chosen.zero_stage]
        what = {2: "shards optimizer states and gradients", 3: "also shards the weights"}[chosen.zero_stage]
        offload = " and offloads to CPU RAM" if chosen.offload else ""
        d.decide("deepspeed", name, "fitted", f"one GPU cannot hold the step; DeepSpeed ZeRO-{chosen.zero_stage} {what}{offload}", rule)
    return chosen


def decide_gradient_checkpointing(d: _Decisions, shape: TrainingShape, capacity: float) -> TrainingShape:
    rule = "decide_gradient_checkpointing"
    with_it, without = estimate(shape), estimate(replace(shape, gradient_checkpointing=False))
    if without.per_device_gib <= capacity * PLENTIFUL_MEMORY:
        disable = d.decide("disable_gradient_checkpointing", True, "fitted",
                           f"memory is plentiful ({without.per_device_gib:.1f} of {capacity:.1f} GiB without it): about 30 % faster", rule)
    else:
        disable = d.decide("disable_gradient_checkpointing", False, "fitted",
                           f"recomputing activations saves {without.per_device_gib - with_it.per_device_gib:.1f} GiB "
                           f"(the step would need {without.per_device_gib:.1f} GiB without it)", rule)
    return replace(shape, gradient_checkpointing=not disable)


def decide_accumulation(d: _Decisions, effective_batch: int, batch: int, n_total: int) -> int:
    rule = "decide_accumulation"
    accum = max(1, math.ceil(effective_batch / (batch * n_total)))
    reached = accum * batch * n_total
    note = "" if reached == effective_batch else f" (the nearest to the recipe's {effective_batch})"
    text = f"{batch} x {accum} x {_plural(n_total, 'device')} = effective batch {reached}{note}"
    return d.decide("gradient_accumulation_steps", accum, "fitted", text, rule)


def optimizer_steps(rows: int, epochs: float, effective: int) -> int:
    """rows x epochs / effective batch, rounded up."""
    return max(1, math.ceil(rows * epochs / effective))


def decide_cadence(d: _Decisions, recipe_name: str, recipe: dict, steps: int | None, data: DataFacts | None, batch: int) -> None:
    """logging/save/eval steps from the recipe, scaled so a short run still draws a curve."""
    rule = "decide_cadence"
    logging = recipe["logging_steps"]
    if steps is not None and max(1, steps // LOSS_POINTS) < logging:
        d.decide("logging_steps", max(1, steps // LOSS_POINTS), "default",
                 f"{steps} steps: log often enough for about {LOSS_POINTS} loss points (recipe: {logging})", rule)
    else:
        d.decide("logging_steps", logging, "recipe", f"recipe {recipe_name}", rule)
    d.decide("save_steps", recipe["save_steps"], "recipe", f"recipe {recipe_name}; the final step is saved too", rule)
    if data and data.val_rows:
        eval_steps = recipe.get("eval_steps", recipe["save_steps"])
        kind, text = "recipe", f"recipe {recipe_name}"
        if steps is not None and eval_steps > steps // 2:
            eval_steps, kind = max(1, steps // 4), "default"
            text = f"a quarter of the {steps} steps, so the run is evaluated several times (recipe: {recipe.get('eval_steps')})"
        d.decide("eval_strategy", "steps", "default", f"the dataset has a validation split ({_plural(data.val_rows, 'row')})", rule)
        d.decide("eval_steps", eval_steps, kind, text, rule)
        d.decide("per_device_eval_batch_size", batch, "fitted", "the training micro-batch fits, so the same evaluation batch does", rule)
    elif recipe.get("val_size"):
        d.decide("val_size", recipe["val_size"], "recipe", f"no validation file: hold out {recipe['val_size']:.0%} (recipe {recipe_name})", rule)


# --- the plan -----------------------------------------------------------------------------------


def plan(request: PlanRequest) -> Plan:
    recipe = default_recipe(request)
    result = _plan_with_recipe(request, recipe, decide_recipe(request))
    if (request.recipe is None and recipe == "standard-lora" and result.settings.get("quantization_bit") == 4
            and "qlora" in request.recipes):
        why = Reason("default", "4-bit quantization was needed to fit memory, and the qlora recipe suits a 4-bit model "
                     "(higher learning rate, smaller rank)", "decide_recipe")
        with_qlora = _plan_with_recipe(request, "qlora", why)
        if with_qlora.settings.get("quantization_bit") == 4:  # the smaller rank did not change the memory verdict
            result = with_qlora
    return result


def _plan_with_recipe(request: PlanRequest, recipe_name: str, recipe_reason: Reason) -> Plan:
    if recipe_name not in request.recipes:
        raise ValueError(f"unknown recipe {recipe_name!r} (known: {', '.join(sorted(request.recipes))})")
    recipe = request.recipes[recipe_name]
    d = _Decisions(request.overrides, request.fixes)
    model = request.model
    d.decide("model_name_or_path", model.model_name_or_path, "user", f"model {model.name}", "plan")
    d.decide("template", model.template, "default", f"LLaMA-Factory's chat template for {model.name}", "plan")
    d.decide("stage", "sft", "default", "supervised fine-tuning", "plan")
    decide_precision(d, request.devices)
    decide_flash_attn(d, request.devices)
    cutoff = decide_cutoff(d, request)
    decide_soft_settings(d, recipe_name, recipe)

    n_gpus = 1 if request.devices[0].vendor == "cpu" else len(request.devices)
    n_total = n_gpus * request.nodes
    seq_len, seq_source = sequence_for_estimate(cutoff, request.data)
    capacity = capacity_gib(request.devices)
    s = d.settings
    base = TrainingShape(
        arch=model.architecture,
        finetuning_type=s.get("finetuning_type", "lora"),
        compute_bytes=2 if (s.get("bf16") or s.get("fp16")) else 4,
        pure_bf16=bool(s.get("pure_bf16")),
        lora_rank=s.get("lora_rank", 8),
        lora_target=s.get("lora_target", "all"),
        lora_dropout=s.get("lora_dropout", 0.0),
        seq_len=seq_len,
        attention="eager" if s.get("flash_attn") == "disabled" else "sdpa",
        n_gpus=n_total,
        vendor=request.devices[0].vendor,
    )
    effective = recipe["effective_batch_size"]
    shape = decide_memory(d, request, base, capacity, effective)
    if shape.seq_len != seq_len:
        seq_len, seq_source = shape.seq_len, f"cutoff_len {shape.seq_len}, shortened to fit memory"
    shape = decide_gradient_checkpointing(d, shape, capacity)
    batch = shape.micro_batch
    accum = decide_accumulation(d, effective, batch, n_total)
    steps = s.get("max_steps")
    if steps is None and request.data:
        steps = optimizer_steps(request.data.train_rows, s.get("num_train_epochs", 1), batch * accum * n_total)
    decide_cadence(d, recipe_name, recipe, steps, request.data, batch)
    d.reasons["recipe"] = recipe_reason
    est = estimate(shape)
    result = Plan(
        settings=d.settings, reasons=d.reasons, estimate=est, capacity_gib=capacity, fits=fits(est, capacity),
        seq_len=seq_len, seq_len_source=seq_source, steps=steps, recipe=recipe_name, n_gpus=n_gpus,
        nodes=request.nodes, zero_stage=shape.zero_stage, offload=shape.offload,
    )
    result.warnings = plan_warnings(result, request)
    if not result.fits:
        result.suggestions = what_would_fit(request, shape, capacity)
    return result


def plan_warnings(p: Plan, request: PlanRequest) -> list[str]:
    warnings = []
    usable = p.capacity_gib * (1 - SAFETY_MARGIN)
    if not p.fits:
        warnings.append(f"does not fit: needs {p.estimate.per_device_gib:.1f} GiB per device, {usable:.1f} GiB usable "
                        f"({p.capacity_gib:.1f} GiB less the {SAFETY_MARGIN:.0%} safety margin)")
        for key in sorted(set(request.overrides) & set(MEMORY_SETTINGS)):
            warnings.append(f"your --set {key}={_show(request.overrides[key])} is part of a plan that no longer fits")
    if p.reasons["cutoff_len"].kind == "fitted":
        longest = f" (the longest has {request.data.row_tokens_max} tokens)" if request.data and request.data.row_tokens_max else ""
        warnings.append(f"cutoff_len was shortened to {p.settings['cutoff_len']} to fit memory: longer rows are truncated{longest}")
    if p.fits and p.estimate.per_device_gib > p.capacity_gib * (1 - 2 * SAFETY_MARGIN):
        warnings.append(f"tight: {p.estimate.per_device_gib:.1f} of {usable:.1f} usable GiB, within the safety margin of the limit")
    if p.steps is not None:
        if p.steps < MIN_USEFUL_STEPS:
            warnings.append(f"only {p.steps} optimizer steps: too few to learn from; use more epochs, more data or a smaller effective batch")
        if p.settings.get("logging_steps", 0) >= p.steps:
            warnings.append(f"logging_steps {p.settings['logging_steps']} >= {p.steps} steps: the loss curve gets no points")
    elif request.data is None:
        warnings.append("no dataset given: the number of optimizer steps is unknown")
    busy = [dev for dev in request.devices if dev.vendor != "cpu" and not dev.free]
    if busy:
        warnings.append(f"GPU {', '.join(str(dev.index) for dev in busy)} is in use by other processes: planned with its free memory")
    if request.devices[0].vendor == "cpu":
        warnings.append("training on the CPU: fine for tiny models and smoke tests, very slow for anything else")
    return warnings


def what_would_fit(request: PlanRequest, shape: TrainingShape, capacity: float) -> list[str]:
    """Concrete ways out when nothing fits: a shorter cutoff, a bigger card, more GPUs."""
    one = replace(shape, micro_batch=1)
    suggestions = []
    for seq in range((shape.seq_len - 1) // 256 * 256, 255, -256):
        if fits(estimate(replace(one, seq_len=seq)), capacity):
            suggestions.append(f"a shorter cutoff_len: {seq} fits one row per step (--set cutoff_len={seq})")
            break
    need = estimate(one).per_device_gib / (1 - SAFETY_MARGIN)
    suggestions.append(f"more memory: a GPU with at least {math.ceil(need)} GiB")
    sharded = replace(one, zero_stage=3, offload=False)
    for n in (2, 4, 8, 16):
        if n > shape.n_gpus and fits(estimate(replace(sharded, n_gpus=n)), capacity):
            suggestions.append(f"more GPUs: {n} of these with DeepSpeed ZeRO-3 (--gpus {n})")
            break
    if shape.quantization_bit is None and not all(dev.bitsandbytes for dev in request.devices):
        suggestions.append("hardware with bitsandbytes support, for 4-bit QLoRA")
    suggestions.append("a smaller model")
    return suggestions


def oom_fix(settings: dict, bitsandbytes: bool, run_id: str) -> dict[str, tuple[Any, str]] | None:
    """What to change after a run ran out of memory, in the order that costs least: halve the
    micro-batch (accumulation doubles, so the effective batch stays), then 4-bit weights (LoRA
    with bitsandbytes only), then halve cutoff_len (longer rows are truncated). None when
    nothing is left to shrink."""
    rule = "oom_fix"
    batch = int(settings.get("per_device_train_batch_size") or 1)
    accumulation = int(settings.get("gradient_accumulation_steps") or 1)
    if batch > 1:
        return {"per_device_train_batch_size": (batch // 2, f"run {run_id} ran out of memory with {batch} rows per step: "
                                                f"halved ({rule})"),
                "gradient_accumulation_steps": (accumulation * 2, f"doubled with the halved micro-batch after run {run_id} "
                                                f"ran out of memory: the effective batch stays the same ({rule})")}
    if settings.get("finetuning_type", "lora") == "lora" and not settings.get("quantization_bit") and bitsandbytes:
        return {"quantization_bit": (4, f"run {run_id} ran out of memory at one row per step: 4-bit bitsandbytes "
                                     f"weights (QLoRA) ({rule})"),
                "quantization_method": ("bnb", f"4-bit through bitsandbytes ({rule})")}
    cutoff = int(settings.get("cutoff_len") or LLAMAFACTORY_DEFAULT_CUTOFF)
    if cutoff > 256:
        return {"cutoff_len": (cutoff // 2, f"run {run_id} ran out of memory at one row per step"
                               f"{' in 4-bit' if settings.get('quantization_bit') else ''}: cutoff halved to "
                               f"{cutoff // 2}, longer rows are truncated ({rule})")}
    return None
