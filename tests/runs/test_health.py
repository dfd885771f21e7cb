"""Training health on recorded logs in LLaMA-Factory's formats: real NaN runs of the tiny model
(tests/data/logs/health/nan_*), the real resumed 40-step run (a loss that does not move), and
synthetic curves (make_synthetic.py there) for a spike, an exploding grad_norm, a zero loss and
overfitting."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tui.runs.events import EVENT_KINDS
from tui.runs.follower import Follower
from tui.runs.health import HealthCheck
from tui.runs.watch import plain_line

HEALTH = Path(__file__).parents[1] / "data" / "logs" / "health"
LOGS = Path(__file__).parents[1] / "data" / "logs"


def follow(tmp_path: Path, source: Path, chunks: int = 1) -> list:
    """Follow a recorded train.log + trainer_log.jsonl, delivered whole or in `chunks` pieces each."""
    run_dir, output_dir = tmp_path / "run", tmp_path / "saves"
    run_dir.mkdir()
    output_dir.mkdir()
    log = (source / "train.log").read_text().replace("@ROOT@", str(tmp_path))
    rows = (source / "trainer_log.jsonl").read_text().splitlines(keepends=True)
    follower = Follower(run_dir, output_dir)
    events = []
    for i in range(1, chunks + 1):
        (run_dir / "train.log").write_text(log[:len(log) * i // chunks])
        (output_dir / "trainer_log.jsonl").write_text("".join(rows[:len(rows) * i // chunks]))
        events += follower.poll()
    return [e for e in events if e.kind == "health"]


def test_health_is_an_event_kind():
    assert "health" in EVENT_KINDS


@pytest.mark.parametrize("name, what", [("nan_off", "loss"), ("nan_default", "gradient norm")])
def test_a_real_nan_run_gives_one_health_event_at_its_first_nan(tmp_path, name, what):
    health = follow(tmp_path, HEALTH / name)
    assert [(e.data["diagnosis"], e.data["step"]) for e in health] == [("nan_loss", 3)]
    text = health[0].text
    assert text.startswith(f"the {what} became NaN at step 3, so nothing is learned from here on: likely fp16 overflowing")
    assert "bf16" in text and "fp32" in text and "lower learning_rate" in text and "bad row" in text
    assert "\n" not in text
    # the NaN filter logs 0 after the NaN: that is not a second diagnosis (every label masked)
    assert plain_line(health[0]) == "health: " + text


@pytest.mark.parametrize("name, diagnosis, step, words", [
    ("spike", "loss_spike", 40, "the loss spiked to 6.812 at step 40"),
    ("grad_norm", "grad_norm_exploding", 36, "grad_norm exploded at step 36 (874.2,"),
    ("zero_loss", "zero_loss", 2, "the loss is exactly 0 at step 2, so every label is likely masked"),
    ("overfitting", "overfitting", 50, ("eval_loss rose at 3 evaluations in a row (1.12 -> 1.14 -> 1.19 -> 1.27, step 50) "
                                        "while the training loss fell: the model is overfitting")),
])
@pytest.mark.parametrize("chunks", [1, 7])
def test_each_diagnosis_once_with_its_cause_and_fix(tmp_path, name, diagnosis, step, words, chunks):
    health = follow(tmp_path, HEALTH / name, chunks)
    assert [(e.data["diagnosis"], e.data["step"]) for e in health] == [(diagnosis, step)]
    assert health[0].text.startswith(words), health[0].text
    assert "\n" not in health[0].text


@pytest.mark.parametrize("name, fix", [("spike", "lower learning_rate"), ("grad_norm", "lower learning_rate"),
                                       ("zero_loss", "set train_on_prompt"), ("overfitting", "train fewer epochs")])
def test_the_fixes_are_named(tmp_path, name, fix):
    assert fix in follow(tmp_path, HEALTH / name)[0].text


def test_a_real_run_whose_loss_does_not_move(tmp_path):
    """The recorded resumed run: a tiny random model at chance level (6.25 = ln(vocab)), lr 3e-5."""
    health = follow(tmp_path, LOGS / "resumed")
    assert [(e.data["diagnosis"], e.data["step"]) for e in health] == [("loss_flat", 20)]
    assert health[0].text.startswith("the loss has not moved (6.252 at the first logged step, 6.221 at step 20; 0.68% "
                                     "over the last 10 logged steps): likely a learning rate too low or every weight "
                                     "frozen; raise learning_rate")


@pytest.mark.parametrize("chunks", [1, 9])
def test_a_healthy_curve_says_nothing(tmp_path, chunks):
    assert follow(tmp_path, HEALTH / "healthy", chunks) == []


def test_a_curve_that_fell_and_levelled_off_is_not_flat():
    check = HealthCheck()
    said = []
    for step in range(1, 101):
        loss = 0.8 if step > 50 else 2.0 - step * 0.024
        said += check.observe({"current_steps": step, "loss": loss}, 100)
    assert said == []


def test_inf_loss_and_inf_grad_norm():
    check = HealthCheck()
    assert [n for n, _, _ in check.observe({"current_steps": 1, "loss": 2.0, "grad_norm": float("inf")}, 10)] == \
        ["grad_norm_exploding"]
    found = check.observe({"current_steps": 2, "loss": float("inf")}, 10)
    assert [n for n, _, _ in found] == ["nan_loss"] and found[0][2].startswith("the loss became inf at step 2")
    assert check.observe({"current_steps": 3, "loss": float("nan")}, 10) == []  # once per run


def test_health_events_in_monitor_json(tmp_path):
    health = follow(tmp_path, HEALTH / "spike")
    assert json.loads(json.dumps(health[0].to_json()))["event"] == "health"


def recorded_health_run(tmp_path: Path, name: str) -> Path:
    """The recorded finished run directory (tests/data/runs) with health/<name>'s logs in it."""
    from tests.runs.recorded import recorded_run

    run_dir = recorded_run(tmp_path, "finished")
    (run_dir / "train.log").write_text((HEALTH / name / "train.log").read_text().replace("@ROOT@", str(tmp_path)))
    shutil.copy(HEALTH / name / "trainer_log.jsonl", tmp_path / "saves" / "tiny-lora" / "trainer_log.jsonl")
    return run_dir


def test_monitor_plain_and_json_show_the_diagnosis(tmp_path):
    from tests.runs.test_runs import sft_tui

    run_dir = recorded_health_run(tmp_path, "spike")
    plain = sft_tui("monitor", run_dir, "--plain")
    assert plain.returncode == 0, plain.stdout + plain.stderr
    lines = plain.stdout.splitlines()
    health = [line for line in lines if line.startswith("health: ")]
    assert health == [("health: the loss spiked to 6.812 at step 40, 5.2x its recent median 1.318: likely a learning "
                       "rate too high or a bad batch; lower learning_rate or lengthen the warmup (warmup_ratio), and "
                       "check the rows with `sft-tui validate`")]
    assert lines.index(health[0]) == lines.index("step 40/60  loss 6.8124  lr 2.00e-04  ETA 0:00:40") + 1
    rows = [json.loads(line) for line in sft_tui("monitor", run_dir, "--json").stdout.splitlines()]
    assert [(r["diagnosis"], r["step"], r["text"]) for r in rows if r["event"] == "health"] == \
        [("loss_spike", 40, health[0].removeprefix("health: "))]


async def test_the_app_shows_a_health_panel(tmp_path, monkeypatch):
    from tui.app.health import HealthPanel
    from tui.app.main import SftTuiApp

    run_dir = recorded_health_run(tmp_path, "overfitting")
    monkeypatch.chdir(tmp_path)
    app = SftTuiApp(monitor=run_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        for _ in range(30):
            await pilot.pause(0.1)
            panel = app.screen.query_one(HealthPanel)
            if panel.sentences:
                break
        assert panel.display and panel.sentences[0].startswith("eval_loss rose at 3 evaluations in a row")
        assert "overfitting" in str(panel.render())
