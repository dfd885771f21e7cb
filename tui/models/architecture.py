"""A decoder's architecture from a profile or a config.json, and the parameter counts computed
from it: embeddings, per layer the q/k/v/o attention projections (with q/k/v biases where the
architecture has them), the gated MLP, the RMSNorms (and Qwen3's per-head q/k norms), the final
norm, and an untied lm_head. Mixture-of-experts models are refused rather than miscounted."""

from __future__ import annotations

from dataclasses import dataclass, fields

# Families whose q/k/v projections have biases unless their config says otherwise.
_QKV_BIAS_BY_DEFAULT = {"qwen2"}


# Families with an RMSNorm over each head's q and k.
_QK_NORM = {"qwen3"}


# config.json keys without which a decoder cannot be sized (the others have defaults).
_REQUIRED_CONFIG_KEYS = (
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
)


class ModelError(Exception):
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
    max_position_embeddings: int | None = None

    @classmethod
    def from_config(cls, config: dict) -> "Architecture":
        """From a Hugging Face config.json (or a profile's `architecture` mapping)."""
        config = config.get("text_config", config)  # multimodal wrappers keep the LM inside
        if config.get("num_experts") or config.get("num_local_experts"):
            raise ModelError(
                f"{config.get('model_type', 'this model')} is a mixture-of-experts model; "
                "sft-tui cannot size those yet"
            )
        missing = [name for name in _REQUIRED_CONFIG_KEYS if name not in config]
        if missing:
            raise ModelError(f"config.json lacks {', '.join(missing)}: not a decoder sft-tui can size")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in config.items() if k in known}
        values.setdefault("tie_word_embeddings", False)
        if config.get("num_key_value_heads") is None:
            values["num_key_value_heads"] = config["num_attention_heads"]
        return cls(**values)

    @property
    def head_size(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @property
    def has_qkv_bias(self) -> bool:
        if self.attention_bias is not None:
            return self.attention_bias
        return self.model_type in _QKV_BIAS_BY_DEFAULT

    def shape(self) -> tuple:
        """What sizes the model, with defaults resolved: two configs with the same shape are
        the same architecture whatever optional keys they spell out."""
        return (
            self.model_type, self.hidden_size, self.num_hidden_layers, self.num_attention_heads,
            self.num_key_value_heads, self.head_size, self.intermediate_size, self.vocab_size,
            self.tie_word_embeddings, self.has_qkv_bias,
        )

    def linear_layers(self) -> list[LinearLayer]:
        """The transformer's linear layers: what `lora_target: all` adapts."""
        h, n = self.hidden_size, self.num_hidden_layers
        q_out = self.num_attention_heads * self.head_size
        kv_out = self.num_key_value_heads * self.head_size
        bias = self.has_qkv_bias
        return [
            LinearLayer("q_proj", h, q_out, bias, n),
            LinearLayer("k_proj", h, kv_out, bias, n),
            LinearLayer("v_proj", h, kv_out, bias, n),
            LinearLayer("o_proj", q_out, h, False, n),
            LinearLayer("gate_proj", h, self.intermediate_size, False, n),
            LinearLayer("up_proj", h, self.intermediate_size, False, n),
            LinearLayer("down_proj", self.intermediate_size, h, False, n),
        ]

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        """0 when tied: the lm_head then reuses the embedding matrix."""
        return 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size

    @property
    def norm_params(self) -> int:
        per_layer = 2 * self.hidden_size
        if self.model_type in _QK_NORM:
            per_layer += 2 * self.head_size
        return self.num_hidden_layers * per_layer + self.hidden_size

    def param_count(self) -> int:
        linear = sum(layer.params for layer in self.linear_layers())
        return self.embedding_params + self.lm_head_params + linear + self.norm_params
