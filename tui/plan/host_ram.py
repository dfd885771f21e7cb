"""Host RAM a plan needs on each node, with its parts, because host RAM kills large runs before
the GPU does (LLaMA-Factory #8726: eight processes each loading a 70B checkpoint).

Parts, in GiB per node, each an upper bound with its assumption:
- processes: each training process (one per GPU) imports torch, transformers and the CUDA
  libraries, about PROCESS_GIB of resident memory before any model;
- loading: with low_cpu_mem_usage (LLaMA-Factory's default) transformers materialises the
  weights from the memory-mapped safetensors shards straight onto the device, so a process
  holds about one shard at a time (SHARD_GIB: hub checkpoints are cut in shards of at most
  5 GB), and every process loads its own; the mapped pages themselves are page cache, which
  the kernel reclaims;
- offload: what DeepSpeed ZeRO offload or Unsloth's checkpointing keeps in CPU RAM (the
  estimate's cpu_offload_gib, for every process of the node);
- preprocessing: LLaMA-Factory tokenizes with `preprocessing_num_workers` processes (its
  default: none, the main process), each holding its share of the tokenized rows: input_ids,
  attention_mask and labels as 8-byte integers in Arrow, three copies during the map;
- merge: `sft-tui merge` (LLaMA-Factory export on the CPU) holds the whole model in its 16-bit
  dtype plus the adapter, once.
"""

from __future__ import annotations

from dataclasses import dataclass

from tui.plan.memory import GIB

PROCESS_GIB = 2.0  # torch + CUDA libraries resident per process (measured ~1.5-2.5 GiB with CUDA torch)
SHARD_GIB = 5.0  # the usual largest safetensors shard on the hub (save_pretrained's max_shard_size "5GB")
CHECKPOINT_BYTES = 2  # checkpoints are published in bf16/fp16
TOKENIZED_BYTES_PER_TOKEN = 3 * 8 * 3  # three int64 columns, three copies while mapping
HOST_MARGIN = 0.10  # the OS, the page cache and sft-tui itself


@dataclass
class HostRam:
    parts: dict[str, float]  # GiB per node
    available_gib: float | None  # this machine's RAM, or the hardware profile's; None: unknown

    @property
    def total_gib(self) -> float:
        return sum(v for k, v in self.parts.items() if k != "merge")

    @property
    def fits(self) -> bool | None:
        if self.available_gib is None:
            return None
        return max(self.total_gib, self.parts["merge"]) <= self.available_gib * (1 - HOST_MARGIN)

    def to_json(self) -> dict:
        return {"host_ram_gib": round(self.total_gib, 2), "host_ram_parts": {k: round(v, 2) for k, v in self.parts.items()},
                "host_ram_available_gib": None if self.available_gib is None else round(self.available_gib, 1),
                "host_ram_fits": self.fits}


def host_ram(params: int, processes: int, cpu_offload_gib: float, tokens: int | None, workers: int | None,
             available_gib: float | None) -> HostRam:
    """`params`: the model's parameters; `processes`: training processes on a node (GPUs per
    node; 1 on a CPU); `cpu_offload_gib`: the estimate's per-process CPU offload; `tokens`: the
    dataset's tokens, when known; `workers`: preprocessing_num_workers."""
    model_gib = params * CHECKPOINT_BYTES / GIB
    parts = {
        "processes": processes * PROCESS_GIB,
        "loading": processes * min(model_gib, SHARD_GIB),
        "offload": processes * cpu_offload_gib,
        "preprocessing": (tokens or 0) * TOKENIZED_BYTES_PER_TOKEN / GIB + (workers or 0) * PROCESS_GIB / 2,
        "merge": model_gib * 1.05 + PROCESS_GIB,
    }
    return HostRam(parts, available_gib)


def host_ram_warning(ram: HostRam) -> str | None:
    """One sentence when the node's RAM is short for training or for merging, with what to change."""
    if ram.fits is not False:
        return None
    assert ram.available_gib is not None  # fits is None without it
    usable = ram.available_gib * (1 - HOST_MARGIN)
    if ram.total_gib > usable:
        biggest = max((k for k in ram.parts if k != "merge"), key=ram.parts.__getitem__)
        fix = {"loading": "fewer GPUs per node, or a machine with more RAM (each process loads its own shards)",
               "offload": "no CPU offload (more GPUs, or 4-bit weights), or more RAM",
               "preprocessing": "fewer preprocessing_num_workers, or streaming",
               "processes": "fewer GPUs per node"}.get(biggest, "a machine with more RAM")
        return (f"host RAM: training needs about {ram.total_gib:.0f} GiB of {usable:.0f} GiB usable on the node "
                f"(most for {biggest}: {ram.parts[biggest]:.0f} GiB): {fix}")
    return (f"host RAM: merging the adapter (sft-tui merge) needs about {ram.parts['merge']:.0f} GiB of {usable:.0f} GiB "
            "usable here: merge on a machine with more RAM, or serve the adapter unmerged")
