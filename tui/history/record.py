"""What the history keeps of a run: its plan (from plan.json, as the bundle wrote it), and the comparison
of estimated with measured (the error in percent) that `sft-tui history` prints."""

from __future__ import annotations


def method_of(settings: dict) -> str:
    """lora, qlora (LoRA on 4/8-bit weights), full or freeze: what the speed and the memory depend on most."""
    kind = str(settings.get("finetuning_type") or "lora")
    return "qlora" if kind == "lora" and settings.get("quantization_bit") else kind


def attention_of(settings: dict) -> str:
    flash = str(settings.get("flash_attn") or "auto")
    return {"fa2": "fa2", "disabled": "eager", "sdpa": "sdpa"}.get(flash, "sdpa")


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def plan_values(spec: dict) -> dict:
    """The history's columns for a bundle's plan.json (tui.bundle.spec): model, hardware, the settings the
    calibration compares runs by, the memory estimate with its breakdown, the time estimate."""
    plan = spec.get("plan") or {}
    settings = plan.get("settings") or {}
    estimate = plan.get("estimate") or {}
    time_estimate = plan.get("time_estimate") or {}
    model = spec.get("model") or {}
    hardware = spec.get("hardware") or {}
    simulated = estimate.get("simulated") or {}
    calibration = time_estimate.get("calibration") or {}
    source = "simulated" if simulated.get("peak_gib") is not None else "analytic"
    return {
        "model": model.get("name") or settings.get("model_name_or_path"),
        "model_params": model.get("params"),
        "device": hardware.get("device"),
        "vendor": hardware.get("vendor"),
        "gpus": (hardware.get("gpus") or 1) * (hardware.get("nodes") or 1),
        "method": method_of(settings),
        "attention": attention_of(settings),
        "cutoff_len": settings.get("cutoff_len"),
        "micro_batch": settings.get("per_device_train_batch_size"),
        "planned_steps": plan.get("steps"),
        "settings": {k: settings.get(k) for k in (
            "finetuning_type", "quantization_bit", "lora_rank", "cutoff_len", "per_device_train_batch_size",
            "gradient_accumulation_steps", "num_train_epochs", "bf16", "fp16", "flash_attn",
            "disable_gradient_checkpointing", "deepspeed") if k in settings},
        "est_per_device_gib": _number(estimate.get("per_device_gib")),
        "est_breakdown": estimate.get("breakdown"),
        "est_source": source,
        "est_analytic_gib": _number(simulated.get("analytic_gib")) if source == "simulated" else _number(estimate.get("per_device_gib")),
        "est_simulated_gib": _number(estimate.get("per_device_gib")) if source == "simulated" else None,
        "est_seconds": _number(time_estimate.get("seconds")),
        "est_tokens": time_estimate.get("tokens"),
        "est_tokens_per_second": _number(time_estimate.get("tokens_per_second")),
        # what the datasheet said before the run history calibrated it (the plan's figure when it did not)
        "est_datasheet_tokens_per_second": _number(calibration.get("uncalibrated_tokens_per_second")) if calibration
        else _number(time_estimate.get("tokens_per_second")),
        "est_flops_per_token": _number(time_estimate.get("flops_per_token")),
    }


def error_pct(estimated, measured) -> float | None:
    """How far the estimate was from the measurement, in percent of the measurement (+: estimated too high)."""
    if not isinstance(estimated, (int, float)) or not isinstance(measured, (int, float)) or measured <= 0:
        return None
    return round((estimated - measured) / measured * 100, 1)


def measured_peak_gib(row: dict) -> float | None:
    """What a run held on its fullest GPU: NVML's figure for its processes (tui.runs.peaks: context and allocator
    cache included), else RECORD_VRAM=1's peak reserved, else its peak allocated; None when none of them is above
    0 (a CPU records 0). The one figure the history compares and the memory calibration divides."""
    for key in ("gpu_peak_max_gib", "peak_reserved_gib", "peak_allocated_gib"):
        if (row.get(key) or 0) > 0:
            return row[key]
    return None


def compared(row: dict) -> dict:
    """One run of `sft-tui history --json`: what it was, how it ended, and memory and time estimated
    against measured, each with its error."""
    memory_measured = measured_peak_gib(row)
    return {
        "run_id": row["run_id"], "run_dir": row["run_dir"], "first_seen": row["first_seen"], "model": row["model"],
        "device": row["device"], "vendor": row["vendor"], "gpus": row["gpus"], "method": row["method"],
        "outcome": row["outcome"], "outcome_reason": row["outcome_reason"] or None,
        "memory": {"estimated_gib": row["est_per_device_gib"], "source": row["est_source"],
                   "breakdown": row["est_breakdown"],
                   "measured_allocated_gib": row["peak_allocated_gib"], "measured_reserved_gib": row["peak_reserved_gib"],
                   "measured_gpu_peak_gib": row.get("gpu_peak_gib"), "measured_host_peak_gib": row.get("host_peak_gib"),
                   "measured_gib": memory_measured,
                   "estimated_analytic_gib": row.get("est_analytic_gib"), "estimated_simulated_gib": row.get("est_simulated_gib"),
                   "error_pct": error_pct(row["est_per_device_gib"], memory_measured)},
        "time": {"estimated_seconds": row["est_seconds"], "measured_seconds": row["runtime_s"],
                 "error_pct": error_pct(row["est_seconds"], row["runtime_s"]),
                 "estimated_tokens_per_second": row["est_tokens_per_second"],
                 "measured_tokens_per_second": row["tokens_per_second"],
                 "seconds_per_step": row["seconds_per_step"], "steps_done": row["steps_done"]},
        "loss": {"train": row["train_loss"], "eval": row["eval_loss"]},
    }
