"""The memory levers LLaMA-Factory users reach for when memory is short, as settings the planner
reads (yours) and chooses (with reasons), in the order that costs least:

- `enable_liger_kernel` before quantization when the logits dominate the step: Liger's fused
  linear cross-entropy never materialises them, and it is faster, not slower (NVIDIA and AMD,
  with liger-kernel installed in the training environment, on a model family Liger patches);
- `optim: adamw_8bit` before DeepSpeed ZeRO for full fine-tuning: 2 bytes of optimizer state a
  parameter instead of 8, with bitsandbytes installed and supported by the hardware.

What you set yourself (`optim`, `use_galore`, `use_apollo`, `use_badam`, `use_unsloth`,
`use_unsloth_gc`, `freeze_trainable_layers`, `packing`) shapes the estimate as its mechanism
says (tui/plan/memory.py). The planner chooses only what the training environment has
(`PlanRequest.packages`, from tui/hardware/environment.py); when a lever would help but is not
installed, a warning says what to install.
"""

from __future__ import annotations

from dataclasses import replace

from tui.common.text import plural
from tui.hardware.vendors import vendor_of
from tui.plan.memory import (
    DEFAULT_FREEZE_LAYERS,
    DEFAULT_LOW_RANK,
    TrainingShape,
    estimate,
)
from tui.plan.rules import Decisions
from tui.plan.values import PlanRequest

# Model families liger_kernel.transformers patches (monkey_patch.py, MODEL_TYPE_TO_APPLY_LIGER_FN).
LIGER_MODEL_TYPES = {"llama", "mistral", "mixtral", "gemma", "gemma2", "gemma3", "gemma3_text", "qwen2", "qwen3",
                     "qwen2_moe", "qwen3_moe", "qwen2_vl", "qwen2_5_vl", "phi3", "glm4", "olmo2", "granite"}
# The logits "dominate" when they are at least this share of the step's memory: then Liger saves
# more than any other lever short of quantization.
LOGITS_DOMINATE = 0.25


def shape_levers(settings: dict) -> dict:
    """TrainingShape fields from the lever settings in force (yours win over the planner's)."""
    low_rank = next((name for name in ("badam", "galore", "apollo") if settings.get(f"use_{name}")), None)
    rank_key = {"galore": "galore_rank", "apollo": "apollo_rank"}.get(low_rank or "")
    return {
        "optim": settings.get("optim") or "adamw_torch",
        "liger": bool(settings.get("enable_liger_kernel")),
        "unsloth": bool(settings.get("use_unsloth")),
        "unsloth_gc": bool(settings.get("use_unsloth_gc")),
        "freeze_layers": int(settings.get("freeze_trainable_layers") or DEFAULT_FREEZE_LAYERS),
        "low_rank_optimizer": low_rank,
        "low_rank": int(settings.get(rank_key) or DEFAULT_LOW_RANK) if rank_key else DEFAULT_LOW_RANK,
        "layerwise": bool(low_rank and settings.get(f"{low_rank}_layerwise")),
    }


def packs(settings: dict) -> bool:
    """packing / neat_packing: every packed row is cutoff_len tokens long."""
    return bool(settings.get("packing") or settings.get("neat_packing"))


def liger_possible(request: PlanRequest) -> bool:
    """Liger can run here, whether or not it is installed."""
    return (vendor_of(request.devices[0].vendor).liger  # Triton kernels
            and request.model.architecture.model_type in LIGER_MODEL_TYPES)


def installed(request: PlanRequest, package: str) -> bool:
    """Known to be importable in the training environment (unknown counts as not)."""
    return bool(request.packages and request.packages.get(package))


def install_hint(request: PlanRequest, package: str) -> str:
    if request.packages is None:  # planning for another machine: its environment is not known here
        return f"if {package} is installed in the training environment"
    return f"{package} is not installed in the training environment (pip install {package} there)"


def decide_levers(d: Decisions, request: PlanRequest, base: TrainingShape, capacity: float,
                  rows_wanted: int) -> TrainingShape:
    """Liger when the logits dominate the step at the rows per device the recipe wants, 8-bit
    AdamW when full fine-tuning does not fit on one device; each only where installed, each
    with its reason."""
    rule = "decide_levers"
    one = estimate(replace(base, micro_batch=1))
    wanted = estimate(replace(base, micro_batch=rows_wanted))
    logits = wanted.breakdown["logits"]
    if not base.liger and "enable_liger_kernel" not in d.overrides and liger_possible(request) \
            and logits >= LOGITS_DOMINATE * wanted.per_device_gib:
        saved = logits - estimate(replace(base, micro_batch=rows_wanted, liger=True)).breakdown["logits"]
        if installed(request, "liger_kernel"):
            d.decide("enable_liger_kernel", True, "fitted",
                     f"at {plural(rows_wanted, 'row')} per step the logits take {logits:.1f} of {wanted.per_device_gib:.1f} GiB; "
                     f"Liger's fused cross-entropy never materialises them ({saved:.1f} GiB less, and faster)", rule)
            base = replace(base, liger=True)
        else:
            d.hints.append(f"{install_hint(request, 'liger-kernel')}: with --set enable_liger_kernel=true the logits' "
                           f"{logits:.1f} GiB at {plural(rows_wanted, 'row')} per step shrink by {saved:.1f} GiB (more rows per step, or no quantization)")
    full_fp32_states = base.finetuning_type == "full" and base.optim == "adamw_torch" and "optim" not in d.overrides
    if full_fp32_states and one.per_device_gib > capacity:
        eight_bit = estimate(replace(base, micro_batch=1, optim="adamw_8bit"))
        if all(dev.bitsandbytes for dev in request.devices) and installed(request, "bitsandbytes"):
            d.decide("optim", "adamw_8bit", "fitted",
                     f"full fine-tuning's AdamW states ({one.breakdown['optimizer']:.1f} GiB) leave no room on one device: "
                     f"8-bit AdamW keeps them in {eight_bit.breakdown['optimizer']:.1f} GiB, before sharding with ZeRO", rule)
            base = replace(base, optim="adamw_8bit")
        elif all(dev.bitsandbytes for dev in request.devices):
            d.hints.append(f"{install_hint(request, 'bitsandbytes')}: 8-bit AdamW (--set optim=adamw_8bit) "
                           f"would need {eight_bit.per_device_gib:.1f} GiB a row instead of {one.per_device_gib:.1f}")
    return base
