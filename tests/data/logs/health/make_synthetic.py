"""Writes the synthetic health logs next to this file, in LLaMA-Factory 0.9.5's exact formats:
trainer_log.jsonl rows as its LogCallback.on_log writes them (json.dumps of the dict, its key order,
None dropped) and train.log with the Trainer's banner and transformers 5's console metric dicts
(strings of 4 significant digits, padded by tqdm). Run it again after changing a curve."""

from __future__ import annotations

import json
import math
from pathlib import Path

HERE = Path(__file__).parent
BANNER = """[INFO|trainer.py:1469] 2026-11-23 09:57:01,322 >> ***** Running training *****
[INFO|trainer.py:1470] 2026-11-23 09:57:01,322 >>   Num examples = {examples}
[INFO|trainer.py:1471] 2026-11-23 09:57:01,322 >>   Num Epochs = {epochs}
[INFO|trainer.py:1472] 2026-11-23 09:57:01,323 >>   Num update steps per epoch = {per_epoch}
[INFO|trainer.py:1473] 2026-11-23 09:57:01,323 >>   Instantaneous batch size per device = 4
[INFO|trainer.py:1476] 2026-11-23 09:57:01,323 >>   Total train batch size (w. parallel, distributed & accumulation) = 4
[INFO|trainer.py:1477] 2026-11-23 09:57:01,323 >>   Gradient Accumulation steps = 1
[INFO|trainer.py:1478] 2026-11-23 09:57:01,323 >>   Total optimization steps = {total}
[INFO|trainer.py:1479] 2026-11-23 09:57:01,323 >>   Number of trainable parameters = 65,536
"""


def clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def write(name: str, total: int, epochs: int, train: dict, evals: dict | None = None, s_per_step: float = 2.0,
          tokens_per_step: int | None = None) -> None:
    """train: step -> (loss, grad_norm, lr); evals: step -> eval_loss."""
    rows, console = [], [BANNER.format(examples=total * 4 // epochs, epochs=epochs, per_epoch=total // epochs, total=total)]
    for step in range(1, total + 1):
        elapsed, remaining = step * s_per_step, (total - step) * s_per_step
        epoch = round(step / (total / epochs), 2)
        bar = f"{step * 100 // total:3d}%|#         | {step}/{total} [{clock(elapsed)[2:]}<{clock(remaining)[2:]},  {1 / s_per_step:.2f}it/s]"
        logged = []
        if step in train:
            loss, grad_norm, lr = train[step]
            logged.append({"loss": loss, "lr": lr})
            console.append(f"{bar}[INFO|2026-11-23 09:57:14] llamafactory.train.callbacks:144 >> "
                           f"{{'loss': {loss:.4f}, 'learning_rate': {lr:.4e}, 'epoch': {epoch:.2f}}}\n")
            console.append(" " * 45 + "{" + f"'loss': '{loss:.4g}', 'grad_norm': '{grad_norm:.4g}', "
                           f"'learning_rate': '{lr:.4g}', 'epoch': '{epoch:.4g}'" + "}\n")
        if evals and step in evals:
            logged.append({"eval_loss": evals[step]})
            console.append(" " * 45 + "{" + f"'eval_loss': '{evals[step]:.4g}', 'eval_runtime': '0.5', "
                           f"'eval_samples_per_second': '32', 'eval_steps_per_second': '8', 'epoch': '{epoch:.4g}'" + "}\n")
        for values in logged:
            logs = {"current_steps": step, "total_steps": total, "loss": values.get("loss"),  # LogCallback's key order
                    "eval_loss": values.get("eval_loss"), "predict_loss": None, "reward": None, "accuracy": None,
                    "lr": values.get("lr"), "epoch": epoch, "percentage": round(step / total * 100, 2),
                    "elapsed_time": clock(elapsed), "remaining_time": clock(remaining)}
            if tokens_per_step:
                logs["throughput"] = round(step * tokens_per_step / elapsed, 2)
                logs["total_tokens"] = step * tokens_per_step
            rows.append(json.dumps({k: v for k, v in logs.items() if v is not None}) + "\n")
        if not logged:
            console.append(bar + "\r")
    rows.append(json.dumps({"current_steps": total, "total_steps": total, "epoch": float(epochs), "percentage": 100.0,
                            "elapsed_time": clock(total * s_per_step), "remaining_time": "0:00:00"}) + "\n")
    console.append("***** train metrics *****\n"
                   f"  epoch                    =        {float(epochs)}\n"
                   f"  train_runtime            = {clock(total * s_per_step)}.00\n"
                   f"  train_steps_per_second   =     {1 / s_per_step:.3f}\n")
    (HERE / name).mkdir(exist_ok=True)
    (HERE / name / "trainer_log.jsonl").write_text("".join(rows))
    (HERE / name / "train.log").write_text("".join(console))


def falling(step: int, start: float = 2.0, end: float = 1.2, total: int = 60) -> float:
    """A plausible training curve: exponential decay with a deterministic wobble."""
    return round(end + (start - end) * math.exp(-4 * step / total) + 0.02 * math.sin(step * 1.7), 4)


def lr(step: int, total: int = 60) -> float:
    return 2e-4 * min(1.0, step / (0.1 * total))


def main() -> None:
    norm = {s: round(0.6 + 0.1 * math.sin(s), 4) for s in range(1, 61)}
    write("spike", 60, 3, {s: (6.8124 if s == 40 else falling(s), norm[s], lr(s)) for s in range(2, 61, 2)})
    write("grad_norm", 60, 3, {s: (falling(s), 874.2 if s == 36 else norm[s], lr(s)) for s in range(2, 61, 2)})
    write("zero_loss", 20, 1, {s: (0.0, 0.0, lr(s, 20)) for s in range(1, 21)})
    write("overfitting", 60, 6, {s: (falling(s, 2.0, 0.4), norm[s], lr(s)) for s in range(2, 61, 2)},
          evals={10: 1.31, 20: 1.12, 30: 1.14, 40: 1.19, 50: 1.27, 60: 1.38})
    write("healthy", 60, 3, {s: (falling(s), norm[s], lr(s)) for s in range(2, 61, 2)}, evals={20: 1.6, 40: 1.45, 60: 1.41},
          s_per_step=1.5, tokens_per_step=3000)


if __name__ == "__main__":
    main()
