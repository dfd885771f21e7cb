"""The storage tracker of simulate_step.py: every tensor storage alive, counted once, by kind.

Loaded by simulate_step.py from its own folder (training environment only; never imported by
sft-tui). A TorchDispatchMode sees every op's outputs; each new storage is counted when it first
appears and uncounted when Python frees it (a weakref.finalize on the storage object, which lives
exactly as long as the storage). That works the same on real CPU tensors and on FakeTensorMode
tensors, so the peak of a fake step can be checked against the same step on real tensors.

Kinds: `weights` (frozen parameters and buffers), `trainable` (parameters that train),
`gradients`, `optimizer_state`, `activations` (made in forward before the output layer, alive
until backward frees them: the saved ones), `logits` (the output layer's output and the loss
computed from it), `backward` (temporaries of backward, recomputed checkpoint activations
included), `optimizer_step` (temporaries of the optimizer step), `inputs`.

Every allocation and free also goes through a model of the CUDA caching allocator in both of its
modes (simulate_allocator.py): what the card reserves for this step, beside what is allocated.
"""

from __future__ import annotations

import weakref

import torch
from simulate_allocator import CachingAllocator
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

KINDS = ("weights", "trainable", "gradients", "optimizer_state", "activations", "logits",
         "backward", "optimizer_step", "inputs")
PHASE_KIND = {"forward": "activations", "backward": "backward", "optimizer": "optimizer_step", "setup": "inputs"}


class StorageTracker(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, list] = {}  # storage key -> [bytes, kind]
        self.by_kind = dict.fromkeys(KINDS, 0)
        self.current = 0
        self.peak = 0
        self.peak_at = {"phase": "setup", "step": 0, "kinds": dict(self.by_kind)}
        self.phase = "setup"
        self.step = 0
        self.in_logits = False
        self.phase_peaks: dict[str, int] = {}
        self.snapshots: dict[str, dict] = {}
        self.allocators = {"default": CachingAllocator(expandable=False),
                           "expandable_segments": CachingAllocator(expandable=True)}

    # -- counting ---------------------------------------------------------------------------
    @staticmethod
    def _key(tensor: torch.Tensor):
        storage = tensor.untyped_storage()
        return storage._cdata, storage

    def add(self, tensor: torch.Tensor, kind: str | None = None) -> None:
        if tensor.layout != torch.strided:
            return
        try:
            key, storage = self._key(tensor)
        except (RuntimeError, NotImplementedError):
            return
        if key in self.live:
            if kind is not None:
                self.relabel(tensor, kind)
            return
        kind = kind or ("logits" if self.in_logits and self.phase == "forward" else PHASE_KIND[self.phase])
        size = storage.nbytes()
        self.live[key] = [size, kind]
        self.by_kind[kind] += size
        self.current += size
        for allocator in self.allocators.values():
            allocator.malloc(key, size)
        weakref.finalize(storage, self._free, key)
        self._check_peak()

    def relabel(self, tensor: torch.Tensor, kind: str) -> None:
        key, _ = self._key(tensor)
        entry = self.live.get(key)
        if entry is None:
            self.add(tensor, kind)
            return
        if entry[1] != kind:
            self.by_kind[entry[1]] -= entry[0]
            self.by_kind[kind] += entry[0]
            entry[1] = kind

    def _free(self, key: int) -> None:
        entry = self.live.pop(key, None)
        if entry is not None:
            self.current -= entry[0]
            self.by_kind[entry[1]] -= entry[0]
            for allocator in self.allocators.values():
                allocator.free(key)

    def _check_peak(self) -> None:
        phase = self.phase
        if self.current > self.phase_peaks.get(phase, 0):
            self.phase_peaks[phase] = self.current
        if self.current > self.peak:
            self.peak = self.current
            self.peak_at = {"phase": phase, "step": self.step, "kinds": dict(self.by_kind)}

    def snapshot(self, name: str) -> None:
        """What is live now, by kind, kept under `name` (e.g. at the end of a forward)."""
        self.snapshots[name] = {"total": self.current, "kinds": dict(self.by_kind)}

    # -- the dispatch hook ------------------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for item in tree_flatten(out)[0]:
            if isinstance(item, torch.Tensor):
                self.add(item)
        return out

    # -- wiring to a model and an optimizer -------------------------------------------------
    def watch_model(self, model: torch.nn.Module) -> None:
        """Count the model's parameters and buffers, mark gradients as they land, and call the
        output layer's output and what is computed from it `logits`."""
        for param in model.parameters():
            self.add(param, "trainable" if param.requires_grad else "weights")
            if param.requires_grad:
                param.register_post_accumulate_grad_hook(lambda p: self.relabel(p.grad, "gradients"))
        for buffer in model.buffers():
            self.add(buffer, "weights")
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        if head is not None:
            head.register_forward_pre_hook(lambda module, args: setattr(self, "in_logits", True))

    def watch_optimizer_state(self, optimizer: torch.optim.Optimizer) -> None:
        for state in optimizer.state.values():
            for value in state.values():
                if isinstance(value, torch.Tensor) and value.dim() > 0:
                    self.relabel(value, "optimizer_state")

    def report(self) -> dict:
        return {
            "peak_bytes": self.peak,
            "phase": self.peak_at["phase"],
            "step": self.peak_at["step"],
            "breakdown": {k: v for k, v in self.peak_at["kinds"].items() if v},
            "phase_peaks": self.phase_peaks,
            "snapshots": self.snapshots,
            # the caching allocator's view, per mode: its peak reserve and its peak of (rounded) blocks
            "reserved_peak_bytes": {mode: a.peak_reserved for mode, a in self.allocators.items()},
            "allocated_peak_bytes": {mode: a.peak_allocated for mode, a in self.allocators.items()},
        }
