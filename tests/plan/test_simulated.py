"""The chosen plan judged on its simulated step (tui/plan/simulated.py). The simulations run the
test virtualenv's python (tui/lf/simulate_step.py) on a tiny Gemma 2 config: seconds each, and
cached in the session's XDG_CACHE_HOME, so a repeat is a cache hit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tui.common.profiles import load_profiles
from tui.hardware.profile import devices_from_profile
from tui.models.resolve import resolve_model
from tui.plan import simulated
from tui.plan.planner import plan
from tui.plan.values import SAFETY_MARGIN, PlanRequest

PYTHON = Path(sys.executable)
BIN = PYTHON.parent
PROFILES = load_profiles(user_dir=Path("/nonexistent-sft-tui-user-dir"))
RECIPES = {p.name: p.data for p in PROFILES.of("recipes")}
TINY_GEMMA2 = {
    "architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "vocab_size": 512, "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": 16, "max_position_embeddings": 4096, "sliding_window": 4096, "query_pre_attn_scalar": 16,
    "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0, "dtype": "bfloat16",
    "tie_word_embeddings": True,
}
# LoRA without gradient checkpointing at 2048 tokens: eager attention (what LLaMA-Factory picks for
# Gemma 2 without flash-attn) keeps the (heads x L x L) scores the analytic sdpa model does not count.
NO_CHECKPOINTING = {"disable_gradient_checkpointing": True, "per_device_train_batch_size": 1, "cutoff_len": 2048,
                    "finetuning_type": "lora"}


@pytest.fixture
def gemma2_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SFT_TUI_SIMULATE", "1")
    monkeypatch.setenv("SFT_TUI_MODEL_FACTS", "0")  # the config-only counts: no model_facts subprocess
    folder = Path(tmp_path_factory.getbasetemp()) / "tiny-gemma2-simulated"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(TINY_GEMMA2), encoding="utf-8")
    return folder


def request(model_dir: Path, capacity_gib: float, overrides: dict) -> PlanRequest:
    devices = devices_from_profile(PROFILES.get("hardware", "rtx4090-24g").data)
    for device in devices:
        device.memory_total_mib = device.memory_free_mib = int(capacity_gib * 1024)
    return PlanRequest(devices=devices, model=resolve_model(str(model_dir), PROFILES), recipes=RECIPES,
                       overrides=dict(overrides))


def test_simulate_judges_a_gemma2_plan_the_analytic_model_calls_fitting_as_not_fitting(gemma2_dir):
    roomy = request(gemma2_dir, 24, NO_CHECKPOINTING)
    analytic = plan(roomy)
    judged = plan(roomy)
    simulated.apply_simulation(judged, roomy, python=PYTHON)
    assert judged.simulated["peak_gib"] is not None, judged.estimate.notes
    assert judged.simulated["attn_implementation"] == "eager"
    needs, thought = judged.estimate.per_device_gib, analytic.estimate.per_device_gib
    assert needs > thought * 1.1, (needs, thought)

    # A card whose usable memory lies between the two figures: analytic "fits", simulated not.
    card = request(gemma2_dir, (needs + thought) / 2 / (1 - SAFETY_MARGIN), NO_CHECKPOINTING)
    p = plan(card)
    assert p.fits
    simulated.apply_simulation(p, card, python=PYTHON)
    assert p.simulated["source"] == "cached"  # the same model and settings: no second simulation
    assert not p.fits
    assert any(w.startswith("does not fit:") for w in p.warnings)
    assert any("gradient checkpointing on" in s for s in p.suggestions)
    assert p.to_json()["estimate"]["simulated"]["phase"] in ("forward", "backward", "optimizer")
    assert p.to_json()["estimate"]["fits"] is False


def test_simulate_cache_is_keyed_by_the_settings(gemma2_dir):
    first = request(gemma2_dir, 24, {**NO_CHECKPOINTING, "cutoff_len": 256})
    p = plan(first)
    settings = simulated.simulation_settings(p)
    changed = {**settings, "lora_rank": settings["lora_rank"] * 2}
    config = json.loads((gemma2_dir / "config.json").read_text())
    assert simulated.cache_path(config, settings) != simulated.cache_path(config, changed)
    simulated.apply_simulation(p, first, python=PYTHON)
    again = plan(first)
    simulated.apply_simulation(again, first, python=PYTHON)
    assert again.simulated["source"] == "cached"
    bigger = request(gemma2_dir, 24, {**NO_CHECKPOINTING, "cutoff_len": 256, "lora_rank": settings["lora_rank"] * 2})
    other = plan(bigger)
    simulated.apply_simulation(other, bigger, python=PYTHON)
    assert other.simulated["source"] == "simulated"
    assert other.simulated["breakdown"]["trainable"] > p.simulated["breakdown"]["trainable"]


def test_simulate_falls_back_to_the_analytic_estimate_with_one_note(gemma2_dir, monkeypatch):
    req = request(gemma2_dir, 24, {**NO_CHECKPOINTING, "cutoff_len": 128, "lora_rank": 3})
    monkeypatch.setattr(simulated, "_training_python", lambda: None)
    p = plan(req)
    before = p.estimate.per_device_gib
    simulated.apply_simulation(p, req)
    assert p.estimate.per_device_gib == before
    notes = [n for n in p.estimate.notes if n.startswith("memory:")]
    assert notes == [("memory: the analytic estimate, not simulated: no training environment with LLaMA-Factory "
                      "here to simulate the step")]
    assert p.to_json()["estimate"]["simulated"]["peak_gib"] is None

    off = plan(req)
    simulated.apply_simulation(off, req, enabled=False, python=PYTHON)
    assert [n for n in off.estimate.notes if n.startswith("memory:")] == [
        "memory: the analytic estimate, not simulated: --no-simulate"]


def test_simulate_plan_json_says_what_was_simulated(gemma2_dir):
    env = dict(os.environ, SFT_TUI_SIMULATE="1", SFT_TUI_MODEL_FACTS="0")
    args = [str(BIN / "sft-tui"), "plan", "--model", str(gemma2_dir), "--hardware", "rtx4090-24g",
            "--set", "cutoff_len=256", "--set", "disable_gradient_checkpointing=true", "--set", "lora_rank=8"]
    done = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=600, env=env, check=False)
    assert done.returncode == 0, done.stderr
    sim = json.loads(done.stdout)["estimate"]["simulated"]
    assert sim["peak_gib"] > 0 and sim["phase"] in ("forward", "backward", "optimizer") and sim["seconds"] >= 0
    assert set(sim["breakdown"]) >= {"weights", "trainable", "activations"}
    text = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert "  simulated: " in text.stdout and "cached" in text.stdout
    plain = subprocess.run([*args, "--no-simulate"], capture_output=True, text=True, timeout=600, env=env, check=False)
    assert "analytic estimate, not simulated: --no-simulate" in plain.stdout


def test_simulate_a_qlora_plan_runs_on_the_bitsandbytes_stand_in(gemma2_dir):
    req = request(gemma2_dir, 24, {**NO_CHECKPOINTING, "cutoff_len": 256, "quantization_bit": 4})
    p = plan(req)
    assert p.settings["quantization_bit"] == 4
    simulated.apply_simulation(p, req, python=PYTHON)
    assert p.simulated["peak_gib"] is not None, p.estimate.notes
    assert any(s.startswith("bitsandbytes 4-bit weights") for s in p.simulated["stand_ins"])


def test_simulate_replans_with_the_calibrated_analytic_model_when_the_simulated_step_does_not_fit(gemma2_dir):
    # No settings of yours: the analytic search fills a 4 GiB card with a big micro-batch (and may
    # drop checkpointing); the simulated step (eager attention) does not fit, and the search is run
    # again with the analytic model scaled by this model's simulated / analytic ratio.
    req = request(gemma2_dir, 4, {"cutoff_len": 2048})
    first = plan(req)
    chosen = simulated.apply_simulation(first, req, python=PYTHON)
    assert first.simulated["peak_gib"] is not None and not first.fits
    assert chosen is not first and chosen.fits
    assert chosen.simulated["peak_gib"] is not None and chosen.capacity_gib == first.capacity_gib
    assert chosen.estimate.per_device_gib <= chosen.capacity_gib * (1 - SAFETY_MARGIN)
    assert any(n.startswith("memory: re-planned:") for n in chosen.estimate.notes)
    before = chosen.simulated["replanned_from"]["settings"]
    assert any(before[k] != chosen.settings.get(k) for k in before)
    assert chosen.to_json()["estimate"]["fits"] is True


def test_simulate_export_writes_the_simulated_verdict_into_plan_json(gemma2_dir, tmp_path):
    from tests.support.llamafactory import SAMPLE_ALPACA_ROWS, write_jsonl

    data = write_jsonl(tmp_path / "rows.jsonl", SAMPLE_ALPACA_ROWS)
    env = dict(os.environ, SFT_TUI_SIMULATE="1", SFT_TUI_MODEL_FACTS="0")
    done = subprocess.run([str(BIN / "sft-tui"), "export", "--model", str(gemma2_dir), "--hardware", "rtx4090-24g",
                           "--dataset", str(data),
                           "--set", "cutoff_len=256", "--set", "disable_gradient_checkpointing=true", "--set",
                           "lora_rank=8", "--out", str(tmp_path), "--json"],
                          capture_output=True, text=True, timeout=600, env=env, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = Path(json.loads(done.stdout)["run_dir"])
    estimate = json.loads((run_dir / "plan.json").read_text())["plan"]["estimate"]
    assert estimate["simulated"]["peak_gib"] > 0
    assert any(n.startswith("memory: simulated") for n in estimate["notes"])


def test_simulate_overhead_is_the_context_and_the_allocator_reserve_of_the_replayed_step(gemma2_dir):
    """The card's view: a simulated plan's overhead is the CUDA context plus what the caching
    allocator model reserves beyond the step's storages, in the mode run_sft.sh sets (expandable
    segments on NVIDIA); the AMD plan of the same step takes the default mode's reserve."""
    from tui.plan.reserve import context_gib

    nvidia = request(gemma2_dir, 24, NO_CHECKPOINTING)
    p = plan(nvidia)
    simulated.apply_simulation(p, nvidia, python=PYTHON)
    sim = p.simulated
    assert sim["allocator"] == "expandable_segments" and sim["reserve_gib"] > 0
    assert sim["overhead_gib"] == pytest.approx(context_gib("nvidia") + sim["reserve_gib"], abs=2e-3)
    assert p.estimate.breakdown["overhead"] == pytest.approx(sim["overhead_gib"], abs=2e-3)
    assert "the caching allocator reserves (expandable segments, as run_sft.sh sets)" in p.estimate.notes[-1]

    amd = request(gemma2_dir, 24, NO_CHECKPOINTING)
    for device in amd.devices:
        device.vendor = "amd"
    q = plan(amd)
    simulated.apply_simulation(q, amd, python=PYTHON)
    assert q.simulated["source"] == "cached" and q.simulated["allocator"] == "default"
    assert q.simulated["peak_gib"] == sim["peak_gib"]  # the same step; only the allocator's mode differs


def test_simulate_calibrates_the_analytic_model_on_two_simulated_steps(gemma2_dir):
    """The chosen plan's step and one at half its length fit the analytic terms; the calibrated
    model then predicts a third shape's simulated figure (twice the rows) better than the analytic
    model does. A small Gemma 2 (32k vocabulary, 4 layers of 256): at the tiny one's size the
    allocator's 2 MiB segments outweigh every tensor."""
    from dataclasses import replace

    from tui.plan.memory import estimate

    gemma2_dir = gemma2_dir.parent / "small-gemma2-simulated"
    gemma2_dir.mkdir(exist_ok=True)
    (gemma2_dir / "config.json").write_text(json.dumps({**TINY_GEMMA2, "vocab_size": 32000, "hidden_size": 256,
                                                        "intermediate_size": 1024, "num_hidden_layers": 4,
                                                        "head_dim": 64}), encoding="utf-8")

    settings = {"cutoff_len": 1024, "per_device_train_batch_size": 1, "finetuning_type": "lora"}
    req = request(gemma2_dir, 24, settings)
    p = simulated.apply_simulation(plan(req), req, python=PYTHON)
    calibration = p.simulated["calibration"]
    assert calibration["how"] == "two points", calibration
    factors = (calibration["fixed_factor"], calibration["growing_factor"])
    at_chosen = estimate(replace(p.shape, calibration=factors)).per_device_gib
    assert at_chosen == pytest.approx(p.estimate.per_device_gib, rel=0.01)  # a point of the fit

    doubled = request(gemma2_dir, 24, {**settings, "per_device_train_batch_size": 2})
    q = plan(doubled)
    analytic = q.estimate.per_device_gib
    simulated.apply_simulation(q, doubled, python=PYTHON, replan=False)
    predicted = estimate(replace(q.shape, calibration=factors)).per_device_gib
    truth = q.estimate.per_device_gib
    assert abs(predicted / truth - 1) < 0.03, (predicted, truth, analytic)
    assert abs(predicted / truth - 1) < abs(analytic / truth - 1)


def test_simulate_a_zero_plan_runs_its_shards_as_stand_ins_on_the_simulated_terms(gemma2_dir):
    """Two GPUs too small for one's full fine-tuning step: the planner shards with DeepSpeed ZeRO-2,
    which the fake step does not run; the one-GPU step is simulated and its gradients and optimizer
    states held at the analytic per-rank fraction (half on two ranks), named as a stand-in."""
    import copy

    small = gemma2_dir.parent / "small-gemma2-simulated"
    small.mkdir(exist_ok=True)
    (small / "config.json").write_text(json.dumps({**TINY_GEMMA2, "vocab_size": 32000, "hidden_size": 256,
                                                   "intermediate_size": 1024, "num_hidden_layers": 4,
                                                   "head_dim": 64}), encoding="utf-8")

    def two_gpus(capacity):
        req = request(small, capacity, {"finetuning_type": "full", "cutoff_len": 512})
        second = copy.copy(req.devices[0])
        second.index = 1
        req.devices.append(second)
        return req

    sharded_req, roomy_req = two_gpus(1.0), two_gpus(1.2)
    sharded, roomy = plan(sharded_req), plan(roomy_req)
    assert (sharded.zero_stage, roomy.zero_stage) == (2, 0)
    simulated.apply_simulation(sharded, sharded_req, python=PYTHON, replan=False)
    simulated.apply_simulation(roomy, roomy_req, python=PYTHON, replan=False)
    assert sharded.simulated["peak_gib"] is not None, sharded.simulated
    assert any(s.startswith("DeepSpeed ZeRO-2 over 2 GPUs") for s in sharded.simulated["stand_ins"])
    assert sharded.simulated["peak_gib"] < roomy.simulated["peak_gib"]
    for kind in ("gradients", "optimizer_state"):
        if roomy.simulated["breakdown"].get(kind):
            assert sharded.simulated["breakdown"][kind] == pytest.approx(roomy.simulated["breakdown"][kind] / 2, rel=0.02)
    assert sharded.simulated["breakdown"]["weights"] == pytest.approx(roomy.simulated["breakdown"]["weights"], rel=0.01)
