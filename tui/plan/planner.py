"""The planner: a PlanRequest in, a Plan out, with every LLaMA-Factory setting, the memory
estimate and a reason per setting. It runs the rules in rules.py and fitting.py in order; where
a recommended value is decided, look there (one `decide_*` per setting)."""

from __future__ import annotations

from dataclasses import replace

from tui.common.text import plural
from tui.hardware.peaks import peak_tflops
from tui.plan.fitting import (
    capacity_gib,
    cutoff_options,
    decide_gradient_checkpointing,
    decide_memory,
    fits,
    what_would_fit,
)
from tui.plan.host_ram import host_ram, host_ram_warning
from tui.plan.levers import decide_levers, packs, shape_levers
from tui.plan.memory import TrainingShape, estimate
from tui.plan.rules import (
    MIN_USEFUL_STEPS,
    Decisions,
    decide_accumulation,
    decide_cadence,
    decide_cutoff,
    decide_flash_attn,
    decide_precision,
    decide_recipe,
    decide_soft_settings,
    default_recipe,
    optimizer_steps,
    sequence_for_estimate,
    show,
)
from tui.plan.timing import time_for_plan
from tui.plan.values import MEMORY_SETTINGS, SAFETY_MARGIN, Plan, PlanRequest, Reason


def plan(request: PlanRequest) -> Plan:
    """The plan for a request. Your settings win; each one's reason says what sft-tui would choose
    without them (the same request planned without your settings), and a valid LLaMA-Factory
    argument the planner does not decide goes to train.yaml as you gave it."""
    result = _plan_any_recipe(request)
    if request.overrides:
        own = _plan_any_recipe(replace(request, overrides={}))
        for key, value in request.overrides.items():
            if key in result.reasons and result.reasons[key].kind != "user":
                continue  # a rule refused your value (the hardware cannot): its reason says why
            if key in own.settings:
                why = f"set by you; sft-tui would choose {show(own.settings[key])}: {own.reasons[key].text}"
                rule = own.reasons[key].rule
            else:
                why, rule = "set by you; passed to LLaMA-Factory as given (sft-tui does not decide it)", "pass-through"
            result.settings.setdefault(key, value)
            result.reasons[key] = Reason("user", why, rule)
        yours = _your_settings_first(request.overrides, own) if not result.fits else []
        if yours:  # sft-tui's own plan fits: the other ways out were worked out around your settings
            result.suggestions = yours + [s for s in result.suggestions if s.startswith("more memory")]
    return result


def _your_settings_first(overrides: dict, own: Plan) -> list[str]:
    """When your settings are why it does not fit, that comes first in what would fit."""
    return [f"your {key}={show(overrides[key])}: sft-tui would use {show(own.settings.get(key))}"
            for key in MEMORY_SETTINGS if key in overrides and own.fits and own.settings.get(key) != overrides[key]]


def _plan_any_recipe(request: PlanRequest) -> Plan:
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
    d = Decisions(request.overrides, request.fixes)
    model = request.model
    d.decide("model_name_or_path", model.model_name_or_path, "user", f"model {model.name}", "plan")
    d.decide("template", model.template, "default", f"LLaMA-Factory's chat template for {model.name}", "plan")
    d.decide("stage", "sft", "default", "supervised fine-tuning", "plan")
    decide_precision(d, request.devices)
    decide_flash_attn(d, request.devices)
    cutoff = decide_cutoff(d, request)
    decide_soft_settings(d, recipe_name, recipe)

    n_gpus = 1 if not request.devices[0].is_gpu else len(request.devices)
    n_total = n_gpus * request.nodes
    s = d.settings
    levers = {**s, **d.overrides}  # your lever settings pass through; the shape must know them
    seq_len, seq_source = sequence_for_estimate(cutoff, request.data, packs(levers))
    capacity = capacity_gib(request.devices)
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
        calibration=request.memory_calibration,
        **shape_levers(levers),
    )
    effective = recipe["effective_batch_size"]
    rows_wanted = int(d.overrides.get("per_device_train_batch_size") or max(1, -(-effective // n_total)))
    base = decide_levers(d, request, base, capacity, rows_wanted)
    shape = decide_memory(d, request, base, capacity, effective)
    if shape.seq_len != seq_len:
        seq_len, seq_source = shape.seq_len, f"cutoff_len {shape.seq_len}, shortened to fit memory"
    shape = decide_gradient_checkpointing(d, shape, capacity)
    batch = shape.micro_batch
    accum = decide_accumulation(d, effective, batch, n_total)
    steps = s.get("max_steps")
    if steps is None and request.data:
        rows = request.data.train_rows
        if packs(levers) and (tokens := request.data.tokens_total()):  # packed rows: the tokens in cutoff_len pieces
            rows = max(1, -(-tokens * rows // request.data.row_count() // s["cutoff_len"]))
        steps = optimizer_steps(rows, s.get("num_train_epochs", 1), batch, accum, n_total)
    decide_cadence(d, recipe_name, recipe, steps, request.data, batch)
    d.decide_remaining_fixes()
    d.reasons["recipe"] = recipe_reason
    est = estimate(shape)
    result = Plan(
        settings=d.settings, reasons=d.reasons, estimate=est, capacity_gib=capacity, fits=fits(est, capacity),
        seq_len=seq_len, seq_len_source=seq_source, steps=steps, recipe=recipe_name, n_gpus=n_gpus,
        nodes=request.nodes, zero_stage=shape.zero_stage, offload=shape.offload, shape=shape,
    )
    result.warnings = plan_warnings(result, request)
    compromised = not result.fits or batch < -(-effective // n_total) or s.get("quantization_bit")
    if compromised:  # a missing lever matters only where the plan had to give something up
        result.warnings += d.hints
    if not result.fits:
        result.suggestions = what_would_fit(request, shape, capacity)
    result.host_ram = host_ram(model.architecture.param_count(), n_gpus, est.cpu_offload_gib,
                               request.data.tokens_total() if request.data else None,
                               levers.get("preprocessing_num_workers"),
                               # On the CPU the step's memory above already is this RAM: no second verdict.
                               request.host_ram_gib if request.devices[0].is_gpu else None)
    if warning := host_ram_warning(result.host_ram):
        result.warnings.append(warning)
    if request.data and request.data.row_tokens:
        result.cutoff_options = cutoff_options(shape, request.data, capacity, packs(levers))
    result.time_estimate = time_for_plan(result, request, shape, peak_tflops(request.devices[0]))
    return result


def plan_warnings(p: Plan, request: PlanRequest) -> list[str]:
    warnings = []
    usable = p.capacity_gib * (1 - SAFETY_MARGIN)
    if not p.fits:
        warnings.append(f"does not fit: needs {p.estimate.per_device_gib:.1f} GiB per device, {usable:.1f} GiB usable "
                        f"({p.capacity_gib:.1f} GiB less the {SAFETY_MARGIN:.0%} safety margin)")
        for key in sorted(set(request.overrides) & set(MEMORY_SETTINGS)):
            warnings.append(f"your --set {key}={show(request.overrides[key])} is part of a plan that no longer fits")
    if p.reasons["cutoff_len"].kind == "fitted":
        longest = f" (the longest has {request.data.row_tokens_max} tokens)" if request.data and request.data.row_tokens_max else ""
        warnings.append(f"cutoff_len was shortened to {p.settings['cutoff_len']} to fit memory: longer rows are truncated{longest}")
    if p.fits and p.estimate.per_device_gib > p.capacity_gib * (1 - 2 * SAFETY_MARGIN):
        warnings.append(f"tight: {p.estimate.per_device_gib:.1f} of {usable:.1f} usable GiB, within the safety margin of the limit")
    if p.steps is not None:
        if p.steps < MIN_USEFUL_STEPS:
            warnings.append(f"only {plural(p.steps, 'optimizer step')}: too few to learn from; use more epochs, more data or a smaller effective batch")
        if p.settings.get("logging_steps", 0) >= p.steps:
            warnings.append(f"logging_steps {p.settings['logging_steps']} >= {plural(p.steps, 'step')}: the loss curve gets no points")
        warmup = p.settings.get("warmup_steps")
        if warmup and warmup >= p.steps:
            warnings.append(f"warmup_steps {warmup} is not less than the run's {plural(p.steps, 'step')}: the learning rate never "
                            "reaches its peak; fewer warmup_steps, or warmup_ratio")
    if request.data:
        per_step = p.settings.get("per_device_train_batch_size", 1) * p.n_gpus * p.nodes
        if per_step > request.data.train_rows:
            warnings.append(f"{per_step} rows per step ({p.settings.get('per_device_train_batch_size')} per device) is more than "
                            f"the {plural(request.data.train_rows, 'training row')}: each step is the whole dataset; a smaller batch")
        truncated = request.data.rows_longer_than(p.settings.get("cutoff_len", 0))
        if truncated and p.reasons["cutoff_len"].kind != "fitted":
            warnings.append(f"{plural(truncated, 'row')} of {request.data.row_count()} longer than cutoff_len "
                            f"{p.settings['cutoff_len']} (counted over every file): truncated; the cutoff table shows the cost of longer")
    elif request.data is None:
        warnings.append("no dataset given: the number of optimizer steps is unknown")
    busy = [dev for dev in request.devices if dev.is_gpu and not dev.free]
    if busy:
        warnings.append(f"GPU {', '.join(str(dev.index) for dev in busy)} is in use by other processes: planned with its free memory")
    if not request.devices[0].is_gpu:
        warnings.append("training on the CPU: fine for tiny models and smoke tests, very slow for anything else")
    return warnings
