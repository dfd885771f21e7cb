"""Stand-ins for what cannot run on fake tensors, each with the memory of the real thing and
named as a stand-in in simulate_step.py's answer. Loaded by simulate_step.py from its own folder
(training environment only; never imported by sft-tui).

- bitsandbytes 4-bit (QLoRA) and 8-bit (LLM.int8) weights: the nn.Linear modules transformers'
  `replace_with_bnb_linear` would replace (exactly `nn.Linear`, not the output embedding, tied
  or last modules: transformers' own `get_keys_to_not_convert`; fused expert parameters are no
  nn.Linear and stay 16-bit, as with the real bitsandbytes) become a module holding the packed
  storage (NF4: two weights a byte; absmax one fp32 per 64 weights, or with double quantization
  one byte per 64 plus one fp32 per 256 blocks; int8: one byte a weight plus an fp32 scale a row).
  Forward and backward each make the dequantized (out x in) weight in the compute dtype as a
  temporary, as bitsandbytes' MatMul4Bit does; nothing of it is saved for backward. LLM.int8's
  forward also quantizes its input to int8 (one byte an element).
- bitsandbytes' 8-bit and paged optimizers: states of the same size (8-bit blockwise states of
  one byte an element plus an fp32 absmax per 256, or 32-bit for tensors under 4096 elements,
  bitsandbytes' min_8bit_size), updated in place as its fused kernels do (no temporaries). Paged
  states are counted as held on the GPU.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

NF4_BLOCK = 64
NESTED_BLOCK = 256
OPTIMIZER_BLOCK = 256
MIN_8BIT_SIZE = 4096
# optim name -> (states per parameter, bits)
BNB_OPTIMIZERS = {
    "adamw_8bit": (2, 8), "adamw_bnb_8bit": (2, 8), "paged_adamw_8bit": (2, 8), "paged_adamw_32bit": (2, 32),
    "lion_8bit": (1, 8), "paged_lion_8bit": (1, 8), "lion_32bit": (1, 32), "paged_lion_32bit": (1, 32),
}


class _DequantizedMatmul(torch.autograd.Function):
    """y = x W^T + b with W dequantized into a temporary, in forward and again in backward."""

    @staticmethod
    def forward(ctx, x, packed, bias, out_features, in_features, dtype, quantize_input):
        if quantize_input:  # LLM.int8: the input quantized to int8 (and its row scales)
            _ = torch.empty(x.shape, dtype=torch.int8, device=x.device)
        weight = torch.empty(out_features, in_features, dtype=dtype, device=x.device)
        ctx.weight_shape = (out_features, in_features, dtype)
        return F.linear(x.to(dtype), weight, None if bias is None else bias.to(dtype))

    @staticmethod
    def backward(ctx, grad_output):
        out_features, in_features, dtype = ctx.weight_shape
        weight = torch.empty(out_features, in_features, dtype=dtype, device=grad_output.device)
        grad_input = grad_output.to(dtype) @ weight if ctx.needs_input_grad[0] else None
        return grad_input, None, None, None, None, None, None


class QuantizedLinearStandIn(nn.Linear):
    """A bitsandbytes Linear4bit / Linear8bitLt stand-in. A subclass of nn.Linear, so PEFT puts
    its lora.Linear around it, as it puts lora.bnb.Linear4bit around the real one."""

    def __init__(self, linear: nn.Linear, bits: int, compute_dtype, double_quant: bool) -> None:
        nn.Module.__init__(self)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.bits, self.compute_dtype = bits, compute_dtype
        n = self.in_features * self.out_features
        device = linear.weight.device
        if bits == 4:
            self.weight = nn.Parameter(torch.empty((n + 1) // 2, 1, dtype=torch.uint8, device=device),
                                       requires_grad=False)
            blocks = math.ceil(n / NF4_BLOCK)
            if double_quant:
                self.register_buffer("absmax", torch.empty(blocks, dtype=torch.uint8, device=device))
                self.register_buffer("nested_absmax", torch.empty(math.ceil(blocks / NESTED_BLOCK),
                                                                  dtype=torch.float32, device=device))
            else:
                self.register_buffer("absmax", torch.empty(blocks, dtype=torch.float32, device=device))
        else:
            self.weight = nn.Parameter(torch.empty(self.out_features, self.in_features, dtype=torch.int8,
                                                   device=device), requires_grad=False)
            self.register_buffer("scale", torch.empty(self.out_features, dtype=torch.float32, device=device))
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.data, requires_grad=False)

    def forward(self, x):
        dtype = self.compute_dtype or x.dtype
        out = _DequantizedMatmul.apply(x, self.weight, self.bias, self.out_features, self.in_features, dtype,
                                       self.bits == 8)
        return out.to(x.dtype)


def quantize_standin(model: nn.Module, bits: int, compute_dtype, double_quant: bool) -> int:
    """Replace the modules transformers would quantize; the number replaced."""
    from transformers.quantizers.base import get_keys_to_not_convert
    from transformers.quantizers.quantizers_utils import should_convert_module

    keep = list(set(get_keys_to_not_convert(model)) | set(getattr(model, "_keep_in_fp32_modules", None) or []))
    replaced = 0
    for name, module in list(model.named_modules()):
        if type(module) is not nn.Linear or not should_convert_module(name, keep):
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, QuantizedLinearStandIn(module, bits, compute_dtype, double_quant))
        replaced += 1
    model.quantization_method = "bitsandbytes"  # what transformers sets; LLaMA-Factory reads it
    setattr(model, "is_loaded_in_4bit" if bits == 4 else "is_loaded_in_8bit", True)
    return replaced


class BnbOptimizerStandIn(torch.optim.Optimizer):
    """bitsandbytes' 8-/32-bit (paged) AdamW or Lion: the states' memory, an in-place update."""

    def __init__(self, params, lr: float = 5e-5, states: int = 2, bits: int = 8, **_ignored) -> None:
        super().__init__(params, {"lr": lr})
        self.n_states, self.bits = states, bits

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    eight = self.bits == 8 and p.numel() >= MIN_8BIT_SIZE
                    for i in range(1, self.n_states + 1):
                        state[f"state{i}"] = torch.zeros_like(p, dtype=torch.uint8 if eight else torch.float32)
                        if eight:
                            state[f"absmax{i}"] = torch.zeros(math.ceil(p.numel() / OPTIMIZER_BLOCK),
                                                              dtype=torch.float32, device=p.device)
                p.add_(p.grad, alpha=-group["lr"])
