"""Run by the training environment's python, not imported by sft-tui:

    python rescale_lr.py SOURCE_CHECKPOINT TARGET_CHECKPOINT FACTOR  ->  prints {"base_lrs": [...], "groups": N}

Writes TARGET/scheduler.pt and TARGET/optimizer.pt: SOURCE's, with every learning rate in them
multiplied by FACTOR (the scheduler's base_lrs and _last_lr; each optimizer param group's lr and
initial_lr). SOURCE is only read.

Why: transformers' Trainer, resuming from a checkpoint, loads scheduler.pt, whose base_lrs are the
learning rate the checkpoint was trained with; the LambdaLR schedules (linear, cosine, constant
with warmup) compute every later rate from them, so a halved learning_rate in train.yaml is
silently undone (measured with LLaMA-Factory 0.9.5, transformers 5, torch 2.13: the resumed
steps log the old rates). The optimizer's param groups carry the rate of the first resumed step.
Self-contained on purpose: it may run where sft-tui is not installed.
"""

import json
import os
import sys
from pathlib import Path


def _scaled(value, factor):
    return value * factor if isinstance(value, (int, float)) and not isinstance(value, bool) else (
        value * factor if hasattr(value, "mul") else value)


def _save(torch, state, path: Path) -> None:
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)


def rescale(source: Path, target: Path, factor: float) -> dict:
    import torch

    done: dict = {}
    scheduler = source / "scheduler.pt"
    if scheduler.is_file():
        state = torch.load(scheduler, map_location="cpu", weights_only=True)
        for key in ("base_lrs", "_last_lr"):
            if isinstance(state.get(key), list):
                state[key] = [_scaled(v, factor) for v in state[key]]
        _save(torch, state, target / "scheduler.pt")
        done["base_lrs"] = [float(v) for v in state.get("base_lrs", [])]
    optimizer = source / "optimizer.pt"
    if optimizer.is_file():
        # mmap: a full fine-tune's optimizer state is twice the model; it is paged in as it is written out
        state = torch.load(optimizer, map_location="cpu", weights_only=True, mmap=True)
        groups = state.get("param_groups", []) if isinstance(state, dict) else []
        for group in groups:
            for key in ("lr", "initial_lr"):
                if key in group:
                    group[key] = _scaled(group[key], factor)
        _save(torch, state, target / "optimizer.pt")
        done["groups"] = len(groups)
    return done


if __name__ == "__main__":
    print(json.dumps(rescale(Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]))))
