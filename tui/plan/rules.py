"""One rule per setting: each `decide_*` function is the one place that decides its settings
and says why (forced by hardware, fitted to memory, recipe default, or the user's own value)."""

from __future__ import annotations

import math
from typing import Any

from tui.common.text import plural, yaml_spelling
from tui.hardware.device import Device
from tui.plan.values import LOSS_POINTS, DataFacts, PlanRequest, Reason, ReasonKind

# Below this many optimizer steps a run learns little: warn.
MIN_USEFUL_STEPS = 20


# Datasets smaller than this get the small-dataset recipe by default (scenario S2: 29 rows).
SMALL_DATASET_ROWS = 1000


LLAMAFACTORY_DEFAULT_CUTOFF = 2048


class Decisions:
    """Collects settings and reasons; a user's --set value wins over every rule (planner.plan then
    says in its reason what sft-tui would have chosen without it, and why)."""

    def __init__(self, overrides: dict[str, Any], fixes: dict[str, tuple[Any, str]] | None = None):
        self.fixes = fixes or {}
        # A fix acts as an override in every rule; only its reason differs.
        self.overrides = overrides | {key: value for key, (value, _) in self.fixes.items()}
        self.settings: dict[str, Any] = {}
        self.reasons: dict[str, Reason] = {}
        self.hints: list[str] = []  # what to install for a lever that would help (levers.py)

    def decide(self, key: str, value, kind: ReasonKind, text: str, rule: str):
        if key in self.fixes:
            value, why = self.fixes[key]
            text, kind = why, "retry"
        elif key in self.overrides:  # planner.plan adds what sft-tui would choose without it
            text = "set by you"
            value, kind = self.overrides[key], "user"
        self.settings[key] = value
        self.reasons[key] = Reason(kind, text, rule)
        return value

    def decide_remaining_fixes(self) -> None:
        """A fix for a setting no rule decides (a retry's preprocessing_num_workers) goes to train.yaml too."""
        for key in self.fixes:
            if key not in self.settings:
                self.decide(key, None, "retry", "", "retry")


def show(value) -> str:
    """A value in a reason or warning, spelled as train.yaml and the Set box spell it (null, true)."""
    return yaml_spelling(value)


def decide_recipe(request: PlanRequest) -> Reason:
    """The recipe: the user's, else small-dataset for small datasets, else standard-lora."""
    rule = "decide_recipe"
    if request.recipe:
        return Reason("user", f"recipe {request.recipe}, chosen by you", rule)
    rows = request.data.train_rows if request.data else None
    if rows is not None and rows < SMALL_DATASET_ROWS:
        return Reason("default", f"{plural(rows, 'training row')} is a small dataset (< {SMALL_DATASET_ROWS}): recipe small-dataset", rule)
    return Reason("default", "recipe standard-lora" + (f" for {rows} rows" if rows else ""), rule)


def default_recipe(request: PlanRequest) -> str:
    if request.recipe:
        return request.recipe
    rows = request.data.train_rows if request.data else None
    return "small-dataset" if rows is not None and rows < SMALL_DATASET_ROWS else "standard-lora"


def decide_precision(d: Decisions, devices: list[Device]) -> None:
    rule = "decide_precision"
    names = ", ".join(sorted({dev.name for dev in devices}))
    if all(dev.bf16 for dev in devices):
        d.decide("bf16", True, "forced", f"{names} supports bf16: fp32's range at half the memory", rule)
        d.decide("fp16", False, "forced", "bf16 is used instead", rule)
    elif all(dev.fp16 for dev in devices):
        d.decide("bf16", False, "forced", f"{names} has no bf16", rule)
        d.decide("fp16", True, "forced", f"{names} has no bf16: fp16 mixed precision with loss scaling", rule)
    else:
        who = "the CPU" if not devices[0].is_gpu else names
        why = " (fp16 fails numerically on gfx906)" if any(dev.gfx == "gfx906" for dev in devices) else ""
        d.decide("bf16", False, "forced", f"{who} has no usable bf16: trains in fp32{why}", rule)
        d.decide("fp16", False, "forced", f"{who} has no usable fp16: trains in fp32{why}", rule)
    if d.overrides.get("pure_bf16"):
        d.decide("pure_bf16", True, "user", "asked for: weights, gradients and optimizer states in bf16", rule)


def decide_flash_attn(d: Decisions, devices: list[Device]) -> None:
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


def decide_cutoff(d: Decisions, request: PlanRequest) -> int:
    rule = "decide_cutoff"
    limit = request.model.architecture.max_position_embeddings
    data = request.data
    kind: ReasonKind
    if data and data.recommended_cutoff:
        unit = "tokens" if data.exact_tokens else "approximate tokens"
        value, kind, text = data.recommended_cutoff, "default", f"the smallest multiple of 256 covering 99 % of rows ({unit})"
    else:
        value, kind, text = LLAMAFACTORY_DEFAULT_CUTOFF, "default", "LLaMA-Factory's default; no dataset statistics to fit it to"
    if limit and value > limit:
        value, kind, text = limit, "forced", f"the model's context is {limit} tokens"
    return d.decide("cutoff_len", value, kind, text, rule)


def sequence_for_estimate(cutoff: int, data: DataFacts | None, packing: bool = False) -> tuple[int, str]:
    """Batches are padded to their longest row, so the peak comes with the longest row,
    truncated at cutoff_len; with packing every row is cutoff_len long."""
    if packing:
        return cutoff, f"cutoff_len {cutoff}: packing fills every row to cutoff_len"
    if data and data.row_tokens_max:
        unit = "tokens" if data.exact_tokens else "approximate tokens"
        if data.row_tokens_max < cutoff:
            return data.row_tokens_max, f"the dataset's longest row ({data.row_tokens_max} {unit}), shorter than cutoff_len"
        return cutoff, f"cutoff_len {cutoff}: the dataset's longest rows ({data.row_tokens_max} {unit}) are truncated to it"
    return cutoff, f"cutoff_len {cutoff}: no dataset statistics, so every batch is assumed that long"


SOFT_SETTINGS = ("finetuning_type", "lora_rank", "lora_alpha", "lora_dropout", "lora_target", "learning_rate",
                 "num_train_epochs", "max_steps", "lr_scheduler_type", "warmup_ratio", "warmup_steps", "max_grad_norm")


def decide_soft_settings(d: Decisions, recipe_name: str, recipe: dict) -> None:
    """LoRA shape, learning rate, schedule: the recipe's."""
    rule = "decide_soft_settings"
    for key in SOFT_SETTINGS:
        if key in recipe:
            d.decide(key, recipe[key], "recipe", f"recipe {recipe_name}", rule)
    if "max_grad_norm" not in d.settings:
        d.decide("max_grad_norm", 1.0, "default", "LLaMA-Factory's default gradient clipping", rule)


def decide_accumulation(d: Decisions, effective_batch: int, batch: int, n_total: int) -> int:
    rule = "decide_accumulation"
    accum = max(1, math.ceil(effective_batch / (batch * n_total)))
    reached = accum * batch * n_total
    note = "" if reached == effective_batch else f" (the nearest to the recipe's {effective_batch})"
    text = f"{batch} x {accum} x {plural(n_total, 'device')} = effective batch {reached}{note}"
    return d.decide("gradient_accumulation_steps", accum, "fitted", text, rule)


def optimizer_steps(rows: int, epochs: float, batch: int, accumulation: int, n_total: int) -> int:
    """As transformers counts them (Trainer.set_initial_training_values): each process's loader has
    ceil(rows / processes / batch) micro-batches (the last one partial, not dropped), an epoch is
    ceil(that / accumulation) optimizer steps, and the run ceil(epochs x that)."""
    per_process = math.ceil(rows / n_total)
    updates_per_epoch = max(1, math.ceil(math.ceil(per_process / batch) / accumulation))
    return max(1, math.ceil(epochs * updates_per_epoch))


def decide_cadence(d: Decisions, recipe_name: str, recipe: dict, steps: int | None, data: DataFacts | None, batch: int) -> None:
    """logging/save/eval steps from the recipe, scaled so a short run still draws a curve."""
    rule = "decide_cadence"
    logging = recipe["logging_steps"]
    if steps is not None and max(1, steps // LOSS_POINTS) < logging:
        d.decide("logging_steps", max(1, steps // LOSS_POINTS), "default",
                 f"{plural(steps, 'step')}: log often enough for about {LOSS_POINTS} loss points (recipe: {logging})", rule)
    else:
        d.decide("logging_steps", logging, "recipe", f"recipe {recipe_name}", rule)
    d.decide("save_steps", recipe["save_steps"], "recipe", f"recipe {recipe_name}; the final step is saved too", rule)
    if data and data.val_rows:
        eval_steps = recipe.get("eval_steps", recipe["save_steps"])
        kind: ReasonKind = "recipe"
        text = f"recipe {recipe_name}"
        if steps is not None and eval_steps > steps // 2:
            eval_steps, kind = max(1, steps // 4), "default"
            text = f"a quarter of the {steps} steps, so the run is evaluated several times (recipe: {recipe.get('eval_steps')})"
        d.decide("eval_strategy", "steps", "default", f"the dataset has a validation split ({plural(data.val_rows, 'row')})", rule)
        d.decide("eval_steps", eval_steps, kind, text, rule)
        d.decide("per_device_eval_batch_size", batch, "fitted", "the training micro-batch fits, so the same evaluation batch does", rule)
    elif recipe.get("val_size"):
        d.decide("val_size", recipe["val_size"], "recipe", f"no validation file: hold out {recipe['val_size']:.0%} (recipe {recipe_name})", rule)
