"""Peak GPU memory of one LLaMA-Factory training step, per device, as a breakdown.

Pure arithmetic: a `TrainingShape` in, an `Estimate` out. Every constant below is named and
says where it comes from. They are first-principles figures for LLaMA-Factory 0.9.5 on
transformers 5 (no fused or chunked loss, PEFT LoRA, bitsandbytes); bench/memory_accuracy.py
measures them against real runs (`RECORD_VRAM=1`) on a GPU, and the results belong in
bench/results/.

Terms, in bytes per device:
- weights: the frozen base model as it is held (16/32-bit, or bitsandbytes 8/4-bit, whose
  embeddings and lm_head stay 16-bit), sharded over the GPUs by ZeRO-3;
- trainable: LoRA adapters (rank x (in + out) per targeted linear layer) or, for full
  fine-tuning, every parameter; LLaMA-Factory upcasts trainable parameters to fp32 unless
  pure_bf16, so they cost their weight, gradient and AdamW's two states;
- activations: what backward needs for `batch x sequence` tokens; with gradient checkpointing
  (LLaMA-Factory's default) each layer keeps only its input, plus one layer recomputed in full;
  attention is linear in sequence length with sdpa / flash-attention, quadratic with eager;
- logits: `batch x sequence x vocab`, held in the compute dtype, upcast to fp32 for the loss,
  with the log-softmax and its gradient: often the largest single term with a 150k vocabulary;
- overhead: the CUDA/ROCm context plus allocator fragmentation, a constant and a fraction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from tui.models.architecture import Architecture

GIB = 1024**3

# bitsandbytes NF4 packs two weights a byte; one fp32 absmax per block of 64 adds 4/64 bytes a
# weight, or 1/64 + 4/(64*256) with double quantization (LLaMA-Factory's default), which
# quantizes the absmax to 8 bits with an fp32 constant per 256 blocks.
NF4_BYTES = 0.5
NF4_CONSTANTS_BYTES = 4 / 64
NF4_DOUBLE_QUANT_CONSTANTS_BYTES = 1 / 64 + 4 / (64 * 256)
# LLM.int8: one byte a weight plus an fp32 scale per output row (negligible, folded in).
INT8_BYTES = 1.0
# Trainable parameters in fp32: weight 4 + gradient 4 + AdamW exp_avg 4 + exp_avg_sq 4.
TRAINABLE_FP32_BYTES = (4, 4, 8)  # (weight, gradient, optimizer)
# pure_bf16 keeps trainable parameters, gradients and AdamW states in bf16.
TRAINABLE_PURE_BF16_BYTES = (2, 2, 4)
# Logits: compute-dtype logits kept by the model output (2 in bf16), the fp32 log-softmax
# saved for backward (4), its fp32 gradient (4) and the cast-back gradient (2): 12 bytes an
# element at the start of backward. (In fp32 the cast is free but the logits cost 4: same.)
LOGITS_BYTES_PER_ELEMENT = 12
# During backward of the layer being recomputed, its activations and their gradients coexist.
RECOMPUTED_LAYER_FACTOR = 2
# Context and fragmentation.
CONTEXT_GIB = {"nvidia": 0.5, "amd": 0.5, "apple": 0.0, "cpu": 0.0}
FRAGMENTATION = 0.10  # of activations and logits: short-lived blocks the allocator cannot reuse
# ZeRO-3 gathers a layer's parameters before use and prefetches the next one.
ZERO3_GATHERED_LAYERS = 2


@dataclass(frozen=True)
class TrainingShape:
    arch: Architecture
    finetuning_type: str = "lora"  # lora | full
    quantization_bit: int | None = None  # None, 8 or 4 (bitsandbytes)
    double_quantization: bool = True
    compute_bytes: int = 2  # 2 for bf16/fp16, 4 for fp32
    pure_bf16: bool = False
    lora_rank: int = 8
    lora_target: str = "all"
    lora_dropout: float = 0.0
    micro_batch: int = 1
    seq_len: int = 1024
    gradient_checkpointing: bool = True
    attention: str = "sdpa"  # sdpa | fa2 | eager
    n_gpus: int = 1
    zero_stage: int = 0  # 0 (DDP or one GPU), 2, 3
    offload: bool = False  # ZeRO offload of optimizer states (and parameters with stage 3)
    vendor: str = "nvidia"


@dataclass
class Estimate:
    breakdown: dict[str, float]  # GiB per device
    cpu_offload_gib: float = 0.0
    trainable_params: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def per_device_gib(self) -> float:
        return sum(self.breakdown.values())

    def to_json(self) -> dict:
        data = asdict(self)
        data["per_device_gib"] = round(self.per_device_gib, 3)
        data["breakdown"] = {k: round(v, 3) for k, v in self.breakdown.items()}
        data["cpu_offload_gib"] = round(self.cpu_offload_gib, 3)
        return data


def targeted_layers(arch: Architecture, lora_target: str):
    """The linear layers `lora_target` names ("all", or comma-separated module names)."""
    layers = arch.linear_layers()
    if lora_target == "all":
        return layers
    wanted = {name.strip() for name in lora_target.split(",")}
    return [layer for layer in layers if layer.name in wanted]


def lora_params(arch: Architecture, rank: int, lora_target: str) -> int:
    return sum(layer.count * rank * (layer.in_features + layer.out_features) for layer in targeted_layers(arch, lora_target))


def weights_bytes(shape: TrainingShape) -> float:
    arch = shape.arch
    linear = sum(layer.params for layer in arch.linear_layers())
    if shape.finetuning_type == "full":
        return 0.0  # counted as trainable
    if shape.quantization_bit is None:
        return arch.param_count() * shape.compute_bytes
    # Embeddings, lm_head and norms stay in the compute dtype under bitsandbytes.
    kept = (arch.param_count() - linear) * shape.compute_bytes
    if shape.quantization_bit == 8:
        return kept + linear * INT8_BYTES
    constants = NF4_DOUBLE_QUANT_CONSTANTS_BYTES if shape.double_quantization else NF4_CONSTANTS_BYTES
    return kept + linear * (NF4_BYTES + constants)


def trainable_params(shape: TrainingShape) -> int:
    if shape.finetuning_type == "full":
        return shape.arch.param_count()
    return lora_params(shape.arch, shape.lora_rank, shape.lora_target)


def activation_elements_per_token(shape: TrainingShape) -> tuple[float, float]:
    """(elements a layer keeps for backward per token, elements its input costs per token)."""
    arch = shape.arch
    h, inter = arch.hidden_size, arch.intermediate_size
    q_out = arch.num_attention_heads * arch.head_size
    kv_out = arch.num_key_value_heads * arch.head_size
    layer = (
        2 * h  # attention RMSNorm input and output
        + q_out + 2 * kv_out  # q, k, v projections
        + q_out  # attention output (flash/sdpa also keep a small fp32 logsumexp)
        + 2 * h  # residual and MLP RMSNorm output
        + 4 * inter  # gate, up, activation, gate*up
    )
    if shape.finetuning_type == "lora" and shape.lora_dropout > 0:
        # PEFT applies dropout to each adapted layer's input: one copy per targeted module.
        layer += sum(t.in_features for t in targeted_layers(arch, shape.lora_target))
    return layer, h


def estimate(shape: TrainingShape) -> Estimate:
    arch = shape.arch
    n = max(1, shape.n_gpus)
    tokens = shape.micro_batch * shape.seq_len
    notes: list[str] = []

    weights = weights_bytes(shape)
    if shape.zero_stage == 3:
        gathered = ZERO3_GATHERED_LAYERS * sum(l.params for l in arch.linear_layers()) / arch.num_hidden_layers
        weights = weights / n + gathered * shape.compute_bytes
        notes.append(f"ZeRO-3 shards the weights over {n} GPUs")

    n_trainable = trainable_params(shape)
    w_bytes, g_bytes, o_bytes = TRAINABLE_PURE_BF16_BYTES if shape.pure_bf16 else TRAINABLE_FP32_BYTES
    trainable, gradients, optimizer = n_trainable * w_bytes, n_trainable * g_bytes, n_trainable * o_bytes
    offloaded = 0.0
    if shape.zero_stage >= 2:
        gradients /= n
        optimizer /= n
    if shape.zero_stage == 3:
        trainable /= n
    if shape.offload and shape.zero_stage >= 2:
        offloaded += optimizer
        optimizer = 0.0
        if shape.zero_stage == 3:
            offloaded += weights + trainable
            weights, trainable = ZERO3_GATHERED_LAYERS * weights_bytes(shape) / arch.num_hidden_layers, 0.0
        notes.append("ZeRO offload keeps optimizer states (and ZeRO-3 parameters) in CPU RAM")

    layer, layer_input = activation_elements_per_token(shape)
    attention_scores = 0.0
    if shape.attention == "eager":
        # softmax(QK^T) for every head: saved probabilities plus the transient scores.
        attention_scores = 2 * shape.micro_batch * arch.num_attention_heads * shape.seq_len**2 * shape.compute_bytes
    if shape.gradient_checkpointing:
        activations = tokens * (arch.num_hidden_layers * layer_input + RECOMPUTED_LAYER_FACTOR * layer) * shape.compute_bytes
        activations += RECOMPUTED_LAYER_FACTOR * attention_scores
    else:
        activations = arch.num_hidden_layers * (tokens * layer * shape.compute_bytes + attention_scores)
    logits = tokens * arch.vocab_size * LOGITS_BYTES_PER_ELEMENT

    overhead = CONTEXT_GIB.get(shape.vendor, 0.5) * GIB + FRAGMENTATION * (activations + logits)
    breakdown = {
        "weights": weights,
        "trainable": trainable,
        "gradients": gradients,
        "optimizer": optimizer,
        "activations": activations,
        "logits": logits,
        "overhead": overhead,
    }
    return Estimate(
        breakdown={k: v / GIB for k, v in breakdown.items()},
        cpu_offload_gib=offloaded / GIB,
        trainable_params=n_trainable,
        notes=notes,
    )


def bar_cells(breakdown: dict[str, float], capacity: float, width: int) -> tuple[list[tuple[str, int]], int]:
    """The memory bar's layout, for every renderer of it: how many of `width` cells each part
    of the breakdown takes, in order, and how many free cells follow, on the scale of the
    device's capacity (or of the estimate, when it is the larger)."""
    scale = max(capacity, sum(breakdown.values())) or 1
    parts, used = [], 0
    for key, value in breakdown.items():
        cells = min(round(value / scale * width), width - used)
        parts.append((key, cells))
        used += cells
    return parts, max(0, round(capacity / scale * width) - used)
