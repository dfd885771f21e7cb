"""The monitor's loss curve: the logged train loss (and its smoothed line), eval loss and learning rate
by step, drawn on a plotext plot. A resumed run trains the steps after its checkpoint again: its
points replace the earlier run's from there, so the curve never runs back on itself."""

from __future__ import annotations

SMOOTHING = 0.8  # exponential moving average of the loss curve


def smoothed(values: list[float], weight: float = SMOOTHING) -> list[float]:
    out, last = [], None
    for value in values:
        last = value if last is None else weight * last + (1 - weight) * value
        out.append(last)
    return out


class LossCurve:
    def __init__(self):
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.eval_points: list[tuple[int, float]] = []
        self.lrs: list[tuple[int, float]] = []

    def add(self, metrics: dict) -> None:
        """A metrics event's numbers (tui.runs.follower)."""
        step = metrics.get("current_steps", 0)
        if "loss" in metrics:
            self.steps.append(step)
            self.losses.append(metrics["loss"])
        if "eval_loss" in metrics:
            self.eval_points.append((step, metrics["eval_loss"]))
        if "lr" in metrics:
            self.lrs.append((step, metrics["lr"]))

    def resumed_at(self, step: int | None) -> None:
        """Drop the points past the checkpoint a resumed run began at (it logs them again)."""
        if step is None:
            return
        kept = [i for i, s in enumerate(self.steps) if s <= step]
        self.steps, self.losses = [self.steps[i] for i in kept], [self.losses[i] for i in kept]
        self.eval_points = [(s, v) for s, v in self.eval_points if s <= step]
        self.lrs = [(s, v) for s, v in self.lrs if s <= step]

    def draw(self, plt) -> None:
        plt.clear_data()
        if self.losses:
            plt.plot(self.steps, self.losses, label="loss", marker="braille")
            if len(self.losses) > 2:
                plt.plot(self.steps, smoothed(self.losses), label="smoothed", marker="braille")
        if self.eval_points:
            plt.plot([s for s, _ in self.eval_points], [v for _, v in self.eval_points], label="eval", marker="dot")
