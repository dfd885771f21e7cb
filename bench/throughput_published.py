"""The time estimate (tui/plan/timing.py) against published training-speed measurements of plain
HF + PEFT training. Prints, per row, the estimate, the published figure and the error; then the
calibration: `--fit` reruns the grid search that gave DEFAULT_MFU, MICRO_STEP_OVERHEAD_S and
QLORA_DEQUANT_S_PER_BILLION (the one-GPU rows; the multi-GPU rows check the assumed efficiencies).

    .venv/bin/python bench/throughput_published.py [--fit]

Sources (only figures found and read; none invented):
- QwenLM/Qwen README.md, "Profiling of Memory and Speed": one A100-SXM4-80G, CUDA 11.8, PyTorch
  2.0, flash-attention 2, batch size 1, gradient accumulation 8 (one "it" = 8 rows), every row
  padded to the length (finetune.py pads to model_max_length), gradient checkpointing on
  (finetune/finetune_lora_single_gpu.sh), LoRA r=64 on c_attn, c_proj, w1, w2 (every linear layer
  but lm_head), bf16; Q-LoRA on the GPTQ int4 model in fp16; full fine-tuning of 1.8B with
  DeepSpeed ZeRO-2 on one GPU. Qwen-1 (remote code) is Llama-like: qkv bias, SwiGLU, untied.
  The table gives s/it for 256 ... 8192 tokens.
- LlamaFactory paper (Zheng et al., arXiv 2403.13372), Table 4: one A100 40GB, bf16, activation
  checkpointing, flash attention, 8-bit AdamW, "token batch size of 512": throughput in tokens/s;
  the full-tuning rows (plain HF; the LoRA/QLoRA rows use Unsloth and are left out).
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui.models.architecture import Architecture  # noqa: E402
from tui.plan.timing import (  # noqa: E402
    DEFAULT_MFU, MULTI_GPU_EFFICIENCY, MULTI_NODE_EFFICIENCY, StepShape, flops_per_token, step_fixed_seconds,
)

A100 = 312.0  # NVIDIA A100 datasheet: BF16/FP16 Tensor Core 312 TFLOPS dense

# Qwen-1 configs (QwenLM's config.json: hidden_size, num_hidden_layers, num_attention_heads,
# intermediate_size, which Qwen-1 halves for w1/w2, vocab_size); "qwen2" gives the qkv bias.
QWEN = {
    "1.8B": Architecture("qwen2", 2048, 24, 16, 16, 11008 // 2, 151936, False),
    "7B": Architecture("qwen2", 4096, 32, 32, 32, 22016 // 2, 151936, False),
    "14B": Architecture("qwen2", 5120, 40, 40, 40, 27392 // 2, 152064, False),
    "72B": Architecture("qwen2", 8192, 80, 64, 64, 49152 // 2, 152064, False),
}
LLAMA2_7B = Architecture("llama", 4096, 32, 32, 32, 11008, 32000, False)
GEMMA_2B = Architecture("gemma", 2048, 18, 8, 1, 16384, 256000, True, head_dim=256)
LENGTHS = (256, 512, 1024, 2048, 4096, 8192)
# s/it per length, from the README's table ("-": not measured).
QWEN_TABLE = {
    ("1.8B", "LoRA", 1, 1): (1.0, 1.0, 1.1, 1.7, 3.3, 6.8),
    ("1.8B", "Q-LoRA", 1, 1): (1.4, 1.4, 1.4, 2.0, 3.4, 6.5),
    ("1.8B", "Full", 1, 1): (2.1, 2.2, 2.2, 2.3, 2.8, 5.6),
    ("7B", "LoRA", 1, 1): (1.2, 1.5, 2.8, 5.2, 10.1, 21.3),
    ("7B", "Q-LoRA", 1, 1): (3.0, 3.0, 3.5, 7.0, 11.6, 22.3),
    ("7B", "LoRA", 2, 2): (2.09, 3.16, 5.17, 9.25, 18.1, 37.4),  # 2 nodes x 2 GPUs
    ("14B", "LoRA", 1, 1): (1.6, 2.4, 4.4, 8.4, 17.0, 36.0),
    ("14B", "Q-LoRA", 1, 1): (5.3, 6.3, 8.2, 11.8, 20.1, 38.3),
    ("72B", "LoRA", 1, 4): (17.6, 20.5, 29.4, 45.7, 83.4, 161.5),  # ZeRO-3 on 4 GPUs
    ("72B", "Q-LoRA", 1, 1): (27.4, 31.5, 41.4, 59.5, 97.7, 179.8),
}


@dataclass
class Row:
    name: str
    shape: StepShape
    tokens_per_step: int  # all GPUs'
    micro_steps: int  # per optimizer step, each GPU's
    gpus: int
    nodes: int
    published_s: float  # seconds per optimizer step
    source: str
    calibrate: bool

    def efficiency(self) -> float:
        return MULTI_NODE_EFFICIENCY if self.nodes > 1 else MULTI_GPU_EFFICIENCY if self.gpus > 1 else 1.0

    def estimate_s(self, mfu: float = DEFAULT_MFU) -> float:
        """As tui.plan.timing.estimate_time computes one optimizer step."""
        flops = flops_per_token(self.shape).total * self.tokens_per_step
        compute = flops / (A100 * 1e12 * self.gpus * self.nodes * mfu * self.efficiency())
        return compute + self.micro_steps * step_fixed_seconds(self.shape, A100)


def rows() -> list[Row]:
    out = []
    for (size, method, nodes, gpus), times in QWEN_TABLE.items():
        for length, seconds in zip(LENGTHS, times):
            shape = StepShape(QWEN[size], "full" if method == "Full" else "lora", lora_rank=64,
                              quantization_bit=4 if method == "Q-LoRA" else None, seq_len=length, attention="fa2")
            where = f"{nodes}x{gpus} A100-80G" if nodes > 1 or gpus > 1 else "1 A100-80G"
            out.append(Row(f"Qwen-{size} {method} {length} ({where})", shape, 8 * length * gpus * nodes, 8, gpus, nodes,
                           seconds, "QwenLM/Qwen README, Profiling of Memory and Speed",
                           nodes == 1 and gpus == 1))
    for name, arch, tps in (("Llama-2-7B", LLAMA2_7B, 1334.72), ("Gemma-2B", GEMMA_2B, 3090.42)):
        shape = StepShape(arch, "full", seq_len=512, attention="fa2")
        out.append(Row(f"{name} Full 512 (1 A100-40G)", shape, 512, 1, 1, 1, 512 / tps,
                       "LlamaFactory paper, Table 4 (tokens/s)", True))
    return out


def fit(table: list[Row]) -> tuple[float, float, float]:
    """(MFU, overhead s, dequantization s per billion) minimizing the squared log error over the
    calibration rows: the grid search that gave tui.plan.timing's constants."""
    import math

    import tui.plan.timing as timing

    saved = timing.MICRO_STEP_OVERHEAD_S, timing.QLORA_DEQUANT_S_PER_BILLION
    best = None
    try:
        for overhead in [x / 100 for x in range(0, 21)]:
            for dequant in [x / 1000 for x in range(0, 61, 5)]:
                timing.MICRO_STEP_OVERHEAD_S, timing.QLORA_DEQUANT_S_PER_BILLION = overhead, dequant
                for mfu in [x / 100 for x in range(30, 71)]:
                    err = sum(math.log(r.estimate_s(mfu) / r.published_s) ** 2 for r in table if r.calibrate)
                    if best is None or err < best[0]:
                        best = (err, mfu, overhead, dequant)
    finally:
        timing.MICRO_STEP_OVERHEAD_S, timing.QLORA_DEQUANT_S_PER_BILLION = saved
    return best[1], best[2], best[3]


def main() -> None:
    table = rows()
    print(f"{'row':<40} {'est s/step':>10} {'pub s/step':>10} {'est tok/s':>10} {'pub tok/s':>10} {'error':>7}  used")
    for r in table:
        est = r.estimate_s()
        print(f"{r.name:<40} {est:>10.2f} {r.published_s:>10.2f} {r.tokens_per_step / est:>10.0f} "
              f"{r.tokens_per_step / r.published_s:>10.0f} {est / r.published_s - 1:>+7.0%}  {'yes' if r.calibrate else 'no'}")
    used = [r for r in table if r.calibrate]
    errors = sorted(abs(r.estimate_s() / r.published_s - 1) for r in used)
    print(f"\ncalibration rows: {len(used)}; time error at DEFAULT_MFU {DEFAULT_MFU:.0%}: median "
          f"{statistics.median(errors):.0%}, 90th percentile {errors[int(0.9 * len(errors))]:.0%}, worst {errors[-1]:.0%}")
    others = [abs(r.estimate_s() / r.published_s - 1) for r in table if not r.calibrate]
    print(f"multi-GPU rows (not calibrated; assumed efficiencies): median error {statistics.median(others):.0%}")
    if "--fit" in sys.argv:
        mfu, overhead, dequant = fit(table)
        print(f"fit: MFU {mfu:.2f}, fixed {overhead:.2f} s a micro-step, dequantization {dequant:.3f} s per billion parameters")


if __name__ == "__main__":
    main()
