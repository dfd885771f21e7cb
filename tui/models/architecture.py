"""A decoder's architecture from a profile or a config.json, and the parameter counts computed
from it, family by family, as transformers 5 builds the model:

- dense Llama-like families (llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3 text, glm,
  glm4, olmo2, granite, internlm2): embeddings, q/k/v/o attention projections (with biases where
  the family has them), the gated MLP, the norms (Gemma 2/3 and GLM-4 have four a layer; Qwen3 and
  Gemma 3 a per-head q/k norm, OLMo 2 a q/k norm over all heads), the final norm, an untied lm_head;
- fused projections: phi3's `qkv_proj` and `gate_up_proj`, glm's `gate_up_proj`, internlm2's `wqkv`;
- mixture of experts (mixtral, qwen2_moe, qwen3_moe, deepseek_v2, deepseek_v3 with multi-head
  latent attention): every routed expert, the shared experts, the routers.

`linear_layers()` lists the nn.Linear modules, which are what LLaMA-Factory's `lora_target: all`
adapts and what bitsandbytes quantizes. transformers 5 holds the routed experts of a MoE model as
fused 3-D parameters (not nn.Linear), so they are counted apart (`expert_params`): in the weights,
never a LoRA target. `active_param_count()` counts only the experts a token is routed to.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from tui.common.errors import SftTuiError

# Families whose q/k/v projections have biases unless their config says otherwise.
_QWEN_VL_TEXT = {"qwen2_vl_text", "qwen2_5_vl_text", "qwen2_vl", "qwen2_5_vl"}  # their language models: qwen2
_QKV_BIAS_BY_DEFAULT = {"qwen2", "qwen2_moe", "glm", "glm4"} | _QWEN_VL_TEXT
# Families whose o_proj never has a bias, whatever attention_bias says.
_NO_O_BIAS = {"qwen2", "qwen2_moe", "glm", "glm4"} | _QWEN_VL_TEXT
# Families whose embeddings are tied to the lm_head unless their config says otherwise.
_TIED_BY_DEFAULT = {"gemma", "gemma2", "gemma3_text"}
# Families with an RMSNorm over each head's q and k (one head_dim-sized weight each).
_PER_HEAD_QK_NORM = {"qwen3", "qwen3_moe", "gemma3_text"}
# Families with four norms a layer (before and after attention, before and after the MLP).
_FOUR_NORMS = {"gemma2", "gemma3_text", "glm4"}
# Families whose MLP is one fused gate_up_proj.
_FUSED_GATE_UP = {"phi3", "glm", "glm4"}
_MOE = {"mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v2", "deepseek_v3"}
_MLA = {"deepseek_v2", "deepseek_v3"}
KNOWN_FAMILIES = {
    "llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "glm", "glm4", "olmo2",
    "granite", "internlm2", "internlm3", "phi3",
} | _MOE | _QWEN_VL_TEXT

# config.json keys without which a decoder cannot be sized (the others have defaults).
_REQUIRED_CONFIG_KEYS = (
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
)
# Other spellings of the same facts in some families' configs.
_ALIASES = {
    "num_local_experts": "num_experts",  # mixtral
    "n_routed_experts": "num_experts",  # deepseek
    "qkv_bias": "attention_bias",  # qwen2_moe
}
# Class-name endings of the causal language models LLaMA-Factory fine-tunes.
_CAUSAL_LM_SUFFIXES = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")


# Fields a config never sets: the vision tower is computed from vision_config, the exact counts
# come from the meta-device facts.
_NOT_FROM_CONFIG = {"multimodal", "vision_params", "exact_params", "exact_linear", "exact_expert_params"}


class ModelError(SftTuiError):
    """A model could not be resolved or read; the message says what to do."""


@dataclass(frozen=True)
class LinearLayer:
    name: str  # the module name LoRA targets (q_proj, ..., down_proj)
    in_features: int
    out_features: int
    bias: bool
    count: int  # how many of them in the model (one per layer)

    @property
    def params(self) -> int:
        return self.count * (self.in_features * self.out_features + (self.out_features if self.bias else 0))


@dataclass(frozen=True)
class Architecture:
    model_type: str
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool
    head_dim: int | None = None
    attention_bias: bool | None = None
    mlp_bias: bool | None = None
    max_position_embeddings: int | None = None
    # Mixture of experts.
    num_experts: int | None = None  # routed experts in each MoE layer
    num_experts_per_tok: int | None = None
    moe_intermediate_size: int | None = None  # one expert's (qwen*_moe, deepseek); mixtral: intermediate_size
    shared_expert_intermediate_size: int | None = None  # qwen2_moe's one shared expert
    n_shared_experts: int | None = None  # deepseek: shared experts, each moe_intermediate_size wide
    first_k_dense_replace: int | None = None  # deepseek: the first k layers are dense
    decoder_sparse_step: int | None = None  # qwen*_moe: every n-th layer is sparse
    mlp_only_layers: tuple[int, ...] = ()  # qwen*_moe: dense layers
    # DeepSeek's multi-head latent attention.
    q_lora_rank: int | None = None
    kv_lora_rank: int | None = None
    qk_nope_head_dim: int | None = None
    qk_rope_head_dim: int | None = None
    v_head_dim: int | None = None
    # A multimodal model: its vision tower and projector (frozen by LLaMA-Factory's defaults
    # freeze_vision_tower and freeze_multi_modal_projector), from vision_config or the facts.
    multimodal: bool = False
    vision_params: int = 0
    # Facts read from the model transformers builds on the meta device (tui/models/facts.py):
    # when set they replace the config-only counts of the language model.
    exact_params: int | None = None
    exact_linear: tuple[LinearLayer, ...] | None = None
    exact_expert_params: int | None = None

    @classmethod
    def from_config(cls, config: dict) -> "Architecture":
        """From a Hugging Face config.json (or a profile's `architecture` mapping)."""
        architectures = config.get("architectures") or []
        if architectures and not any(str(a).endswith(_CAUSAL_LM_SUFFIXES) for a in architectures):
            raise ModelError(
                f"config.json describes {', '.join(map(str, architectures))} (model_type "
                f"{config.get('model_type', '?')}), not a causal language model LLaMA-Factory fine-tunes"
            )
        vision = None
        if isinstance(config.get("vision_config"), dict):
            from tui.models.vision import vision_tower_params

            vision = vision_tower_params(config)
        if isinstance(config.get("text_config"), dict):  # multimodal wrappers keep the LM inside
            inner = dict(config["text_config"])
            inner.setdefault("model_type", f"{config.get('model_type', '')}_text")
            if "tie_word_embeddings" in config:
                inner.setdefault("tie_word_embeddings", config["tie_word_embeddings"])
            config = inner
        config = {_ALIASES.get(k, k): v for k, v in config.items() if not (k in _ALIASES and _ALIASES[k] in config)}
        if config.get("model_type") == "internlm2" and "bias" in config:  # wqkv's and wo's bias
            config.setdefault("attention_bias", config["bias"])
        missing = [name for name in _REQUIRED_CONFIG_KEYS if config.get(name) is None]
        if missing:
            raise ModelError(
                f"config.json (model_type {config.get('model_type', '?')}) lacks {', '.join(missing)}: "
                "not a decoder sft-tui can size"
            )
        known = {f.name for f in fields(cls)} - _NOT_FROM_CONFIG
        values = {k: v for k, v in config.items() if k in known and v is not None}
        values.setdefault("tie_word_embeddings", config["model_type"] in _TIED_BY_DEFAULT)
        values.setdefault("num_key_value_heads", config["num_attention_heads"])
        values["mlp_only_layers"] = tuple(values.get("mlp_only_layers") or ())
        if not values.get("num_experts"):
            values.pop("num_experts", None)
        if vision is not None:
            values.update(multimodal=True, vision_params=vision)
        return cls(**values)

    # --- derived facts ---------------------------------------------------------------------------

    @property
    def head_size(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @property
    def has_qkv_bias(self) -> bool:
        if self.attention_bias is not None:
            return self.attention_bias
        return self.model_type in _QKV_BIAS_BY_DEFAULT

    @property
    def known_family(self) -> bool:
        return self.model_type in KNOWN_FAMILIES

    @property
    def is_moe(self) -> bool:
        return bool(self.num_experts) and self.model_type in _MOE

    @property
    def experts_per_token(self) -> int | None:
        return self.num_experts_per_tok if self.is_moe else None

    def is_sparse_layer(self, index: int) -> bool:
        """Whether layer `index` is a mixture-of-experts layer (else it has a dense MLP)."""
        if not self.is_moe:
            return False
        if self.model_type in _MLA:
            return index >= (self.first_k_dense_replace or 0)
        if self.model_type == "mixtral":
            return True
        step = self.decoder_sparse_step or 1
        return index not in self.mlp_only_layers and (index + 1) % step == 0

    @property
    def sparse_layers(self) -> int:
        return sum(self.is_sparse_layer(i) for i in range(self.num_hidden_layers))

    @property
    def expert_intermediate_size(self) -> int:
        if self.model_type == "mixtral":
            return self.intermediate_size
        return self.moe_intermediate_size or self.intermediate_size

    def shape(self) -> tuple:
        """What sizes the model, with defaults resolved: two configs with the same shape are
        the same architecture whatever optional keys they spell out."""
        return (
            self.model_type, self.hidden_size, self.num_hidden_layers, self.num_attention_heads,
            self.num_key_value_heads, self.head_size, self.intermediate_size, self.vocab_size,
            self.tie_word_embeddings, self.has_qkv_bias, self.num_experts, self.expert_intermediate_size,
            self.sparse_layers, self.param_count(),
        )

    # --- linear layers (LoRA targets) -----------------------------------------------------------

    def _attention_layers(self) -> list[LinearLayer]:
        h, n, heads = self.hidden_size, self.num_hidden_layers, self.num_attention_heads
        if self.model_type in _MLA:
            nope, rope = self.qk_nope_head_dim or 128, self.qk_rope_head_dim or 64
            v_dim, kv_rank = self.v_head_dim or 128, self.kv_lora_rank or 512
            bias = bool(self.attention_bias)
            if self.q_lora_rank:
                q = [LinearLayer("q_a_proj", h, self.q_lora_rank, bias, n),
                     LinearLayer("q_b_proj", self.q_lora_rank, heads * (nope + rope), False, n)]
            else:
                q = [LinearLayer("q_proj", h, heads * (nope + rope), False, n)]
            return q + [
                LinearLayer("kv_a_proj_with_mqa", h, kv_rank + rope, bias, n),
                LinearLayer("kv_b_proj", kv_rank, heads * (nope + v_dim), False, n),
                LinearLayer("o_proj", heads * v_dim, h, bias, n),
            ]
        q_out = heads * self.head_size
        kv_out = self.num_key_value_heads * self.head_size
        bias = self.has_qkv_bias
        o_bias = bool(self.attention_bias) and self.model_type not in _NO_O_BIAS
        if self.model_type == "phi3":
            return [LinearLayer("qkv_proj", h, q_out + 2 * kv_out, False, n), LinearLayer("o_proj", q_out, h, False, n)]
        if self.model_type == "internlm2":
            return [LinearLayer("wqkv", h, q_out + 2 * kv_out, bias, n), LinearLayer("wo", q_out, h, bias, n)]
        return [
            LinearLayer("q_proj", h, q_out, bias, n),
            LinearLayer("k_proj", h, kv_out, bias, n),
            LinearLayer("v_proj", h, kv_out, bias, n),
            LinearLayer("o_proj", q_out, h, o_bias, n),
        ]

    def _mlp_layers(self, inter: int, count: int, prefix: str = "") -> list[LinearLayer]:
        h, bias = self.hidden_size, bool(self.mlp_bias)
        if count == 0 or inter == 0:
            return []
        if self.model_type in _FUSED_GATE_UP:
            return [LinearLayer("gate_up_proj", h, 2 * inter, bias, count), LinearLayer("down_proj", inter, h, bias, count)]
        if self.model_type == "internlm2":
            return [LinearLayer("w1", h, inter, False, count), LinearLayer("w3", h, inter, False, count),
                    LinearLayer("w2", inter, h, False, count)]
        return [
            LinearLayer(f"{prefix}gate_proj", h, inter, bias, count),
            LinearLayer(f"{prefix}up_proj", h, inter, bias, count),
            LinearLayer(f"{prefix}down_proj", inter, h, bias, count),
        ]

    def linear_layers(self) -> list[LinearLayer]:
        """The language model's nn.Linear modules but the lm_head: what `lora_target: all` adapts."""
        if self.exact_linear is not None:
            return list(self.exact_linear)
        sparse = self.sparse_layers
        layers = self._attention_layers() + self._mlp_layers(self.intermediate_size, self.num_hidden_layers - sparse)
        if not sparse:
            return layers
        h = self.hidden_size
        if self.model_type == "qwen2_moe" and self.shared_expert_intermediate_size:
            layers += self._mlp_layers(self.shared_expert_intermediate_size, sparse)
            layers.append(LinearLayer("shared_expert_gate", h, 1, False, sparse))
        if self.model_type in _MLA and self.n_shared_experts:
            layers += self._mlp_layers(self.expert_intermediate_size * self.n_shared_experts, sparse)
        if self.model_type == "deepseek_v2":  # its router is an nn.Linear (deepseek_v3's is not)
            layers.append(LinearLayer("gate", h, self.num_experts or 0, False, sparse))
        return layers

    # --- parameter counts -----------------------------------------------------------------------

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        """0 when tied: the lm_head then reuses the embedding matrix."""
        return 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size

    @property
    def norm_params(self) -> int:
        h = self.hidden_size
        per_layer = (4 if self.model_type in _FOUR_NORMS else 2) * h
        if self.model_type in _PER_HEAD_QK_NORM:
            per_layer += 2 * self.head_size
        if self.model_type == "olmo2":
            per_layer += (self.num_attention_heads + self.num_key_value_heads) * self.head_size
        if self.model_type in _MLA:
            per_layer += (self.kv_lora_rank or 512) + (self.q_lora_rank or 0)
        return self.num_hidden_layers * per_layer + h

    @property
    def expert_params(self) -> int:
        """Every routed expert's weights (fused gate_up and down) in every MoE layer."""
        if self.exact_expert_params is not None:
            return self.exact_expert_params
        per_expert = 3 * self.hidden_size * self.expert_intermediate_size
        return self.sparse_layers * (self.num_experts or 0) * per_expert

    @property
    def active_expert_params(self) -> int:
        """The routed experts one token uses: experts per token of each MoE layer's experts."""
        if not self.is_moe:
            return 0
        experts = self.num_experts or 0  # set: is_moe
        per_tok = min(self.num_experts_per_tok or experts, experts)
        return self.expert_params * per_tok // experts

    @property
    def router_params(self) -> int:
        """Routers held as plain parameters (deepseek_v2's nn.Linear router is a linear layer)."""
        if not self.is_moe or self.model_type == "deepseek_v2":
            return 0
        return self.sparse_layers * (self.num_experts or 0) * self.hidden_size

    def param_count(self) -> int:
        """The language model's parameters (a multimodal model's vision tower is `vision_params`)."""
        if self.exact_params is not None:
            return self.exact_params
        linear = sum(layer.params for layer in self.linear_layers())
        return (self.embedding_params + self.lm_head_params + linear + self.norm_params
                + self.expert_params + self.router_params)

    def active_param_count(self) -> int:
        """Parameters one token passes through: the total less the experts it is not routed to."""
        return self.param_count() - self.expert_params + self.active_expert_params
