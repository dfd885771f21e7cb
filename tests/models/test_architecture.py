"""Config-only parameter counts, family by family, held to the model transformers builds.

Each tiny config below is built by transformers 5 on the meta device (no weights, no memory) in a
subprocess (the test process never imports torch or transformers), and its total parameter count
and nn.Linear modules must equal what `Architecture` computes from the config alone.
"""

import json
import subprocess
import sys

import pytest

from tui.models.architecture import Architecture, ModelError

BASE = {"hidden_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
        "intermediate_size": 96, "vocab_size": 500, "pad_token_id": 0}

TINY = {
    "llama": dict(BASE, model_type="llama", architectures=["LlamaForCausalLM"]),
    "llama-tied-bias": dict(BASE, model_type="llama", tie_word_embeddings=True, attention_bias=True, mlp_bias=True),
    "mistral": dict(BASE, model_type="mistral", head_dim=32),
    "qwen2": dict(BASE, model_type="qwen2"),
    "qwen3": dict(BASE, model_type="qwen3", head_dim=32, tie_word_embeddings=True),
    "gemma": dict(BASE, model_type="gemma", head_dim=24),
    "gemma2": dict(BASE, model_type="gemma2", head_dim=32),
    "gemma3_text": dict(BASE, model_type="gemma3_text", head_dim=32),
    "glm": dict(BASE, model_type="glm", head_dim=16),
    "glm4": dict(BASE, model_type="glm4", head_dim=16),
    "olmo2": dict(BASE, model_type="olmo2"),
    "granite": dict(BASE, model_type="granite", tie_word_embeddings=True),
    "phi3": dict(BASE, model_type="phi3", num_key_value_heads=4),
    "phi3-gqa": dict(BASE, model_type="phi3"),
    "mixtral": dict(BASE, model_type="mixtral", num_local_experts=4, num_experts_per_tok=2),
    "qwen2_moe": dict(BASE, model_type="qwen2_moe", num_experts=6, num_experts_per_tok=2, moe_intermediate_size=32,
                      shared_expert_intermediate_size=80, decoder_sparse_step=1, mlp_only_layers=[1]),
    "qwen3_moe": dict(BASE, model_type="qwen3_moe", head_dim=32, num_experts=8, num_experts_per_tok=2,
                      moe_intermediate_size=40, decoder_sparse_step=1, mlp_only_layers=[]),
    "deepseek_v2": dict(BASE, model_type="deepseek_v2", num_key_value_heads=4, n_routed_experts=8,
                        num_experts_per_tok=2, moe_intermediate_size=24, n_shared_experts=2, first_k_dense_replace=1,
                        q_lora_rank=None, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16,
                        n_group=1, topk_group=1),
    "deepseek_v3": dict(BASE, model_type="deepseek_v3", num_key_value_heads=4, n_routed_experts=8,
                        num_experts_per_tok=2, moe_intermediate_size=24, n_shared_experts=1, first_k_dense_replace=1,
                        q_lora_rank=48, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16,
                        n_group=1, topk_group=1),
}

META_SCRIPT = r"""
import json, sys, torch
from transformers import AutoConfig, AutoModelForCausalLM
out = {}
for name, config in json.loads(sys.stdin.read()).items():
    config = {k: v for k, v in config.items() if k != "architectures"}
    cfg = AutoConfig.for_model(**config)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    linear = {}
    for module_name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and not module_name.endswith("lm_head"):
            key = module_name.split(".")[-1]
            n = module.weight.numel() + (module.bias.numel() if module.bias is not None else 0)
            linear[key] = linear.get(key, 0) + n
    out[name] = {"params": sum(p.numel() for p in model.parameters()), "linear": linear}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def meta_facts():
    done = subprocess.run([sys.executable, "-c", META_SCRIPT], input=json.dumps(TINY), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", sorted(TINY))
def test_config_only_counts_equal_the_meta_device_model(meta_facts, name):
    arch = Architecture.from_config(TINY[name])
    facts = meta_facts[name]
    linear: dict[str, int] = {}
    for layer in arch.linear_layers():
        linear[layer.name] = linear.get(layer.name, 0) + layer.params
    assert linear == facts["linear"]
    assert arch.param_count() == facts["params"]


def test_moe_counts_every_expert_and_active_counts_experts_per_token():
    arch = Architecture.from_config(TINY["mixtral"])
    per_layer_experts = 4 * 3 * 64 * 96
    assert arch.is_moe and arch.sparse_layers == 3 and arch.experts_per_token == 2
    assert arch.expert_params == 3 * per_layer_experts
    assert arch.param_count() - arch.active_param_count() == 3 * per_layer_experts // 2
    # Routed experts are fused parameters in transformers 5, not LoRA targets.
    assert {layer.name for layer in arch.linear_layers()} == {"q_proj", "k_proj", "v_proj", "o_proj"}
    dense = Architecture.from_config(TINY["llama"])
    assert dense.active_param_count() == dense.param_count() and dense.experts_per_token is None


def test_qwen_moe_dense_layers_follow_mlp_only_layers():
    arch = Architecture.from_config(TINY["qwen2_moe"])
    assert [arch.is_sparse_layer(i) for i in range(3)] == [True, False, True]


# Published configs (config.json on the hub) and the published totals they must give within 1 %.
DEEPSEEK_V2_LITE = {  # deepseek-ai/DeepSeek-V2-Lite: "16B total params, 2.4B active" (model card; 15.7B on the hub)
    "architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2", "hidden_size": 2048,
    "num_hidden_layers": 27, "num_attention_heads": 16, "num_key_value_heads": 16, "intermediate_size": 10944,
    "moe_intermediate_size": 1408, "n_routed_experts": 64, "n_shared_experts": 2, "num_experts_per_tok": 6,
    "first_k_dense_replace": 1, "q_lora_rank": None, "kv_lora_rank": 512, "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64, "v_head_dim": 128, "vocab_size": 102400, "tie_word_embeddings": False,
}
DEEPSEEK_V3 = {  # deepseek-ai/DeepSeek-V3: "671B total parameters with 37B activated" (model card; + 14B MTP)
    "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": 7168,
    "num_hidden_layers": 61, "num_attention_heads": 128, "num_key_value_heads": 128, "intermediate_size": 18432,
    "moe_intermediate_size": 2048, "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 8,
    "first_k_dense_replace": 3, "q_lora_rank": 1536, "kv_lora_rank": 512, "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64, "v_head_dim": 128, "vocab_size": 129280, "tie_word_embeddings": False,
}
QWEN15_MOE = {  # Qwen/Qwen1.5-MoE-A2.7B: "14.3B parameters in total and 2.7B activated" (model card)
    "architectures": ["Qwen2MoeForCausalLM"], "model_type": "qwen2_moe", "hidden_size": 2048,
    "num_hidden_layers": 24, "num_attention_heads": 16, "num_key_value_heads": 16, "intermediate_size": 5632,
    "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632, "num_experts": 60,
    "num_experts_per_tok": 4, "decoder_sparse_step": 1, "vocab_size": 151936, "tie_word_embeddings": False,
}


# DeepSeek's "activated" figures leave out the input embedding (a look-up, no compute); Qwen's keep it.
@pytest.mark.parametrize(
    ("config", "total", "active", "active_tolerance", "with_embedding"),
    [
        (DEEPSEEK_V2_LITE, 15.7e9, 2.4e9, 0.05, False),  # "2.4B" active is rounded to two digits
        (DEEPSEEK_V3, 671e9, 37e9, 0.02, False),
        (QWEN15_MOE, 14.3e9, 2.7e9, 0.05, True),
    ],
)
def test_published_moe_models(config, total, active, active_tolerance, with_embedding):
    arch = Architecture.from_config(config)
    assert abs(arch.param_count() - total) / total < 0.01, arch.param_count()
    computed = arch.active_param_count() - (0 if with_embedding else arch.embedding_params)
    assert abs(computed - active) / active < active_tolerance, computed


def test_configs_that_are_not_causal_language_models_say_what_they_are():
    bert = {"architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_size": 768}
    with pytest.raises(ModelError, match=r"describes BertForMaskedLM \(model_type bert\), not a causal language model"):
        Architecture.from_config(bert)
    with pytest.raises(ModelError, match="lacks num_hidden_layers"):
        Architecture.from_config({"model_type": "weird", "hidden_size": 8, "num_attention_heads": 2,
                                  "intermediate_size": 8, "vocab_size": 10})


def test_a_multimodal_wrapper_is_sized_by_its_text_model():
    wrapped = {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
               "text_config": {k: v for k, v in TINY["gemma3_text"].items() if k != "model_type"}}
    arch = Architecture.from_config(wrapped)
    assert arch.model_type == "gemma3_text" and arch.tie_word_embeddings
    assert arch.param_count() == Architecture.from_config(TINY["gemma3_text"]).param_count()
