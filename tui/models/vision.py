"""A multimodal model's vision tower, from its config.json's vision_config alone: the parameters
of the tower and the multimodal projector (both frozen by LLaMA-Factory's defaults
freeze_vision_tower and freeze_multi_modal_projector), and how many tokens an image adds to the
sequence. Counted as transformers 5 builds the common towers:

- Qwen2-VL: Conv3d patch embedding, blocks of LayerNorm x2 + qkv/proj + fc1/fc2 (mlp_ratio), the
  patch merger (LayerNorm, two linears over 4 merged patches);
- Qwen2.5-VL: the same with RMSNorms and a gated MLP (gate/up/down, with biases);
- SigLIP (Gemma 3, PaliGemma) and CLIP (LLaVA): Conv2d patch embedding and position embeddings,
  layers of LayerNorm x2 + q/k/v/out + fc1/fc2, a final LayerNorm (CLIP: class embedding and a
  pre-LayerNorm too); Gemma 3's projector (a matrix and an RMSNorm), LLaVA's two linears.

Other towers give None: the meta-device facts (tui/models/facts.py) still size them.
"""

from __future__ import annotations

QWEN_VL = {"qwen2_vl", "qwen2_5_vl"}
# LLaMA-Factory's image_max_pixels default (hparams/model_args.py): a bigger image is scaled down.
LF_IMAGE_MAX_PIXELS = 768 * 768


def _vit_layers(h: int, inter: int, layers: int) -> int:
    """LayerNorm x2 (weight and bias), q/k/v/out with biases, fc1/fc2 with biases."""
    return layers * (2 * 2 * h + 4 * (h * h + h) + (h * inter + inter) + (inter * h + h))


def _tower(model_type: str, vision: dict) -> int | None:
    if model_type == "qwen2_vl":
        h = vision.get("embed_dim", 1280)
        inter = int(h * vision.get("mlp_ratio", 4))
        patch = _qwen_patch_embed(vision, h)
        block = 2 * 2 * h + (h * 3 * h + 3 * h) + (h * h + h) + (h * inter + inter) + (inter * h + h)
        return patch + vision.get("depth", 32) * block
    if model_type == "qwen2_5_vl":
        h, inter = vision.get("hidden_size", 1280), vision.get("intermediate_size", 3420)
        block = 2 * h + (h * 3 * h + 3 * h) + (h * h + h) + 2 * (h * inter + inter) + (inter * h + h)
        return _qwen_patch_embed(vision, h) + vision.get("depth", 32) * block
    tower = vision.get("model_type")
    h, inter = vision.get("hidden_size", 768), vision.get("intermediate_size", 3072)
    layers, channels = vision.get("num_hidden_layers", 12), vision.get("num_channels", 3)
    patch, size = vision.get("patch_size", 16), vision.get("image_size", 224)
    patches = (size // patch) ** 2
    if tower == "siglip_vision_model":
        if vision.get("vision_use_head", True):
            return None  # the attention-pooling head: leave it to the facts
        return (channels * patch * patch * h + h) + patches * h + _vit_layers(h, inter, layers) + 2 * h
    if tower == "clip_vision_model":
        return h + channels * patch * patch * h + (patches + 1) * h + 2 * h + _vit_layers(h, inter, layers) + 2 * h
    return None


def _qwen_patch_embed(vision: dict, h: int) -> int:
    channels = vision.get("in_channels", vision.get("in_chans", 3))
    patch = vision.get("patch_size", 14)
    return channels * vision.get("temporal_patch_size", 2) * patch * patch * h


def _projector(model_type: str, config: dict) -> int | None:
    vision, text = config["vision_config"], config.get("text_config") or {}
    if model_type == "qwen2_vl":
        h = vision.get("embed_dim", 1280)
        merged = h * vision.get("spatial_merge_size", 2) ** 2
        return 2 * h + (merged * merged + merged) + (merged * vision.get("hidden_size", 3584) + vision.get("hidden_size", 3584))
    if model_type == "qwen2_5_vl":
        h = vision.get("hidden_size", 1280)
        merged = h * vision.get("spatial_merge_size", 2) ** 2
        out = vision.get("out_hidden_size", 3584)
        return h + (merged * merged + merged) + (merged * out + out)
    text_hidden = text.get("hidden_size")
    if text_hidden is None:
        return None
    vision_hidden = vision.get("hidden_size", 768)
    if model_type == "gemma3":
        return vision_hidden * text_hidden + vision_hidden
    if model_type == "llava":
        feature_layer = config.get("vision_feature_layer", -2)
        n_layers = len(feature_layer) if isinstance(feature_layer, list) else 1
        bias = config.get("multimodal_projector_bias", True)
        return (vision_hidden * n_layers * text_hidden + (text_hidden if bias else 0)
                + text_hidden * text_hidden + (text_hidden if bias else 0))
    return None


def vision_tower_params(config: dict) -> int | None:
    """The vision tower's and the projector's parameters, or None for a tower not known here."""
    model_type = config.get("model_type", "")
    vision = config.get("vision_config") or {}
    tower, projector = _tower(model_type, vision), _projector(model_type, config)
    if tower is None or projector is None:
        return None
    return tower + projector


def image_tokens_note(config: dict) -> str | None:
    """How many tokens one image adds to the sequence, at the resolution stated."""
    model_type = config.get("model_type", "")
    vision = config.get("vision_config") or {}
    lead = "image tokens add to the sequence: each image costs"
    if model_type in QWEN_VL:
        side = vision.get("patch_size", 14) * vision.get("spatial_merge_size", 2)
        per_side = round(768 / side)
        return (f"{lead} (H/{side})·(W/{side}) tokens (merged patches) for an H×W image: {per_side * per_side} at "
                f"768×768, the most LLaMA-Factory's image_max_pixels default ({LF_IMAGE_MAX_PIXELS}) lets through; "
                "lower image_max_pixels for shorter rows")
    if model_type == "gemma3":
        size = vision.get("image_size", 896)
        return f"{lead} {config.get('mm_tokens_per_image', 256)} tokens at the processor's {size}×{size} resolution"
    if model_type == "llava":
        size, patch = vision.get("image_size", 336), vision.get("patch_size", 14)
        n = (size // patch) ** 2 + (1 if config.get("vision_feature_select_strategy") == "full" else 0)
        return f"{lead} {n} tokens at the processor's {size}×{size} resolution"
    if config.get("vision_config") is not None:
        return "image tokens add to the sequence: count them into cutoff_len (this model's cost per image is not known here)"
    return None
