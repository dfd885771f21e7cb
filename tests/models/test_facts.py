"""Architecture facts from the real thing (tui/lf/model_facts.py in the training environment) and
the config-only fallback held to them on every tiny config of the tests: language-model parameters,
the linear layers LLaMA-Factory's `lora_target: all` adapts, routed experts, the vision tower and
projector of multimodal models. Published multimodal totals check the vision formulas at full size.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from tests.models.test_architecture import BASE, TINY
from tui.common.profiles import load_profiles
from tui.models import facts as facts_module
from tui.models.architecture import Architecture
from tui.models.facts import ModelFacts, facts_for, run_facts
from tui.models.resolve import read_local_model

needs_llamafactory = pytest.mark.skipif(importlib.util.find_spec("llamafactory") is None,
                                        reason="needs LLaMA-Factory (the train extra)")
PYTHON = Path(sys.executable)
TEXT = {k: v for k, v in BASE.items() if k != "pad_token_id"}

MULTIMODAL = {
    "qwen2_vl": {"model_type": "qwen2_vl", "architectures": ["Qwen2VLForConditionalGeneration"],
                 "text_config": dict(TEXT, model_type="qwen2_vl_text"),
                 "vision_config": {"depth": 2, "embed_dim": 32, "mlp_ratio": 4, "num_heads": 4, "in_chans": 3,
                                   "hidden_size": 64, "patch_size": 14, "spatial_merge_size": 2,
                                   "temporal_patch_size": 2}},
    "qwen2_5_vl": {"model_type": "qwen2_5_vl", "architectures": ["Qwen2_5_VLForConditionalGeneration"],
                   "text_config": dict(TEXT, model_type="qwen2_5_vl_text"),
                   "vision_config": {"depth": 2, "hidden_size": 32, "intermediate_size": 48, "num_heads": 4,
                                     "in_channels": 3, "out_hidden_size": 64, "patch_size": 14,
                                     "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
                                     "fullatt_block_indexes": [1]}},
    "gemma3": {"model_type": "gemma3", "architectures": ["Gemma3ForConditionalGeneration"], "mm_tokens_per_image": 16,
               "text_config": dict(TEXT, model_type="gemma3_text", head_dim=16),
               "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 48,
                                 "num_hidden_layers": 2, "num_attention_heads": 4, "image_size": 56,
                                 "patch_size": 14, "vision_use_head": False}},
    "llava": {"model_type": "llava", "architectures": ["LlavaForConditionalGeneration"],
              "text_config": dict(TEXT, model_type="llama"),
              "vision_config": {"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 48,
                                "num_hidden_layers": 2, "num_attention_heads": 4, "image_size": 56, "patch_size": 14,
                                "projection_dim": 16}},
}
EVERY_CONFIG = TINY | MULTIMODAL


@pytest.fixture(scope="module")
def meta_facts():
    names = sorted(EVERY_CONFIG)
    answers = run_facts([EVERY_CONFIG[name] for name in names], PYTHON, timeout=900)
    return dict(zip(names, answers))


def _by_name(layers) -> dict[str, int]:
    summed: dict[str, int] = {}
    for layer in layers:
        summed[layer.name] = summed.get(layer.name, 0) + layer.params
    return summed


@needs_llamafactory
@pytest.mark.parametrize("name", sorted(EVERY_CONFIG))
def test_config_only_fallback_equals_the_meta_device_facts(meta_facts, name):
    assert "error" not in meta_facts[name], meta_facts[name]
    facts = ModelFacts.from_json(meta_facts[name])
    arch = Architecture.from_config(EVERY_CONFIG[name])
    assert arch.param_count() == facts.language_params
    assert _by_name(arch.linear_layers()) == _by_name(facts.linear)
    # The names LLaMA-Factory's own lora_target: all selects are the linear layers counted.
    assert {layer.name for layer in arch.linear_layers()} == set(facts.lora_target_all)
    assert arch.multimodal == facts.multimodal
    assert arch.vision_params == facts.vision_params
    assert facts.params == facts.language_params + facts.vision_params
    if arch.is_moe:
        assert (arch.num_experts, arch.experts_per_token) == (facts.experts, facts.experts_per_token)
        assert arch.expert_params == facts.expert_params
    # The facts applied change nothing when the formulas are right.
    measured = facts.apply(arch)
    assert (measured.param_count(), measured.active_param_count()) == (arch.param_count(), arch.active_param_count())


@needs_llamafactory
def test_facts_are_cached_by_config_hash(monkeypatch):
    config = dict(TINY["llama"], vocab_size=512)
    first, how = facts_for(config, python=PYTHON)
    assert first is not None and "built on the meta device" in how, how

    def no_subprocess(*args, **kwargs):
        raise AssertionError("facts read again instead of from the cache")

    monkeypatch.setattr(facts_module, "run_facts", no_subprocess)
    again, _ = facts_for(config, python=PYTHON)
    assert again == first
    assert len(list((facts_module._cache_path(config)).parent.glob("*.json"))) >= 1


def test_without_a_training_environment_the_formulas_stand_and_say_so(monkeypatch):
    monkeypatch.setattr(facts_module, "_training_python", lambda: None)
    found, how = facts_for(dict(TINY["llama"], vocab_size=498))
    assert found is None
    assert how.startswith("parameters from config.json alone: no training environment with LLaMA-Factory")
    monkeypatch.setenv("SFT_TUI_MODEL_FACTS", "0")
    assert facts_for(TINY["llama"]) == (None, "parameters from config.json alone (SFT_TUI_MODEL_FACTS=0)")


def test_a_model_transformers_cannot_build_falls_back_with_the_reason(monkeypatch):
    monkeypatch.setattr(facts_module, "run_facts", lambda configs, python: [{"error": "ValueError: no such model"}])
    found, how = facts_for(dict(TINY["llama"], vocab_size=497), python=PYTHON)
    assert found is None and how.endswith("could not build the model (ValueError: no such model)")


def _local(tmp_path: Path, config: dict) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


@needs_llamafactory
def test_a_local_multimodal_model_resolves_with_its_vision_tower(tmp_path):
    model = read_local_model(_local(tmp_path, MULTIMODAL["qwen2_vl"]), load_profiles(["models"]))
    arch = Architecture.from_config(MULTIMODAL["qwen2_vl"])
    assert model.counts_from == "meta-device"
    assert model.multimodal and model.vision_params == arch.vision_params == 87872
    assert model.params == arch.param_count() + 87872
    assert model.template == "qwen2_vl"
    assert any(n.startswith("parameters and linear layers from Qwen2VLForConditionalGeneration built on the meta")
               for n in model.notes)
    assert ("image tokens add to the sequence: each image costs (H/28)·(W/28) tokens (merged patches) for an H×W "
            "image: 729 at 768×768") in " ".join(model.notes)
    data = model.to_json()
    assert data["multimodal"] is True and data["vision_params"] == 87872 and "exact_linear" not in data["architecture"]


def test_config_only_resolution_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("SFT_TUI_MODEL_FACTS", "0")
    model = read_local_model(_local(tmp_path, MULTIMODAL["gemma3"]), load_profiles(["models"]))
    assert model.counts_from == "config" and model.multimodal
    assert "parameters from config.json alone (SFT_TUI_MODEL_FACTS=0)" in model.notes
    assert "each image costs 16 tokens at the processor's 56×56 resolution" in " ".join(model.notes)
    assert model.template == "gemma3"


# Published config.json facts (the keys that size them) and the totals on the models' hub pages.
QWEN2_VL_7B = {  # Qwen/Qwen2-VL-7B-Instruct: 8.29B
    "architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl", "hidden_size": 3584,
    "intermediate_size": 18944, "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4,
    "vocab_size": 152064, "tie_word_embeddings": False,
    "vision_config": {"depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16, "in_chans": 3,
                      "hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2},
}
GEMMA3_4B = {  # google/gemma-3-4b-it: 4.30B
    "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "mm_tokens_per_image": 256,
    "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "num_hidden_layers": 34,
                    "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "vocab_size": 262208},
    "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152, "intermediate_size": 4304,
                      "num_hidden_layers": 27, "num_attention_heads": 16, "image_size": 896, "patch_size": 14,
                      "vision_use_head": False},
}
LLAVA_15_7B = {  # llava-hf/llava-1.5-7b-hf: 7.06B
    "architectures": ["LlavaForConditionalGeneration"], "model_type": "llava",
    "text_config": {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                    "num_attention_heads": 32, "vocab_size": 32064},
    "vision_config": {"model_type": "clip_vision_model", "hidden_size": 1024, "intermediate_size": 4096,
                      "num_hidden_layers": 24, "num_attention_heads": 16, "image_size": 336, "patch_size": 14,
                      "projection_dim": 768},
}


@pytest.mark.parametrize(("config", "total"), [(QWEN2_VL_7B, 8.29e9), (GEMMA3_4B, 4.30e9), (LLAVA_15_7B, 7.06e9)])
def test_published_multimodal_totals(config, total):
    arch = Architecture.from_config(config)
    assert arch.multimodal
    computed = arch.param_count() + arch.vision_params
    assert abs(computed - total) / total < 0.01, computed
