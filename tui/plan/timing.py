"""How long a training run takes, before it is launched. Pure arithmetic: no I/O.

FLOPs per trained token, from the architecture (a multiply-add is 2 FLOPs):

Forward, per token
- every matmul weight the token passes through costs 2 FLOPs: the decoder's linear layers
  (q/k/v/o, the MLP, and only the routed experts a token uses in a MoE model: the active
  parameters), the routers, and the lm_head (a matmul even when tied to the embeddings; the
  embedding lookup itself costs nothing): 2 * N_matmul;
- attention's length term: per layer, QK^T costs 2 * ctx * heads * qk_dim and the weighted sum
  AV 2 * ctx * heads * v_dim, where ctx is the number of keys a query sees. Without a mask
  ctx = seq (the 4 * L * seq * d_attn of PaLM's 6N + 12 L H Q T, whose 12 = 3 passes x 4); with
  the causal mask, sdpa and flash-attention skip the masked half, so the mean ctx is seq / 2
  and the term is 2 * L * seq * d_attn. Eager attention computes the whole square: seq;
- LoRA adds 2 * rank * (in + out) per adapted linear layer (x A, then B).

Backward
- full fine-tuning: each matmul needs the gradient of its input and of its weight, each as
  costly as the forward matmul: 2x forward, so forward + backward = 6 N (the classic 6N);
- LoRA / QLoRA: the frozen weights need no weight gradient, only the input gradient to pass
  the error down: 1x forward for the frozen matmuls (4 N in all), while the adapters get both
  (2x their forward) and attention's QK^T and AV, which have no weights, still compute the
  gradients of both operands (2x);
- gradient checkpointing (LLaMA-Factory's default) runs every decoder layer's forward once more
  during backward (recomputation): + one forward of the layers (not of the lm_head), about 1/3
  more for full fine-tuning (8N instead of 6N) and 1/2 more for LoRA (6N instead of 4N).

Time = FLOPs / (dense peak FLOP/s for the precision x GPUs x efficiency) + a fixed cost per
micro-step (and QLoRA's dequantization, also per micro-step). The efficiency counts
the recomputed FLOPs as work done, so it is a hardware-FLOPs utilization; it is still called
MFU here, as users know the word. DEFAULT_MFU is calibrated on published measurements of plain
HF + PEFT training: bench/throughput_published.py prints the estimate against each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tui.common.text import plural
from tui.models.architecture import Architecture
from tui.plan.memory import targeted_layers

# Fitted on the published measurements in bench/throughput_published.py (Qwen README, one
# A100-80G, LoRA / Q-LoRA / full, 256-8192 tokens; LlamaFactory paper, A100-40G): the time of a
# micro-step is FLOPs / (peak x MFU) + a fixed cost + (4-bit) the dequantization; a least-squares
# fit of the log error over the 50 one-GPU rows gives MFU 0.58, 0.12 s and 0.03 s per billion
# parameters (median error 9 %).
DEFAULT_MFU = 0.58
# A fixed cost per micro-step (forward + backward of one micro-batch): kernel launches, the
# Python of the model and the trainer, the data collator. It dominates short rows: Qwen-1.8B LoRA
# takes 1.0 s for 8 micro-steps of 256 tokens and of 512 tokens alike. CPU-bound: not scaled by
# the GPU's speed.
MICRO_STEP_OVERHEAD_S = 0.12
# 4-bit QLoRA dequantizes every frozen weight before each matmul that uses it (forward,
# recomputation, input gradients): a cost per micro-step proportional to the parameters, not to
# the tokens. Qwen README (GPTQ int4 Q-LoRA minus 16-bit LoRA, 8 micro-steps): 7B 0.23 s,
# 14B 0.46 s, 1.8B 0.05 s a micro-step at 256 tokens, i.e. about 0.03 s per billion parameters on
# an A100; dequantization is memory-bound, scaled here by the A100's peak over the device's.
QLORA_DEQUANT_S_PER_BILLION = 0.03
QLORA_REFERENCE_TFLOPS = 312.0  # the A100's bf16 peak, where the figure above was measured
# Multi-GPU data parallel (DDP, ZeRO) spends time in gradient all-reduce and, with ZeRO-3,
# parameter gathers: the efficiency per GPU is multiplied by this for more than one GPU.
# Qwen README: 7B LoRA on 2 nodes x 2 A100 ran at about 0.57 of one GPU's rate per GPU (8192
# tokens: 4 x the tokens in 37.4 s against 21.3 s); within one node it is better, so 0.85 in a
# node and 0.6 across nodes are assumptions, stated with the estimate.
MULTI_GPU_EFFICIENCY = 0.85
MULTI_NODE_EFFICIENCY = 0.6


@dataclass(frozen=True)
class StepShape:
    """What the FLOPs of a run depend on."""

    arch: Architecture
    finetuning_type: str = "lora"  # lora | full
    lora_rank: int = 8
    lora_target: str = "all"
    quantization_bit: int | None = None
    gradient_checkpointing: bool = True
    attention: str = "sdpa"  # sdpa | fa2 | eager
    seq_len: int = 1024  # tokens a row has on average (padded batches: see tokens_per_row)


def matmul_params(arch: Architecture) -> tuple[int, int]:
    """(decoder matmul parameters one token passes through, lm_head parameters)."""
    linear = sum(layer.params for layer in arch.linear_layers())
    decoder = linear + arch.active_expert_params + arch.router_params
    return decoder, arch.vocab_size * arch.hidden_size


def attention_dims(arch: Architecture) -> tuple[int, int]:
    """(heads x query/key head size, heads x value head size)."""
    heads = arch.num_attention_heads
    if arch.qk_nope_head_dim or arch.qk_rope_head_dim:  # DeepSeek's multi-head latent attention
        qk = (arch.qk_nope_head_dim or 0) + (arch.qk_rope_head_dim or 0)
        return heads * qk, heads * (arch.v_head_dim or qk)
    return heads * arch.head_size, heads * arch.head_size


@dataclass
class Flops:
    """FLOPs per token, by pass."""

    forward: float
    backward: float
    recompute: float
    frozen_matmul: float  # the part of all three passes spent in frozen weights' matmuls (QLoRA's dequantization)

    @property
    def total(self) -> float:
        return self.forward + self.backward + self.recompute


def flops_per_token(shape: StepShape) -> Flops:
    arch = shape.arch
    decoder, lm_head = matmul_params(arch)
    qk, v = attention_dims(arch)
    context = shape.seq_len if shape.attention == "eager" else shape.seq_len / 2
    attention = arch.num_hidden_layers * 2 * context * (qk + v)
    linear_fwd = 2 * decoder
    head_fwd = 2 * lm_head
    full = shape.finetuning_type == "full"
    adapters = 0.0
    if not full:
        adapters = sum(2 * layer.count * shape.lora_rank * (layer.in_features + layer.out_features)
                       for layer in targeted_layers(arch, shape.lora_target))
    layers_fwd = linear_fwd + attention + adapters
    forward = layers_fwd + head_fwd
    if full:
        backward = 2 * forward
        frozen = 0.0
    else:
        backward = linear_fwd + head_fwd + 2 * attention + 2 * adapters
        frozen = linear_fwd + head_fwd + linear_fwd + head_fwd  # forward + input gradients
    recompute = layers_fwd if shape.gradient_checkpointing else 0.0
    if not full and shape.gradient_checkpointing:
        frozen += linear_fwd
    return Flops(forward, backward, recompute, frozen)


def step_fixed_seconds(shape: StepShape, peak_tflops: float) -> float:
    """The per-micro-step time that does not scale with tokens: the fixed overhead and, for
    4-bit QLoRA, the dequantization of the frozen weights."""
    fixed = MICRO_STEP_OVERHEAD_S
    if shape.quantization_bit == 4:
        fixed += QLORA_DEQUANT_S_PER_BILLION * shape.arch.param_count() / 1e9 * QLORA_REFERENCE_TFLOPS / peak_tflops
    return fixed


@dataclass
class TimeEstimate:
    seconds: float | None
    tokens: int | None
    tokens_per_second: float | None
    assumptions: list[str] = field(default_factory=list)
    cost: float | None = None  # with a price per GPU-hour
    price_per_gpu_hour: float | None = None
    gpu_hours: float | None = None
    mfu: float | None = None
    where: str = ""
    flops_per_token: float | None = None  # what the run history's calibration scales by (tui.history.calibration)
    calibration: dict | None = None  # set when the user's own runs corrected this estimate (tui.plan.calibrated)
    seconds_per_1000_rows: float | None = None  # without a dataset (no step count): the time per 1,000 rows

    def to_json(self) -> dict:
        data: dict[str, Any] = {
            "seconds": None if self.seconds is None else round(self.seconds),
            "tokens": self.tokens,
            "tokens_per_second": None if self.tokens_per_second is None else round(self.tokens_per_second, 1),
            "assumptions": self.assumptions,
            "mfu": self.mfu,
            "gpu_hours": None if self.gpu_hours is None else round(self.gpu_hours, 2),
        }
        if self.flops_per_token is not None and (self.calibration is not None or self.seconds is None):
            data["flops_per_token"] = round(self.flops_per_token)  # the run history calibrates a speedless device by it
        if self.calibration is not None:
            data["calibration"] = self.calibration
        if self.seconds_per_1000_rows is not None:
            data["seconds_per_1000_rows"] = round(self.seconds_per_1000_rows, 1)
        if self.price_per_gpu_hour is not None:
            data["price_per_gpu_hour"] = self.price_per_gpu_hour
            data["cost"] = None if self.cost is None else round(self.cost, 2)
        return data


def padded_row_tokens(histogram: dict[int, int], cutoff: int, micro_batch: int) -> float:
    """Tokens computed per row when each batch of `micro_batch` shuffled rows is padded to its
    longest row (truncated at cutoff_len): the expected maximum of micro_batch draws from the
    length histogram, E[max] = sum over lengths l of l * (F(l)^B - F(l-1)^B)."""
    counts: dict[int, int] = {}
    for length, n in histogram.items():
        counts[min(length, cutoff)] = counts.get(min(length, cutoff), 0) + n
    total = sum(counts.values())
    expected, below = 0.0, 0
    for length in sorted(counts):
        at_or_below = below + counts[length]
        expected += length * ((at_or_below / total) ** micro_batch - (below / total) ** micro_batch)
        below = at_or_below
    return expected


def tokens_per_row(cutoff: int, histogram: dict[int, int] | None, micro_batch: int) -> tuple[float, str]:
    """Tokens computed per row: cutoff_len when the lengths are unknown (or rows are packed);
    else from the dataset's length histogram, rows truncated at cutoff_len and each batch padded
    to its longest row (the padding is computed too)."""
    if not histogram or not sum(histogram.values()):
        return float(cutoff), f"every row {cutoff} tokens long (cutoff_len; no dataset statistics, or packed rows)"
    rows = sum(histogram.values())
    mean = sum(min(length, cutoff) * n for length, n in histogram.items()) / rows
    padded = padded_row_tokens(histogram, cutoff, micro_batch)
    if micro_batch > 1:
        return padded, (f"rows of {mean:.0f} tokens on average (the dataset's, truncated at cutoff_len {cutoff}), "
                        f"padded to the longest of each batch of {micro_batch}: about {padded:.0f} tokens a row")
    return padded, f"rows of {mean:.0f} tokens on average (the dataset's, truncated at cutoff_len {cutoff})"


def seconds_for(tokens: float, flops_per_tok: float, peak_tflops: float, gpus: int, mfu: float) -> float:
    return tokens * flops_per_tok / (peak_tflops * 1e12 * gpus * mfu)


def estimate_time(shape: StepShape, *, steps: int | None, micro_batch: int, accumulation: int, gpus: int,
                  nodes: int, cutoff: int, row_tokens: dict[int, int] | None, peak_tflops: float | None,
                  precision: str, where: str, mfu: float = DEFAULT_MFU,
                  price_per_gpu_hour: float | None = None) -> TimeEstimate:
    """The wall time of the training steps (not model loading, evaluation or saving)."""
    total_gpus = gpus * nodes
    row, row_why = tokens_per_row(cutoff, row_tokens, micro_batch)
    per_step = row * micro_batch * accumulation * total_gpus
    assumptions = [row_why,
                   f"{micro_batch} x {accumulation} (accumulation) x {total_gpus} GPU(s) = "
                   f"{plural(micro_batch * accumulation * total_gpus, 'row')}, about {per_step:,.0f} tokens a step"]
    if peak_tflops is None:
        return TimeEstimate(None, None if steps is None else round(per_step * steps), None,
                            assumptions + [f"unknown speed: no peak {precision} TFLOPS known for {where}, so no time"],
                            price_per_gpu_hour=price_per_gpu_hour, where=where,
                            flops_per_token=flops_per_token(replace_seq(shape, round(row))).total)
    efficiency = mfu
    if nodes > 1:
        efficiency *= MULTI_NODE_EFFICIENCY
        assumptions.append(f"{nodes} nodes: x{MULTI_NODE_EFFICIENCY} for communication between nodes (assumed)")
    elif gpus > 1:
        efficiency *= MULTI_GPU_EFFICIENCY
        assumptions.append(f"{gpus} GPUs: x{MULTI_GPU_EFFICIENCY} for gradient synchronization (assumed)")
    flops = flops_per_token(replace_seq(shape, round(row))).total
    if steps is None:  # no total, but the speed: a step's time at the plan's length
        step_s = (seconds_for(per_step, flops, peak_tflops, total_gpus, efficiency)
                  + accumulation * step_fixed_seconds(shape, peak_tflops))
        per_1000 = 1000 / (micro_batch * accumulation * total_gpus) * step_s
        return TimeEstimate(None, None, per_step / step_s, assumptions + [
            "the number of steps is unknown (no dataset): no time"],
            price_per_gpu_hour=price_per_gpu_hour, mfu=mfu, where=where, flops_per_token=flops,
            seconds_per_1000_rows=per_1000)
    tokens = per_step * steps
    micro_steps = steps * accumulation  # each GPU's, run in parallel
    seconds = (seconds_for(tokens, flops, peak_tflops, total_gpus, efficiency)
               + micro_steps * step_fixed_seconds(shape, peak_tflops))
    passes = "forward + backward" + (" + recomputation (gradient checkpointing)" if shape.gradient_checkpointing else "")
    kind = "full fine-tuning (weight gradients of every layer)" if shape.finetuning_type == "full" else \
        "LoRA (no weight gradients of the frozen layers)"
    assumptions += [
        f"{flops / 1e9:.1f} GFLOPs a token: {passes}, {kind}, attention's length term included",
        f"{peak_tflops:g} TFLOPS dense {precision} peak per GPU at {mfu:.0%} efficiency (MFU, calibrated on published HF + PEFT runs)",
        f"{MICRO_STEP_OVERHEAD_S} s fixed cost per micro-step ({micro_steps:,} micro-steps)",
        "the training steps only: model loading, evaluation and checkpoint saving come on top",
    ]
    if shape.quantization_bit == 4:
        assumptions.append(f"4-bit QLoRA: dequantizing the frozen weights, {QLORA_DEQUANT_S_PER_BILLION} s per billion "
                           f"parameters a micro-step on an A100 ({QLORA_REFERENCE_TFLOPS:g} TFLOPS), scaled by this GPU's peak")
    gpu_hours = seconds * total_gpus / 3600
    cost = None if price_per_gpu_hour is None else gpu_hours * price_per_gpu_hour
    return TimeEstimate(seconds, round(tokens), tokens / seconds, assumptions, cost, price_per_gpu_hour,
                        gpu_hours, mfu, where, flops)


def replace_seq(shape: StepShape, seq_len: int) -> StepShape:
    from dataclasses import replace

    return replace(shape, seq_len=max(1, seq_len))


def human_duration(seconds: float) -> str:
    """'about 3 h 10 min' style: minutes below a day, hours and days above."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return f"{max(1, round(seconds))} s"
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def summary_line(t: TimeEstimate) -> str:
    """'Time: about 3 h 10 min on 1 x RTX 4080 (MFU 35 %, 12,345,678 tokens)', or why not."""
    if t.seconds is None:
        why = next((a for a in reversed(t.assumptions) if "no time" in a), "unknown")
        if t.tokens_per_second and t.seconds_per_1000_rows:  # no dataset: the speed still is known
            row = t.tokens_per_second * t.seconds_per_1000_rows / 1000
            why += (f"; about {t.tokens_per_second:,.0f} tokens/s, {human_duration(t.seconds_per_1000_rows)} per 1,000 "
                    f"rows of {row:.0f} tokens" + (f", {t.calibration['text']}" if t.calibration else ""))
        return f"Time: not estimated ({why})"
    if t.calibration is not None:
        line = f"Time: about {human_duration(t.seconds)} on {t.where} ({t.calibration['text']}; {t.tokens:,} tokens)"
    else:
        assert t.mfu is not None  # an uncalibrated time is made from an MFU
        line = f"Time: about {human_duration(t.seconds)} on {t.where} (MFU {t.mfu * 100:.0f} %, {t.tokens:,} tokens)"
    if t.cost is not None:
        line += f"; cost about {t.cost:,.2f} at {t.price_per_gpu_hour:g} per GPU-hour ({t.gpu_hours:.1f} GPU-hours)"
    return line


def precision_of(settings: dict) -> str:
    return "bf16" if settings.get("bf16") else "fp16" if settings.get("fp16") else "fp32"


def time_for_plan(plan, request, shape, peaks: dict[str, float]) -> TimeEstimate:
    """The time estimate of a finished Plan (tui.plan.values), its memory TrainingShape and the
    device's dense peaks per precision ({} when unknown). Packed rows are cutoff_len long."""
    s = plan.settings
    packed = any(s.get(k) or request.overrides.get(k) for k in ("packing", "neat_packing"))
    device = request.devices[0]
    precision = precision_of(s)
    where = f"{plan.n_gpus} x {device.name}" if device.is_gpu else device.name
    if plan.nodes > 1:
        where += f" x {plan.nodes} nodes"
    step = StepShape(
        arch=shape.arch, finetuning_type=shape.finetuning_type, lora_rank=shape.lora_rank,
        lora_target=shape.lora_target, quantization_bit=shape.quantization_bit,
        gradient_checkpointing=shape.gradient_checkpointing, attention=shape.attention,
    )
    cutoff = int(s.get("cutoff_len") or shape.seq_len)
    return estimate_time(
        step, steps=plan.steps, micro_batch=shape.micro_batch,
        accumulation=int(s.get("gradient_accumulation_steps") or 1), gpus=plan.n_gpus, nodes=plan.nodes,
        cutoff=cutoff, row_tokens=None if packed or not request.data else request.data.row_tokens,
        peak_tflops=peaks.get(precision), precision=precision, where=where,
        price_per_gpu_hour=getattr(request, "price_per_gpu_hour", None),
    )
