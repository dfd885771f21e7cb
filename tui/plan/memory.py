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
- overhead: the CUDA/ROCm context plus what the caching allocator reserves beyond the
  tensors (tui/plan/reserve.py), a constant and a measured share of activations and logits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from tui.models.architecture import Architecture
from tui.plan.reserve import analytic_reserve_gib, context_gib

GIB = 1024**3

# bitsandbytes NF4 packs two weights a byte; one fp32 absmax per block of 64 adds 4/64 bytes a
# weight, or 1/64 + 4/(64*256) with double quantization (LLaMA-Factory's default), which
# quantizes the absmax to 8 bits with an fp32 constant per 256 blocks.
NF4_BYTES = 0.5
NF4_CONSTANTS_BYTES = 4 / 64
NF4_DOUBLE_QUANT_CONSTANTS_BYTES = 1 / 64 + 4 / (64 * 256)
# LLM.int8: one byte a weight plus an fp32 scale per output row (negligible, folded in).
INT8_BYTES = 1.0
# Trainable parameters: LLaMA-Factory upcasts them to fp32 (weight 4 + gradient 4) unless
# pure_bf16, which keeps them, their gradients and 32-bit optimizer states in bf16.
TRAINABLE_FP32_BYTES = (4, 4)  # (weight, gradient)
TRAINABLE_PURE_BF16_BYTES = (2, 2)
# Optimizer state bytes per trainable parameter (transformers' `optim` names, as LLaMA-Factory
# passes them): AdamW keeps exp_avg and exp_avg_sq (2 x 4 bytes); bitsandbytes' 8-bit AdamW
# keeps both in one byte each (2, block constants negligible); paged variants hold the same
# states in unified memory that bitsandbytes may evict to CPU RAM under pressure (counted as
# held: the peak is when they are all used); Lion keeps one moment; SGD without momentum none.
OPTIMIZER_STATE_BYTES = {
    "adamw_torch": 8, "adamw_torch_fused": 8, "adamw_hf": 8, "adamw_apex_fused": 8, "adamw_anyprecision": 8,
    "paged_adamw_32bit": 8, "adamw_8bit": 2, "adamw_bnb_8bit": 2, "paged_adamw_8bit": 2,
    "lion_32bit": 4, "paged_lion_32bit": 4, "lion_8bit": 1, "paged_lion_8bit": 1,
    "adagrad": 4, "rmsprop": 4, "sgd": 0,
}
EIGHT_BIT_OPTIMIZERS = ("adamw_8bit", "adamw_bnb_8bit", "paged_adamw_8bit", "lion_8bit", "paged_lion_8bit")
DEFAULT_OPTIMIZER = "adamw_torch"  # transformers' default, and LLaMA-Factory's
# Liger's fused linear cross-entropy computes the logits a chunk of tokens at a time and never
# keeps them: liger_kernel/ops/fused_linear_cross_entropy.py makes chunks of
# next_power_of_2(ceil(BT / ceil(V / H))) rows, so a chunk's logits are at most about 2 x BT x H
# elements in the compute dtype (2 bytes), and it keeps grad_input (BT x H, 2 bytes): 6 bytes
# a token and hidden unit at most, in place of 12 bytes a token and vocabulary entry.
LIGER_LOGITS_BYTES_PER_HIDDEN = 6
# Unsloth's cross-entropy kernel keeps the bf16 logits and writes their gradient in place
# (no fp32 log-softmax copy): 2 + 2 bytes an element.
UNSLOTH_LOGITS_BYTES_PER_ELEMENT = 4
# LLaMA-Factory's defaults (hparams/finetuning_args.py): freeze_trainable_layers=2 (the last
# two), galore_rank=16, apollo_rank=16.
DEFAULT_FREEZE_LAYERS = 2
DEFAULT_LOW_RANK = 16
# Logits: compute-dtype logits kept by the model output (2 in bf16), the fp32 log-softmax
# saved for backward (4), its fp32 gradient (4) and the cast-back gradient (2): 12 bytes an
# element at the start of backward. (In fp32 the cast is free but the logits cost 4: same.)
LOGITS_BYTES_PER_ELEMENT = 12
# During backward of the layer being recomputed, its activations and their gradients coexist.
RECOMPUTED_LAYER_FACTOR = 2
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
    optim: str = DEFAULT_OPTIMIZER
    liger: bool = False  # enable_liger_kernel
    unsloth: bool = False  # use_unsloth
    unsloth_gc: bool = False  # use_unsloth_gc: checkpointed layer inputs kept in CPU RAM
    freeze_layers: int = DEFAULT_FREEZE_LAYERS  # freeze_trainable_layers (< 0: the first ones)
    low_rank_optimizer: str | None = None  # "galore" | "apollo" | "badam" (use_galore, ...)
    low_rank: int = DEFAULT_LOW_RANK  # galore_rank / apollo_rank
    layerwise: bool = False  # galore_layerwise / apollo_layerwise: each parameter stepped as its gradient arrives
    # (fixed, growing) factors fitted to this model's simulated steps and their allocator reserve
    # (tui/plan/memory_calibration.py): weights, trainable, gradients and optimizer states scaled by
    # the first, activations and logits by the second; the overhead is then the context alone
    calibration: tuple[float, float] | None = None


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


def layer_params(arch: Architecture) -> float:
    """One decoder layer's parameters (the model less embeddings, lm_head and final norm, per layer)."""
    body = arch.param_count() - arch.embedding_params - arch.lm_head_params - arch.hidden_size
    return body / arch.num_hidden_layers


def freeze_trainable(shape: TrainingShape) -> int:
    """finetuning_type freeze: LLaMA-Factory trains `freeze_trainable_layers` whole layers, the
    last ones (or the first ones when negative); the rest stays frozen in the compute dtype."""
    layers = min(abs(shape.freeze_layers), shape.arch.num_hidden_layers)
    return round(layers * layer_params(shape.arch))


def weights_bytes(shape: TrainingShape) -> float:
    """The frozen weights as held: the language model's, plus a multimodal model's vision tower
    and projector, frozen in the compute dtype for every finetuning type (LLaMA-Factory's
    freeze_vision_tower default; under QLoRA bitsandbytes quantizes the tower's linear layers
    too, so this is on the safe side there)."""
    return _language_weights_bytes(shape) + shape.arch.vision_params * shape.compute_bytes


def _language_weights_bytes(shape: TrainingShape) -> float:
    arch = shape.arch
    linear = sum(layer.params for layer in arch.linear_layers())
    if shape.finetuning_type == "full" and shape.low_rank_optimizer != "badam":
        return 0.0  # counted as trainable
    if shape.finetuning_type == "freeze":
        return (arch.param_count() - freeze_trainable(shape)) * shape.compute_bytes
    if shape.quantization_bit is None:  # LoRA's base, or BAdam's whole model (pure bf16)
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
    if shape.finetuning_type == "freeze":
        return freeze_trainable(shape)
    return lora_params(shape.arch, shape.lora_rank, shape.lora_target)


def trainable_bytes(shape: TrainingShape, n_trainable: int) -> tuple[float, float, float]:
    """(weights, gradients, optimizer states) of the trainable parameters, in bytes."""
    w_bytes, g_bytes = TRAINABLE_PURE_BF16_BYTES if shape.pure_bf16 else TRAINABLE_FP32_BYTES
    state: float = OPTIMIZER_STATE_BYTES.get(shape.optim, OPTIMIZER_STATE_BYTES[DEFAULT_OPTIMIZER])
    if shape.pure_bf16 and shape.optim not in EIGHT_BIT_OPTIMIZERS:
        state /= 2  # 32-bit states follow the parameters' bf16
    if shape.optim == "adafactor":  # factored second moment: a row and a column per matrix
        matrices = shape.arch.linear_layers()
        factored = sum(layer.count * (layer.in_features + layer.out_features) for layer in matrices)
        matrix_params = sum(layer.count * layer.in_features * layer.out_features for layer in matrices)
        return n_trainable * w_bytes, n_trainable * g_bytes, 4 * (factored + max(0, n_trainable - matrix_params))
    if shape.low_rank_optimizer == "badam":
        # BAdam trains one layer at a time: gradients and states exist for that block only.
        block = layer_params(shape.arch)
        return n_trainable * w_bytes if shape.finetuning_type != "full" else 0.0, block * g_bytes, block * state
    if shape.low_rank_optimizer in ("galore", "apollo"):
        # GaLore / APOLLO keep the two moments of each linear weight projected to `rank` rows of
        # its larger side, plus the projection (rank x smaller side, fp32); the other
        # parameters (embeddings, norms) keep full states.
        matrices = shape.arch.linear_layers()
        projected = sum(layer.count * (shape.low_rank * max(layer.in_features, layer.out_features) * state
                                       + shape.low_rank * min(layer.in_features, layer.out_features) * 4)
                        for layer in matrices)
        rest = max(0, n_trainable - sum(layer.count * layer.in_features * layer.out_features for layer in matrices))
        # Layerwise, LLaMA-Factory steps each parameter from a post-accumulate-grad hook and frees
        # its gradient (train/trainer_utils.py _create_galore_optimizer): one gradient at a time.
        # The paper's GaLore rows (MEMORY_DATA L4, L5) are below weights plus all gradients.
        grads = max(shape.arch.embedding_params, *(m.in_features * m.out_features for m in matrices)) \
            if shape.layerwise else n_trainable
        return n_trainable * w_bytes, grads * g_bytes, projected + rest * state
    return n_trainable * w_bytes, n_trainable * g_bytes, n_trainable * state


def mlp_elements_per_token(arch: Architecture) -> float:
    """What a layer's MLP keeps for backward per token, averaged over the layers: gate, up, the
    activation and gate*up of its width (4 x intermediate). A mixture-of-experts layer runs a
    token through `experts_per_token` experts (and the shared ones), copies the token's hidden
    state to each, and keeps the router's logits over every expert (fp32: two elements each)."""
    if not arch.is_moe:
        return 4 * arch.intermediate_size
    k = arch.experts_per_token or 1
    shared = (arch.shared_expert_intermediate_size or 0) + arch.expert_intermediate_size * (arch.n_shared_experts or 0)
    moe = 4 * (k * arch.expert_intermediate_size + shared) + k * arch.hidden_size + 2 * (arch.num_experts or 0)
    sparse = arch.sparse_layers
    return ((arch.num_hidden_layers - sparse) * 4 * arch.intermediate_size + sparse * moe) / arch.num_hidden_layers


def activation_elements_per_token(shape: TrainingShape) -> tuple[float, float]:
    """(elements a layer keeps for backward per token, elements its input costs per token)."""
    arch = shape.arch
    h = arch.hidden_size
    q_out = arch.num_attention_heads * arch.head_size
    kv_out = arch.num_key_value_heads * arch.head_size
    layer = (
        2 * h  # attention RMSNorm input and output
        + q_out + 2 * kv_out  # q, k, v projections
        + q_out  # attention output (flash/sdpa also keep a small fp32 logsumexp)
        + 2 * h  # residual and MLP RMSNorm output
        + mlp_elements_per_token(arch) * (0.75 if shape.liger else 1)  # Liger's SwiGLU recomputes the activation
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
    trainable, gradients, optimizer = trainable_bytes(shape, n_trainable)
    if shape.optim not in OPTIMIZER_STATE_BYTES and shape.optim != "adafactor":
        notes.append(f"optimizer {shape.optim}: its states are counted as AdamW's (8 bytes a parameter)")
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
    # Backward runs through the layers after the first trainable one only: freezing all but the
    # last N layers keeps no activations for the others.
    grad_layers = arch.num_hidden_layers
    if shape.finetuning_type == "freeze" and shape.freeze_layers > 0:
        grad_layers = min(shape.freeze_layers, arch.num_hidden_layers)
    attention_scores = 0.0
    if shape.attention == "eager":
        # softmax(QK^T) for every head: saved probabilities plus the transient scores.
        attention_scores = 2 * shape.micro_batch * arch.num_attention_heads * shape.seq_len**2 * shape.compute_bytes
    host_activations = 0.0
    if shape.gradient_checkpointing:
        inputs = tokens * grad_layers * layer_input * shape.compute_bytes
        if shape.unsloth_gc:  # Unsloth's checkpointing keeps the layer inputs in CPU RAM
            host_activations, inputs = inputs, 0.0
            notes.append("use_unsloth_gc keeps the checkpointed layer inputs in CPU RAM")
        activations = inputs + tokens * RECOMPUTED_LAYER_FACTOR * layer * shape.compute_bytes
        activations += RECOMPUTED_LAYER_FACTOR * attention_scores
    else:
        activations = grad_layers * (tokens * layer * shape.compute_bytes + attention_scores)
    logits: float
    if shape.liger:
        logits = tokens * arch.hidden_size * LIGER_LOGITS_BYTES_PER_HIDDEN
        notes.append("Liger's fused linear cross-entropy never materialises the logits")
    elif shape.unsloth:
        logits = tokens * arch.vocab_size * UNSLOTH_LOGITS_BYTES_PER_ELEMENT
    else:
        logits = tokens * arch.vocab_size * LOGITS_BYTES_PER_ELEMENT

    # torch's AdamW (adamw_torch: foreach on CUDA) makes exp_avg_sq.sqrt() for every parameter at
    # once in the step (torch/optim/adam.py, _multi_tensor_adam), a temporary the size of one
    # state; the step comes after backward has freed the activations and logits, so it raises the
    # peak only where it outgrows them: full fine-tuning (MEMORY_DATA S9, SW3: from -20 % to -3 %).
    if shape.optim == "adamw_torch" and shape.low_rank_optimizer is None and not (shape.offload and shape.zero_stage >= 2):
        step_temporary = optimizer / 2
        if step_temporary > activations + logits:
            optimizer += step_temporary - (activations + logits)
            notes.append("the AdamW step's temporary square root of the states is the peak, not backward")
    if shape.calibration is not None:
        fixed, growing = shape.calibration
        weights, trainable, gradients, optimizer = (x * fixed for x in (weights, trainable, gradients, optimizer))
        activations, logits = activations * growing, logits * growing
        notes.append(f"calibrated on this model's simulated steps: the fixed terms x{fixed:.2f}, activations and "
                     f"logits x{growing:.2f} (the allocator's reserve included)")
    # what the card holds beyond the tensors: the context, and the caching allocator's reserve
    # (tui/plan/reserve.py: its mode, as run_sft.sh sets it, and the measured share), which the
    # calibrated terms already hold (they are fitted to the simulated peak plus its reserve)
    reserve = 0.0 if shape.calibration is not None else analytic_reserve_gib(shape.vendor, (activations + logits) / GIB)
    overhead = (context_gib(shape.vendor) + reserve) * GIB
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
        cpu_offload_gib=(offloaded + host_activations) / GIB,
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
