"""Fitting memory: the usable capacity of the devices, whether an estimate fits, the batch size
and memory settings (quantization, gradient checkpointing) that fit, what would fit when nothing
does, and the fix after an out-of-memory crash."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from tui.common.text import plural
from tui.hardware.device import Device
from tui.hardware.vendors import vendor_of
from tui.plan.memory import Estimate, TrainingShape, estimate
from tui.plan.rules import LLAMAFACTORY_DEFAULT_CUTOFF, Decisions
from tui.plan.values import SAFETY_MARGIN, PlanRequest, Reason

# Gradient checkpointing goes off (about 30 % faster) when the step needs less than this
# fraction of memory without it.
PLENTIFUL_MEMORY = 0.5


def capacity_gib(devices: list[Device]) -> float:
    """Memory a training process can use on the tightest device, as its vendor says: free memory,
    which is the total on an idle GPU or a profile; Apple's MPS lets a process use 75 % of unified memory."""
    return min(vendor_of(dev.vendor).memory_for_training_mib(dev) for dev in devices) / 1024


def fits(est: Estimate, capacity: float) -> bool:
    return est.per_device_gib <= capacity * (1 - SAFETY_MARGIN)


def largest_batch(shape: TrainingShape, capacity: float, per_device: int) -> int:
    """The largest micro-batch that divides `per_device` (so the effective batch comes out
    exact) and fits; 0 when not even one row does."""
    for batch in sorted((b for b in range(1, per_device + 1) if per_device % b == 0), reverse=True):
        if fits(estimate(replace(shape, micro_batch=batch)), capacity):
            return batch
    return 0


def _memory_options(d: Decisions, base: TrainingShape, bnb: bool) -> list[TrainingShape]:
    """What can hold the model, least compromise first: no quantization on each GPU (DDP);
    sharded with ZeRO-2, then ZeRO-3; 8-bit; 4-bit (bitsandbytes hardware only); ZeRO-3 with
    CPU offload."""
    n_total = base.n_gpus
    # LLaMA-Factory refuses quantization with full or freeze tuning ("Quantization is only
    # compatible with the LoRA or OFT method", hparams/parser.py): those never get it from the planner.
    quantizable = bnb and base.finetuning_type == "lora"
    quants = [d.overrides["quantization_bit"]] if "quantization_bit" in d.overrides else ([None, 8, 4] if quantizable else [None])
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


def decide_memory(d: Decisions, request: PlanRequest, base: TrainingShape, capacity: float,
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
        # With your micro-batch the step may not fit; whether the weights do is judged at one row.
        judged = estimate(replace(chosen, micro_batch=1)) if user_batch else est
        at_one = " at one row per step" if user_batch else ""
        text = (f"{precision} weights fit: {judged.per_device_gib:.1f} of {capacity:.1f} GiB{at_one}" if found
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
        text = f"{plural(batch, 'row')} per device already reaches the recipe's effective batch of {effective_batch} over {plural(n_total, 'device')}"
    else:
        text = (f"the largest that fits under the {SAFETY_MARGIN:.0%} safety margin ({est.per_device_gib:.1f} of {capacity:.1f} GiB) "
                f"and divides the {plural(per_device, 'row')} per device of the effective batch {effective_batch}")
    d.decide("per_device_train_batch_size", batch, "fitted", text, rule)
    if chosen.zero_stage:
        name = {2: "ds_z2.json", 3: "ds_z3_offload.json" if chosen.offload else "ds_z3.json"}[chosen.zero_stage]
        what = {2: "shards optimizer states and gradients", 3: "also shards the weights"}[chosen.zero_stage]
        offload = " and offloads to CPU RAM" if chosen.offload else ""
        d.decide("deepspeed", name, "fitted", f"one GPU cannot hold the step; DeepSpeed ZeRO-{chosen.zero_stage} {what}{offload}", rule)
    return chosen


def decide_gradient_checkpointing(d: Decisions, shape: TrainingShape, capacity: float) -> TrainingShape:
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


def what_would_fit(request: PlanRequest, shape: TrainingShape, capacity: float) -> list[str]:
    """Concrete ways out when nothing fits: a shorter cutoff, a bigger card, more GPUs."""
    one = replace(shape, micro_batch=1)
    suggestions = []
    for seq in range((shape.seq_len - 1) // 256 * 256, 255, -256):
        if fits(estimate(replace(one, seq_len=seq)), capacity):
            suggestions.append(f"a shorter cutoff_len: {seq} fits one row per step (--set cutoff_len={seq})")
            break
    need = estimate(shape).per_device_gib / (1 - SAFETY_MARGIN)  # this plan as it is, the margin kept
    suggestions.append(f"more memory: a GPU with at least {math.ceil(need)} GiB for this plan as it is")
    sharded = replace(one, zero_stage=3, offload=False)
    # More devices with ZeRO-3 only where there are GPUs to add: a CPU (or Apple's one MPS device)
    # is planned as one device, so "2 of these" would be no plan at all.
    for n in (2, 4, 8, 16) if vendor_of(request.devices[0].vendor).multi_gpu else ():
        if n > shape.n_gpus and fits(estimate(replace(sharded, n_gpus=n)), capacity):
            suggestions.append(f"more GPUs: {n} of these with DeepSpeed ZeRO-3 (--gpus {n})")
            break
    if shape.quantization_bit is None and not all(dev.bitsandbytes for dev in request.devices):
        suggestions.append("hardware with bitsandbytes support, for 4-bit QLoRA")
    suggestions.append("a smaller model")
    return suggestions


MAX_CUTOFF_OPTIONS = 24  # rows in the cutoff table: enough to choose from, short enough to read


def cutoff_options(shape: TrainingShape, data, capacity: float, packed: bool = False) -> list[dict]:
    """The cost of each cutoff_len: multiples of 256 up to the longest row (thinned to at most
    MAX_CUTOFF_OPTIONS, the longest always kept), each with the rows it truncates, the memory
    per device at the planned micro-batch (a batch is padded to its longest row, so a cutoff
    beyond the longest row costs what the longest row costs) and whether that fits."""
    longest = data.row_tokens_max
    top = -(-longest // 256)
    step = -(-top // MAX_CUTOFF_OPTIONS)
    multiples = sorted({*range(step, top + 1, step), top})
    options = []
    for multiple in multiples:
        cutoff = multiple * 256
        est = estimate(replace(shape, seq_len=cutoff if packed else min(cutoff, longest)))  # packed rows are full
        options.append({"cutoff_len": cutoff, "rows_truncated": data.rows_longer_than(cutoff),
                        "per_device_gib": round(est.per_device_gib, 3), "fits": fits(est, capacity)})
    return options


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
