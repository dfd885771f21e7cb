"""A model's architecture facts, read from the model transformers builds from its config on the
meta device (no weights, no memory), as LLaMA-Factory would load it.

Run it with the training environment's python, never import it (the TUI process never imports
torch, transformers or llamafactory):

    python tui/lf/model_facts.py CONFIG_DIR [CONFIG_DIR ...]

Each CONFIG_DIR holds a config.json. One JSON line per directory, in order, goes to stdout:

- `params`: every parameter (tied ones once); `modules`: parameters per module two levels deep;
- `parts`: parameters of the `language` model, the `vision` tower (LLaMA-Factory's
  vision_model_keys: audio towers too) and the multimodal `projector` (its projector_keys);
- `linear`: every nn.Linear but the lm_head, grouped by (name suffix, in, out, bias, part) with a count;
- `lora_target_all`: the module names LLaMA-Factory's `lora_target: all` selects
  (find_all_linear_modules with its default freeze_vision_tower=True), and `lora_linear`: the
  nn.Linear modules that then get an adapter (patch_target_modules leaves the frozen tower and
  projector out);
- `experts`, `experts_per_token`, `expert_params` (routed experts: parameters under `.experts.`);
- `multimodal`, `model_class`, `transformers`, `llamafactory` (versions).

A directory whose model cannot be built gives `{"error": "..."}`. It imports nothing from sft-tui.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings

FALLBACK_VISION_KEYS = ("visual.patch_embed", "visual.blocks", "vision_tower", "vision_model", "audio_tower")
FALLBACK_PROJECTOR_KEYS = ("visual.merger", "multi_modal_projector")


def _load_class(config):
    """The auto class LLaMA-Factory's loader picks for this config (llamafactory/model/loader.py)."""
    import transformers

    for name in ("AutoModelForImageTextToText", "AutoModelForSeq2SeqLM", "AutoModelForTextToWaveform"):
        auto = getattr(transformers, name, None)
        if auto is not None and type(config) in auto._model_mapping.keys():
            return auto
    return transformers.AutoModelForCausalLM


def _llamafactory():
    """(find_all_linear_modules, COMPOSITE_MODELS, version) or Nones without LLaMA-Factory."""
    try:
        from llamafactory import __version__
        from llamafactory.model.model_utils.misc import find_all_linear_modules
        from llamafactory.model.model_utils.visual import COMPOSITE_MODELS
    except Exception:  # noqa: BLE001 - any failure means: not there
        return None, {}, None
    return find_all_linear_modules, COMPOSITE_MODELS, __version__


def _text_config(config):
    return getattr(config, "text_config", None) or getattr(config, "get_text_config", lambda: config)()


def facts(config_dir: str) -> dict:
    import torch
    import transformers
    from transformers import AutoConfig

    find_all_linear_modules, composite_models, lf_version = _llamafactory()
    config = AutoConfig.from_pretrained(config_dir)
    load_class = _load_class(config)
    with torch.device("meta"):
        model = load_class.from_config(config)
    model_type = getattr(config, "model_type", None)
    composite = composite_models.get(model_type)
    vision_keys = tuple(composite.vision_model_keys) if composite else FALLBACK_VISION_KEYS
    projector_keys = tuple(composite.projector_keys) if composite else FALLBACK_PROJECTOR_KEYS
    multimodal = composite is not None or getattr(config, "vision_config", None) is not None

    def part(name: str) -> str:
        if multimodal and any(key in name for key in projector_keys):
            return "projector"
        if multimodal and any(key in name for key in vision_keys):
            return "vision"
        return "language"

    parts = {"language": 0, "vision": 0, "projector": 0}
    modules: dict[str, int] = {}
    expert_params = 0
    total = 0
    for name, param in model.named_parameters():  # tied parameters once
        n = param.numel()
        total += n
        parts[part(name)] += n
        prefix = ".".join(name.split(".")[:2]) if name.count(".") >= 2 else name.rsplit(".", 1)[0]
        modules[prefix] = modules.get(prefix, 0) + n
        if "experts" in name.split("."):
            expert_params += n

    if find_all_linear_modules is not None:
        lora_target_all = sorted(find_all_linear_modules(model, freeze_vision_tower=True))
    else:  # the same rule, without LLaMA-Factory
        lora_target_all = sorted({
            name.split(".")[-1] for name, module in model.named_modules()
            if "Linear" in type(module).__name__ and "Embedding" not in type(module).__name__
            and "lm_head" not in name and not (multimodal and part(name) != "language")
        })
    # patch_target_modules: for a composite model, the frozen tower and projector get no adapter.
    frozen = set(vision_keys) | set(projector_keys) if composite else set()
    if composite:
        frozen |= set(composite.lora_conflict_keys)

    linear: dict[tuple, int] = {}
    lora_linear: dict[tuple, int] = {}
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or name.split(".")[-1] == "lm_head":
            continue
        suffix = name.split(".")[-1]
        key = (suffix, module.in_features, module.out_features, module.bias is not None, part(name))
        linear[key] = linear.get(key, 0) + 1
        if suffix in lora_target_all and not any(f in name for f in frozen):
            lora_linear[key] = lora_linear.get(key, 0) + 1

    def rows(grouped: dict[tuple, int]) -> list[dict]:
        return [{"name": k[0], "in_features": k[1], "out_features": k[2], "bias": k[3], "part": k[4], "count": c}
                for k, c in sorted(grouped.items())]

    text = _text_config(config)
    experts = None
    for key in ("num_experts", "num_local_experts", "n_routed_experts"):
        experts = experts or getattr(text, key, None)
    return {
        "model_type": model_type,
        "model_class": type(model).__name__,
        "multimodal": multimodal,
        "params": total,
        "parts": parts,
        "modules": dict(sorted(modules.items())),
        "linear": rows(linear),
        "lora_target_all": lora_target_all,
        "lora_linear": rows(lora_linear),
        "experts": experts,
        "experts_per_token": getattr(text, "num_experts_per_tok", None) if experts else None,
        "expert_params": expert_params,
        "transformers": transformers.__version__,
        "llamafactory": lf_version,
    }


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python model_facts.py CONFIG_DIR [CONFIG_DIR ...]", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    for config_dir in argv:
        try:
            found = facts(config_dir)
        except Exception as err:  # noqa: BLE001 - one line the caller shows, never a traceback
            found = {"error": f"{type(err).__name__}: {err}".splitlines()[0][:500]}
        print(json.dumps(found), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
