"""The chosen plan's memory from a simulated training step, not from formulas.

The planner searches with the analytic model (tui/plan/memory.py: instant); then the chosen plan
is simulated at exactly its shape by the training environment's python (tui/lf/simulate_step.py,
a subprocess: this process never imports torch): the user's model built through LLaMA-Factory's
own loading code on the meta device, two optimizer steps on fake tensors, every storage counted.
"fits / tight / does not fit" is then judged on the simulated peak plus the overhead no fake tensor
sees: the CUDA context, and what the caching allocator reserves beyond the storages, from the
step's allocations replayed through a model of the allocator (tui/plan/reserve.py).

Answers are cached in the user cache dir (`simulated/<sha256 of version, config.json, settings>.json`),
so a plan is simulated once. It is on for users wherever a training environment with
LLaMA-Factory is found; `plan --no-simulate` or SFT_TUI_SIMULATE=0 (the test suite sets it, so
unrelated tests never start a simulation) keep the analytic estimate, with one note saying so,
as does a plan the simulation cannot run yet (Unsloth, GaLore ...); DeepSpeed ZeRO and Liger are
run as stand-ins on the simulated terms (tui/plan/simulated_standins.py). bitsandbytes
quantization and optimizers run as stand-ins of the same memory (tui/lf/simulate_standins.py),
named in `simulated.stand_ins`.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from tui.plan.memory import GIB, Estimate
from tui.plan.reserve import allocator_mode, analytic_reserve_gib, context_gib, overhead_words, simulated_reserve_gib
from tui.plan.simulate_process import mark_not_simulated, run_script

SIMULATE_SCRIPT = Path(__file__).parents[1] / "lf" / "simulate_step.py"
SIMULATE_VERSION = 6  # bump when simulate_step.py measures differently: old cache entries are ignored
TIMEOUT_S = 600
OFF_VALUES = {"0", "false", "no", "off"}
# The simulated kinds (simulate_tracker.py) in the plan's breakdown, whose keys the memory bar knows.
BAR_KIND = {"weights": "weights", "trainable": "trainable", "gradients": "gradients",
            "optimizer_state": "optimizer", "optimizer_step": "optimizer", "activations": "activations",
            "backward": "activations", "inputs": "activations", "logits": "logits"}
# Plan settings the simulation cannot run yet, with why (a stand-in of the same memory is to come).
NOT_SIMULATED = (
    ("use_unsloth", "Unsloth is not simulated yet"),
    ("use_galore", "GaLore is not simulated yet"), ("use_apollo", "APOLLO is not simulated yet"),
    ("use_badam", "BAdam is not simulated yet"),
)
# Plan settings simulate_step.py passes to LLaMA-Factory as they are (its MODEL_ARGS, FINETUNING_ARGS).
PASSED_THROUGH = ("use_reentrant_gc", "upcast_lmhead_output", "lora_alpha", "lora_dropout", "use_dora", "use_rslora",
                  "freeze_trainable_modules", "freeze_extra_modules", "additional_target", "freeze_vision_tower",
                  "freeze_multi_modal_projector", "freeze_language_model")
SIMULATED_OPTIMIZERS = ("adamw_torch", "adamw_torch_fused", "adamw_hf", "sgd", "adagrad", "rmsprop",
                        # bitsandbytes' optimizers, by a stand-in of the same state memory
                        "adamw_8bit", "adamw_bnb_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "lion_8bit",
                        "paged_lion_8bit", "lion_32bit", "paged_lion_32bit")


def simulation_off() -> bool:
    return os.environ.get("SFT_TUI_SIMULATE", "1").strip().lower() in OFF_VALUES


def simulation_settings(plan) -> dict:
    """The settings simulate_step.py takes, from the plan at exactly its shape."""
    s = plan.settings
    return {
        "finetuning_type": s.get("finetuning_type", "lora"), "lora_rank": s.get("lora_rank", 8),
        "lora_target": s.get("lora_target", "all"), "freeze_trainable_layers": s.get("freeze_trainable_layers", 2),
        "pure_bf16": bool(s.get("pure_bf16")), "bf16": bool(s.get("bf16")), "fp16": bool(s.get("fp16")),
        "gradient_checkpointing": not s.get("disable_gradient_checkpointing", False),
        "flash_attn": s.get("flash_attn", "auto"), "upcast_layernorm": bool(s.get("upcast_layernorm")),
        "per_device_train_batch_size": int(s.get("per_device_train_batch_size", 1)),
        "cutoff_len": int(plan.seq_len), "optim": s.get("optim"),
        "quantization_bit": s.get("quantization_bit"), "double_quantization": s.get("double_quantization", True),
        **{k: s[k] for k in PASSED_THROUGH if s.get(k) is not None},
    }


def cannot_simulate(plan) -> str | None:
    s = plan.settings
    for key, why in NOT_SIMULATED:
        if s.get(key):
            return why
    if s.get("quantization_bit") and s.get("quantization_method", "bnb") != "bnb":
        return f"{s['quantization_method']} quantization is not simulated (bitsandbytes is, by a stand-in)"
    if s.get("optim") and s["optim"] not in SIMULATED_OPTIMIZERS:
        return f"the optimizer {s['optim']} is not simulated yet"
    if s.get("finetuning_type", "lora") not in ("lora", "full", "freeze"):
        return f"finetuning_type {s['finetuning_type']} is not simulated"
    return None  # packed rows are rows of cutoff_len tokens: what the simulation takes anyway


def model_config(model) -> tuple[dict | None, str]:
    """(config.json as a dict, where it came from) for the model a plan trains, or (None, why)."""
    if model.source == "local":
        try:
            return json.loads((Path(model.model_name_or_path) / "config.json").read_text(encoding="utf-8")), "config.json"
        except (OSError, ValueError) as err:
            return None, f"its config.json cannot be read ({err})"
    if model.source == "profile":
        from tui.common.profiles import load_profiles

        if model.profile_path is not None:
            for profile in load_profiles().of("models"):
                if profile.source == model.profile_path:
                    # Published checkpoints of the profiled models are 16-bit; LLaMA-Factory loads the
                    # checkpoint's dtype (torch_dtype="auto").
                    return {"dtype": "bfloat16", **profile.data["architecture"]}, "the model profile"
        return None, "its profile is not found"
    from tui.models.hub import cached_config

    try:
        found = cached_config(model.model_name_or_path)
    except Exception as err:  # noqa: BLE001 - any failure of the cache read means: no config
        return None, f"its config.json is not at hand ({err})"
    if found is None:
        return None, "its config.json is not in the Hugging Face cache"
    return found.config, "config.json from the Hugging Face cache"


def cache_path(config: dict, settings: dict) -> Path:
    from tui.common.resources import user_cache_dir

    text = json.dumps({"config": config, "settings": settings}, sort_keys=True, separators=(",", ":"))
    key = hashlib.sha256(f"{SIMULATE_VERSION}:{text}".encode()).hexdigest()
    return user_cache_dir() / "simulated" / f"{key}.json"


def run_simulation(config: dict, settings: dict, python: Path, timeout: float = TIMEOUT_S, cancel=None) -> dict:
    """simulate_step.py's answer for one config and settings, uncached (RuntimeError when none;
    SimulationCancelled, its process killed, once the threading.Event `cancel` is set)."""
    with tempfile.TemporaryDirectory(prefix="sft-tui-simulate-") as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps(config), encoding="utf-8")
        request = json.dumps({"model": tmp, "settings": settings})
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error", DO_NOT_TRACK="1")
        done = run_script([str(python), str(SIMULATE_SCRIPT), "-"], request, timeout, env, cancel)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            try:
                answer = json.loads(line)
            except ValueError:
                continue
            if "error" in answer:
                raise RuntimeError(answer["error"])
            if "peak_bytes" in answer:
                return answer
    last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    raise RuntimeError(last[:300])


def simulate_cached(config: dict, settings: dict, python: Path | None, progress=None,
                    cancel=None) -> tuple[dict | None, str]:
    """(answer, "cached"/"simulated") or (None, why not)."""
    cache = cache_path(config, settings)
    try:
        return json.loads(cache.read_text(encoding="utf-8")), "cached"
    except (OSError, ValueError):
        pass
    if python is None:
        return None, "no training environment with LLaMA-Factory here to simulate the step"
    if progress:
        progress(f"simulating one training step of the model on fake tensors (batch "
                 f"{settings['per_device_train_batch_size']} x {settings['cutoff_len']} tokens) ...")
    try:
        answer = run_simulation(config, settings, python, cancel=cancel)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as err:
        return None, f"the simulation failed ({str(err)[:200]})"
    from tui.common.files import atomic_write

    try:
        atomic_write(cache, json.dumps(answer, indent=1, sort_keys=True) + "\n")
    except OSError:
        pass  # a read-only cache costs a simulation next time, nothing more
    return answer, "simulated"


def _training_python() -> Path | None:
    from tui.hardware.environment import find_llamafactory

    found = find_llamafactory()
    return found.python if found else None


def apply_simulation(plan, request, enabled: bool = True, python: Path | None = None, progress=None,
                     replan: bool = True, cancel=None):
    """Judge `plan` on its simulated step where one can be had (its estimate, fits, warnings and
    `simulated` replaced); otherwise keep the analytic estimate and say why in one note. Returns
    the plan to use: `plan` itself, or the plan the search chooses again on the analytic model
    calibrated on this model's simulated steps (tui/plan/simulated_search.py), where that plan's
    own simulated step fits and it uses more of the card (or `plan` does not fit)."""
    from concurrent.futures import ThreadPoolExecutor

    from tui.plan.memory_calibration import half_length
    from tui.plan.simulated_search import search_again

    python = python or _training_python()

    def judge(again) -> bool:
        return _judge_simulated(again, request, True, python, progress, cancel)

    def simulate_at(chosen, cutoff_len: int) -> dict | None:
        """The step of `chosen` at another length (the calibration's second point), or None."""
        config, _ = model_config(request.model)
        if config is None:
            return None
        return simulate_cached(config, {**simulation_settings(chosen), "cutoff_len": cutoff_len}, python, progress, cancel)[0]

    half = half_length(plan.seq_len)
    simulable = _why_not_simulated(plan, request, enabled) is None and python is not None
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The calibration's second step runs beside the first: each is one single-threaded process.
        early = pool.submit(simulate_at, plan, half) if replan and half and simulable else None
        if not _judge_simulated(plan, request, enabled, python, progress, cancel) or not replan:
            return plan
        return search_again(plan, request, judge, lambda chosen, cutoff_len: (
            early.result() if early is not None and chosen is plan and cutoff_len == half
            else simulate_at(chosen, cutoff_len)))


def _why_not_simulated(plan, request, enabled: bool) -> str | None:
    """Why `plan` is not to be simulated, before its model is looked at; None: it is."""
    if not enabled:
        return "--no-simulate"
    if simulation_off():
        return "the simulation is off (SFT_TUI_SIMULATE=0)"
    if not request.devices[0].is_gpu:
        return "planned for the CPU, whose RAM the analytic estimate already covers"
    return cannot_simulate(plan)


def _judge_simulated(plan, request, enabled: bool, python: Path | None, progress, cancel=None) -> bool:
    """Whether `plan` was judged on a simulated step (else its note says why not)."""
    started = time.perf_counter()
    why = _why_not_simulated(plan, request, enabled)
    config = None
    if why is None:
        config, where = model_config(request.model)
        if config is None:
            why = f"the model cannot be simulated: {where}"
    answer = None
    if why is None:
        settings = simulation_settings(plan)
        assert config is not None  # found: why is None
        answer, how = simulate_cached(config, settings, python, progress, cancel)
        if answer is None:
            why = how
    if answer is None:
        mark_not_simulated(plan, why)
        return False
    _judge(plan, request, answer, how, time.perf_counter() - started)
    return True


def _judge(plan, request, answer: dict, how: str, seconds: float) -> None:
    from tui.plan.fitting import fits
    from tui.plan.planner import plan_warnings

    from tui.plan.simulated_standins import apply_standins

    answer = apply_standins(answer, plan.shape)  # ZeRO's shards and Liger's chunked logits, per rank
    analytic = plan.estimate
    breakdown = dict.fromkeys(("weights", "trainable", "gradients", "optimizer", "activations", "logits"), 0.0)
    for kind, size in answer["breakdown"].items():
        key = BAR_KIND.get(kind, "activations")
        breakdown[key] += size / GIB
    # The card's view: the context, and what the caching allocator reserves beyond the step's
    # storages, replayed through its model in the mode run_sft.sh sets (tui/plan/reserve.py).
    vendor = request.devices[0].vendor
    reserve = simulated_reserve_gib(vendor, answer)
    if reserve is None:  # an answer without the allocator's replay: the measured share
        reserve = analytic_reserve_gib(vendor, breakdown["activations"] + breakdown["logits"])
    overhead = context_gib(vendor) + reserve
    breakdown["overhead"] = overhead
    peak_gib = answer["peak_bytes"] / GIB
    note = (f"memory: simulated ({how}): one training step of {answer.get('model_class', 'the model')} on fake "
            f"tensors peaks at {peak_gib:.2f} GiB in {answer['phase']} (step {answer['step']}), "
            f"{answer.get('attn_implementation')} attention, {answer.get('optim')}; plus {overhead:.2f} GiB overhead "
            f"({overhead_words(vendor, reserve)}) (the analytic estimate said {analytic.per_device_gib:.2f} GiB)")
    plan.estimate = Estimate(breakdown=breakdown, cpu_offload_gib=analytic.cpu_offload_gib,
                             trainable_params=answer.get("trainable_params", analytic.trainable_params),
                             notes=[*analytic.notes, note])
    was_fit = plan.fits
    plan.fits = fits(plan.estimate, plan.capacity_gib)
    plan.simulated = {
        "peak_gib": round(peak_gib, 3), "phase": answer["phase"], "step": answer["step"],
        "breakdown": {k: round(v / GIB, 4) for k, v in answer["breakdown"].items()},
        "overhead_gib": round(overhead, 3), "context_gib": round(context_gib(vendor), 3),
        "reserve_gib": round(reserve, 3), "allocator": allocator_mode(vendor), "analytic_gib": round(analytic.per_device_gib, 3),
        "attn_implementation": answer.get("attn_implementation"), "optim": answer.get("optim"),
        "settings": answer.get("settings"), "source": how, "stand_ins": answer.get("stand_ins", []),
        "seconds": round(answer.get("seconds", 0.0) if how == "simulated" else seconds, 3),
        "versions": answer.get("versions"),
    }
    memory = ("does not fit:", "tight:")
    kept = [w for w in plan.warnings if not w.startswith(memory) and "no longer fits" not in w]
    fresh = [w for w in plan_warnings(plan, request) if w.startswith(memory) or "no longer fits" in w]
    plan.warnings = fresh + kept
    if was_fit and not plan.fits:
        plan.suggestions = _ways_out(plan)


def _ways_out(plan) -> list[str]:
    """What the simulated verdict points at when the analytic plan thought it fitted."""
    s = plan.settings
    ways = []
    if s.get("disable_gradient_checkpointing"):
        ways.append("gradient checkpointing on: --set disable_gradient_checkpointing=false")
    if s.get("flash_attn") != "fa2" and plan.simulated.get("attn_implementation") == "eager":
        ways.append("eager attention keeps every (L x L) score: install flash-attn (--set flash_attn=fa2 on a card "
                    "that supports it)")
    if s.get("per_device_train_batch_size", 1) > 1:
        ways.append("a smaller per_device_train_batch_size, with more gradient_accumulation_steps")
    ways.append(f"a shorter cutoff_len than {s.get('cutoff_len')}")
    return ways
