"""What a card holds beyond the tensors a step allocates: the CUDA/ROCm context, and what the
caching allocator reserves and does not give back (torch.cuda.max_memory_reserved minus
max_memory_allocated). nvidia-smi shows both; "fits" is judged on them.

The allocator's mode is decided here, with its reason, and run_sft.sh sets it
(tui/bundle/spec.py: environment_vars): on NVIDIA, `PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True`
unless the caller's environment sets the variable. LLaMA-Factory 0.9.5 already sets exactly that
for every torchrun launch (llamafactory/launcher.py, OPTIM_TORCH), so with it a one-GPU run and a
multi-GPU run share one allocator and one reserve model. Its reason: LLaMA-Factory pads each batch
to its own longest row, so every step asks for blocks of other sizes, and the default allocator's
fixed segments fragment under that (the classic "fits for an hour, then OOM"); expandable segments
grow one mapping instead. AMD is left at ROCm's default (expandable segments are not on every
ROCm build torch supports); Apple and CPU have no CUDA allocator.

The reserve comes from the simulated step replayed through a model of the allocator
(tui/lf/simulate_allocator.py) where the plan is simulated; else from the analytic terms, as a
share of the short-lived bytes at the peak (activations, backward temporaries, logits), measured
by bench/allocator_reserve.py over its rows (results in bench/results/).
"""

from __future__ import annotations

GIB = 1024**3

# The mode run_sft.sh gives the allocator, by vendor (None: no caching allocator to model).
ALLOCATOR_MODE = {"nvidia": "expandable_segments", "amd": "default", "apple": None, "cpu": None}
ALLOC_CONF = {"nvidia": ("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")}
# The context a process holds outside the allocator (CUDA/ROCm runtime, kernels, cuBLAS handles):
# nvidia-smi minus max_memory_reserved, "about 0.3-0.8 GB" in the published runs collected in
# MEMORY_DATA.md (its legend; lazy module loading, CUDA >= 11.7, keeps it at the low end). 0.5 GiB
# is the middle of that range; ROCm's is of the same order.
CONTEXT_GIB = {"nvidia": 0.5, "amd": 0.5, "apple": 0.0, "cpu": 0.0}
# The analytic reserve, as a share of the short-lived bytes at the peak, per mode: the median of
# bench/allocator_reserve.py's rows (bench/results/allocator-reserve-2026-12-02-cpu.txt).
RESERVE_OF_SHORT_LIVED = {"expandable_segments": 0.20, "default": 0.26}


def allocator_mode(vendor: str) -> str | None:
    return ALLOCATOR_MODE.get(vendor, "default")


def context_gib(vendor: str) -> float:
    return CONTEXT_GIB.get(vendor, 0.5)


def analytic_reserve_gib(vendor: str, short_lived_gib: float) -> float:
    """The allocator's reserve from the analytic terms: a measured share of the short-lived bytes."""
    mode = allocator_mode(vendor)
    return RESERVE_OF_SHORT_LIVED[mode] * short_lived_gib if mode else 0.0


def simulated_reserve_gib(vendor: str, answer: dict) -> float | None:
    """The reserve of the simulated step replayed through the allocator model in this vendor's
    mode (reserved peak minus the peak of live storages), or None for an answer without it."""
    mode = allocator_mode(vendor)
    if mode is None:
        return 0.0
    reserved = (answer.get("reserved_peak_bytes") or {}).get(mode)
    return None if reserved is None else max(reserved - answer["peak_bytes"], 0) / GIB


def overhead_words(vendor: str, reserve_gib: float) -> str:
    """What the overhead term is, in a few words."""
    mode = allocator_mode(vendor)
    context = f"{context_gib(vendor):.2f} GiB {'ROCm' if vendor == 'amd' else 'CUDA'} context"
    if mode is None:
        return context
    how = "expandable segments, as run_sft.sh sets" if mode == "expandable_segments" else "its default mode"
    return f"{context} and {reserve_gib:.2f} GiB the caching allocator reserves ({how})"
