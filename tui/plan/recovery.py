"""What to change after a run went wrong in training, one rule per setting with its reason, for
`sft-tui retry --fix nan|diverged|host-oom` (the out-of-memory rule, `oom_fix`, is in fitting.py).

- nan_fix (a loss or gradient norm that went NaN, a loss spike, a gradient norm that exploded):
  halve learning_rate; clip gradients at 1.0 when max_grad_norm was off (0 or absent); and a run
  in fp16 on cards that all have bf16 trains in bf16 (fp32's range: it does not overflow).
- host_oom_fix (killed by the kernel for want of host RAM): halve preprocessing_num_workers
  (at least 1) and dataloader_num_workers (at least 0): each worker is a process with its own
  share of the rows (tui.plan.host_ram's `preprocessing` part).
Each returns key -> (value, why), or None when it has nothing to change.
"""

from __future__ import annotations

from typing import Any

from tui.plan.rules import show

CLIP_NORM = 1.0


def nan_fix(settings: dict, bf16_card: bool, run_id: str, what: str) -> dict[str, tuple[Any, str]] | None:
    """`what`: what went wrong and where, as a clause ("the loss went NaN at step 47")."""
    rule = "nan_fix"
    fix: dict[str, tuple[Any, str]] = {}
    lr = settings.get("learning_rate")
    if isinstance(lr, (int, float)) and lr > 0:
        fix["learning_rate"] = (lr / 2, f"halved after {what} in run {run_id}: a smaller step is the first "
                                f"thing that keeps the weights finite ({rule})")
    if not settings.get("max_grad_norm"):
        fix["max_grad_norm"] = (CLIP_NORM, f"gradient clipping was off in run {run_id} (max_grad_norm "
                                f"{show(settings.get('max_grad_norm'))}): clipped at {CLIP_NORM}, so one bad batch "
                                f"cannot throw the weights off ({rule})")
    if settings.get("fp16") and bf16_card:
        fix["bf16"] = (True, f"run {run_id} trained in fp16 on a card with bf16, and fp16 overflows: bf16 has "
                       f"fp32's range ({rule})")
        fix["fp16"] = (False, f"bf16 instead, after {what} in run {run_id} ({rule})")
    return fix or None


def halved(value, minimum: int) -> int | None:
    """value // 2, not below minimum; None when that changes nothing (unset means LLaMA-Factory's
    default: the main process, which is the minimum)."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= minimum:
        return None
    return max(minimum, value // 2)


def host_oom_fix(settings: dict, run_id: str) -> dict[str, tuple[Any, str]] | None:
    rule = "host_oom_fix"
    fix: dict[str, tuple[Any, str]] = {}
    for key, minimum, what in (("preprocessing_num_workers", 1, "tokenizing process"),
                               ("dataloader_num_workers", 0, "data-loading process")):
        new = halved(settings.get(key), minimum)
        if new is not None:
            fix[key] = (new, f"halved (at least {minimum}) after the kernel killed run {run_id} for want of "
                        f"host RAM: each {what} holds its own share of the rows ({rule})")
    return fix or None


def host_ram_text(parts: dict | None, total: float | None, available: float | None) -> str:
    """'host RAM estimated at 14 GiB of 31 GiB (processes 2, loading 5, offload 0, preprocessing 7 GiB;
    merging 16 GiB on its own)', from plan.json's host_ram_* values."""
    if not parts:
        return "no host-RAM estimate in its plan.json"
    train = ", ".join(f"{key} {value:g}" for key, value in parts.items() if key != "merge")
    of = f" of {available:g} GiB" if available else ""
    merge = f"; merging {parts['merge']:g} GiB on its own" if "merge" in parts else ""
    return f"host RAM estimated at {total if total is not None else '?'} GiB{of} ({train} GiB{merge})"
