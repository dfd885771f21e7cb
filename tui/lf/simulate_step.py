"""One training step of the user's model, simulated on fake tensors: the memory peak, its phase
and what is alive at it, with no GPU and no weights.

Run it with the training environment's python, never import it (the TUI process never imports
torch, transformers or llamafactory):

    python tui/lf/simulate_step.py REQUEST_JSON          (or `-` to read the request on stdin)

A list of requests is answered one JSON line each, in order, in one process.

The request: {"model": DIR (a config.json is enough), "settings": {...}, "real": false}. Settings
are the plan's LLaMA-Factory arguments: finetuning_type (lora/full/freeze), lora_rank,
lora_target, freeze_trainable_layers, pure_bf16, bf16, fp16, gradient_checkpointing (or
disable_gradient_checkpointing), flash_attn, upcast_layernorm, per_device_train_batch_size,
cutoff_len (the longest batch), optim, quantization_bit, double_quantization, and those in
MODEL_ARGS / FINETUNING_ARGS below as LLaMA-Factory takes them. One JSON line comes back (see `simulate`), or {"error": ...}.

The model is built the way LLaMA-Factory 0.9.5's `load_model` builds it, calling its own code
wherever it decides something: `patch_config` (dtype, `configure_attn_implementation`: Gemma 2
gets eager attention when flash-attn is not installed), the model class it picks, built from the
config (its `train_from_scratch` path) on the meta device with the checkpoint's dtype (its
`torch_dtype="auto"`), `patch_model` (`prepare_model_for_training`: gradient checkpointing,
`upcast_layernorm`) and `init_adapter` (LoRA / freeze / full, trainable parameters upcast to
fp32 unless pure_bf16). It is then materialised on FakeTensorMode (`to_empty`: no memory, no
compute) and two optimizer steps are taken as transformers' Trainer takes them: the forward under
the autocast that accelerate wraps it in, the outputs dropped before backward, the optimizer class
and arguments Trainer picks for `optim`, `zero_grad(set_to_none=True)`. `"real": true` runs the
same step on real CPU tensors (tests compare the two).

The CUDA path's choices are made explicitly on the fake CPU device: the foreach optimizer kernels
CUDA would default to; the SDPA kernel is the fused (flash-style) one on both devices.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

SETTING_DEFAULTS = {
    "finetuning_type": "lora", "lora_rank": 8, "lora_target": "all", "freeze_trainable_layers": 2,
    "pure_bf16": False, "bf16": True, "fp16": False, "gradient_checkpointing": True, "flash_attn": "auto",
    "upcast_layernorm": False, "per_device_train_batch_size": 1, "cutoff_len": 1024, "optim": None,
    "quantization_bit": None, "double_quantization": True,
}
# Further LLaMA-Factory arguments that change memory, passed through as given when a plan sets them.
MODEL_ARGS = ("use_reentrant_gc", "upcast_lmhead_output")
FINETUNING_ARGS = ("lora_alpha", "lora_dropout", "use_dora", "use_rslora", "freeze_trainable_modules",
                   "freeze_extra_modules", "additional_target", "freeze_vision_tower",
                   "freeze_multi_modal_projector", "freeze_language_model")
STEPS = 2
GIB = 2**30


def _settings(given: dict) -> dict:
    settings = dict(SETTING_DEFAULTS)
    settings.update({k: v for k, v in given.items() if v is not None})
    if "disable_gradient_checkpointing" in given:
        settings["gradient_checkpointing"] = not given["disable_gradient_checkpointing"]
    return settings


def build_model(model_dir: str, s: dict):
    """(model, model_args, stand-ins): the meta-device model as LLaMA-Factory would train it."""
    import torch
    from llamafactory.hparams import FinetuningArguments, ModelArguments
    from llamafactory.model.adapter import init_adapter
    from llamafactory.model.loader import load_config
    from llamafactory.model.patcher import patch_config, patch_model
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForImageTextToText,
        AutoModelForSeq2SeqLM,
    )

    model_args = ModelArguments(
        model_name_or_path=model_dir, flash_attn=s["flash_attn"], train_from_scratch=True,
        disable_gradient_checkpointing=not s["gradient_checkpointing"], upcast_layernorm=s["upcast_layernorm"],
        **{k: s[k] for k in MODEL_ARGS if s.get(k) is not None},
    )
    finetuning_args = FinetuningArguments(
        finetuning_type=s["finetuning_type"], lora_rank=int(s["lora_rank"]), lora_target=s["lora_target"],
        freeze_trainable_layers=int(s["freeze_trainable_layers"]), pure_bf16=bool(s["pure_bf16"]),
        **{k: s[k] for k in FINETUNING_ARGS if s.get(k) is not None},
    )
    # hparams/parser.py: bf16 or pure_bf16 -> bfloat16, fp16 -> float16; else patch_config infers it.
    if s["bf16"] or s["pure_bf16"]:
        model_args.compute_dtype = torch.bfloat16
    elif s["fp16"]:
        model_args.compute_dtype = torch.float16
    quantization = int(s["quantization_bit"]) if s["quantization_bit"] else None
    config = load_config(model_args)
    init_kwargs: dict = {"low_cpu_mem_usage": True}
    stand_ins = []
    flash_attn_stand_in = s["flash_attn"] == "fa2" and not _flash_attn_installed()
    if flash_attn_stand_in:  # LLaMA-Factory decides as if flash-attn were installed (it is where you train)
        import transformers.utils

        installed = transformers.utils.is_flash_attn_2_available
        transformers.utils.is_flash_attn_2_available = lambda: True
    try:
        patch_config(config, None, model_args, init_kwargs, is_trainable=True)
    finally:
        if flash_attn_stand_in:
            transformers.utils.is_flash_attn_2_available = installed
    if flash_attn_stand_in and getattr(config, "_attn_implementation", None) == "flash_attention_2":
        config._attn_implementation = "sdpa"
        stand_ins.append("flash-attention 2 as SDPA's fused kernel (the output and logsumexp kept, as flash-attn's)")
    if type(config) in AutoModelForImageTextToText._model_mapping:
        load_class = AutoModelForImageTextToText
    elif type(config) in AutoModelForSeq2SeqLM._model_mapping:
        load_class = AutoModelForSeq2SeqLM
    else:
        load_class = AutoModelForCausalLM
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or torch.float32
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype  # from_pretrained's "auto"
    with torch.device("meta"):
        model = load_class.from_config(config, dtype=dtype)
        if quantization:  # from_pretrained quantizes while loading, before patch_model: so here
            from simulate_standins import quantize_standin

            replaced = quantize_standin(model, quantization, model_args.compute_dtype, bool(s["double_quantization"]))
            kind = "NF4" + (" with double quantization" if s["double_quantization"] else "") if quantization == 4 \
                else "LLM.int8"
            stand_ins.append(f"bitsandbytes {quantization}-bit weights ({kind}): {replaced} nn.Linear modules")
            model_args.quantization_bit = quantization
        patch_model(model, None, model_args, is_trainable=True, add_valuehead=False)
        model = init_adapter(config, model, model_args, finetuning_args, is_trainable=True)
    model.train()
    return model, model_args, stand_ins


def _flash_attn_installed() -> bool:
    from transformers.utils import is_flash_attn_2_available

    return bool(is_flash_attn_2_available())


def choose_optimizer(model, s: dict):
    """The optimizer class and kwargs transformers' Trainer picks for `optim` (its default for the
    installed torch when none is given), with the foreach kernels CUDA would default to."""
    import inspect

    from simulate_standins import BNB_OPTIMIZERS, BnbOptimizerStandIn
    from transformers import Trainer, TrainingArguments

    if s["optim"] in BNB_OPTIMIZERS:
        states, bits = BNB_OPTIMIZERS[s["optim"]]
        return BnbOptimizerStandIn, {"lr": 5e-5, "states": states, "bits": bits}, s["optim"]
    with tempfile.TemporaryDirectory() as tmp:
        kwargs = {"output_dir": tmp, "report_to": "none", "use_cpu": True}
        if s["optim"]:
            kwargs["optim"] = s["optim"]
        args = TrainingArguments(**kwargs)
    cls, opt_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    opt_kwargs = dict(opt_kwargs)
    accepted = inspect.signature(cls.__init__).parameters
    if "foreach" in accepted and not opt_kwargs.get("fused"):
        opt_kwargs.setdefault("foreach", True)
    return cls, opt_kwargs, str(args.optim.value if hasattr(args.optim, "value") else args.optim)


def no_padding_masks() -> None:
    """transformers treats a FakeTensor as tracing and then keeps masks a real step drops: it
    materialises a (batch, 1, L, L) causal mask instead of SDPA's is_causal, and treats the rows
    as packed. The simulated batch has no padding and no packing (every row is one sequence at the
    longest length), so decide as a real step on such a batch decides, for fake and real alike."""
    from transformers import masking_utils

    def ignore_causal_mask_sdpa(padding_mask, query_length, kv_length, kv_offset, local_attention_size=None):
        return (query_length == 1 or kv_length == query_length) and (
            local_attention_size is None or kv_length < local_attention_size)

    masking_utils._ignore_causal_mask_sdpa = ignore_causal_mask_sdpa
    masking_utils.find_packed_sequence_indices = lambda position_ids: None


def _materialise(model, real: bool) -> None:
    import torch

    # to_empty swaps each module's parameters one by one (torch >= 2.x with swap_tensors), which
    # unties tied weights (embed_tokens and lm_head would then be counted twice): tie them again.
    places: dict[int, list] = {}
    for module in model.modules():
        for name, param in module._parameters.items():
            if param is not None:
                places.setdefault(id(param), []).append((module, name))
    model.to_empty(device="cpu")
    for shared in places.values():
        first_module, first_name = shared[0]
        for module, name in shared[1:]:
            module._parameters[name] = first_module._parameters[first_name]
    if real:  # values do not change memory; keep them finite
        with torch.no_grad():
            for param in model.parameters():
                if param.is_floating_point():
                    param.normal_(0.0, 0.02)
            for buffer in model.buffers():
                if buffer.is_floating_point():
                    buffer.fill_(1.0)


def run_steps(model, model_args, s: dict, tracker) -> dict:
    import torch

    cls, opt_kwargs, optim_name = choose_optimizer(model, s)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = cls(trainable, **opt_kwargs)
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    batch, length = int(s["per_device_train_batch_size"]), int(s["cutoff_len"])
    if s["pure_bf16"] or not (s["bf16"] or s["fp16"]):
        autocast = None  # pure_bf16 trains without mixed precision (LLaMA-Factory sets bf16=False)
    else:
        autocast = torch.bfloat16 if s["bf16"] else torch.float16
    with tracker:
        input_ids = torch.randint(0, config.vocab_size, (batch, length))
        labels = input_ids.clone()
        for step in range(1, STEPS + 1):
            tracker.step, tracker.phase = step, "forward"
            if autocast is not None:
                with torch.autocast("cpu", dtype=autocast):
                    outputs = model(input_ids=input_ids, labels=labels, use_cache=False)
            else:
                outputs = model(input_ids=input_ids, labels=labels, use_cache=False)
            loss = outputs.loss
            del outputs  # Trainer.compute_loss returns the loss alone
            tracker.in_logits = False
            tracker.snapshot(f"forward_end_{step}")
            tracker.phase = "backward"
            loss.backward()
            del loss
            tracker.snapshot(f"backward_end_{step}")
            tracker.phase = "optimizer"
            optimizer.step()
            tracker.watch_optimizer_state(optimizer)
            model.zero_grad(set_to_none=True)
    return {"optimizer": f"{cls.__module__}.{cls.__name__}", "optimizer_kwargs": _jsonable(opt_kwargs),
            "optim": optim_name, "autocast": str(autocast).replace("torch.", "") if autocast else None}


def _jsonable(kwargs: dict) -> dict:
    return {k: (v if isinstance(v, (int, float, bool, str, type(None))) else str(v)) for k, v in kwargs.items()}


def simulate(model_dir: str, given: dict, real: bool = False) -> dict:
    """The peak of two training steps: `peak_bytes`, `phase` and `step` it falls in, `breakdown`
    (bytes live at the peak by kind), `phase_peaks`, `snapshots` (live bytes by kind at the end of
    each forward and backward), the attention kernel, the optimizer, dtypes and parameter counts."""
    import torch
    from simulate_tracker import StorageTracker
    from torch._subclasses.fake_tensor import FakeTensorMode

    started = time.perf_counter()
    s = _settings(given)
    no_padding_masks()
    torch.manual_seed(0)
    model, model_args, stand_ins = build_model(model_dir, s)
    built = time.perf_counter()
    tracker = StorageTracker()
    if real:
        _materialise(model, real=True)
        tracker.watch_model(model)
        extra = run_steps(model, model_args, s, tracker)
    else:
        with FakeTensorMode(allow_non_fake_inputs=True):
            _materialise(model, real=False)
            tracker.watch_model(model)
            extra = run_steps(model, model_args, s, tracker)
    report = tracker.report()
    params = list({id(p): p for p in model.parameters()}.values())
    dtypes: dict[str, int] = {}
    for p in params:
        key = f"{'trainable' if p.requires_grad else 'frozen'}:{str(p.dtype).replace('torch.', '')}"
        dtypes[key] = dtypes.get(key, 0) + p.numel()
    config = model.config
    attn = getattr(config, "_attn_implementation", None) or getattr(config, "attn_implementation", None)
    if any(item.startswith("flash-attention 2") for item in stand_ins):
        attn = "flash_attention_2"  # run as its stand-in, SDPA's fused kernel
    import llamafactory
    import transformers

    if s["optim"] in ("adamw_8bit", "adamw_bnb_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "lion_8bit",
                      "paged_lion_8bit", "lion_32bit", "paged_lion_32bit"):
        stand_ins.append(f"bitsandbytes {s['optim']} optimizer states (updated in place)")
    report.update(
        stand_ins=stand_ins, peak_gib=round(report["peak_bytes"] / GIB, 4), settings=s, real=real, **extra,
        attn_implementation=attn, flash_attn=str(getattr(model_args.flash_attn, "value", model_args.flash_attn)),
        gradient_checkpointing=bool(getattr(model, "is_gradient_checkpointing", False)),
        params=sum(p.numel() for p in params), trainable_params=sum(p.numel() for p in params if p.requires_grad),
        param_dtypes=dtypes, model_class=type(model).__name__,
        seconds=round(time.perf_counter() - started, 3), build_seconds=round(built - started, 3),
        versions={"torch": torch.__version__, "transformers": transformers.__version__,
                  "llamafactory": llamafactory.__version__},
    )
    return report


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python simulate_step.py REQUEST_JSON|-", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    try:
        requests = json.loads(sys.stdin.read() if argv[0] == "-" else argv[0])
    except ValueError as err:
        print(json.dumps({"error": f"the request is not JSON: {err}"}), flush=True)
        return 2
    for request in requests if isinstance(requests, list) else [requests]:
        try:
            found = simulate(request["model"], request.get("settings") or {}, real=bool(request.get("real")))
        except Exception as err:
            if os.environ.get("SFT_TUI_SIMULATE_DEBUG"):
                raise
            found = {"error": f"{type(err).__name__}: {err}".splitlines()[0][:500]}
        print(json.dumps(found), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
