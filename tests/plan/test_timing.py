"""The time estimate (tui/plan/timing.py): FLOPs per token on an architecture small enough to
count by hand, what changes it, unknown speeds, and the CLI's time_estimate and price."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tui.common.profiles import load_profiles
from tui.hardware.device import Device
from tui.hardware.peaks import peak_tflops
from tui.hardware.profile import devices_from_profile
from tui.models.architecture import Architecture
from tui.models.resolve import resolve_model
from tui.plan.planner import plan
from tui.plan.timing import (
    MICRO_STEP_OVERHEAD_S,
    StepShape,
    estimate_time,
    flops_per_token,
    human_duration,
    padded_row_tokens,
)
from tui.plan.values import DataFacts, PlanRequest

REPO = Path(__file__).resolve().parents[2]
# hidden 4, 1 layer, 2 heads of 2, MLP 8, vocab 10, untied, no biases (llama).
TINY = Architecture("llama", 4, 1, 2, 2, 8, 10, False)


def test_flops_of_a_tiny_architecture_by_hand():
    # Matmul weights: q,k,v,o 4x4 each = 64; gate, up 4x8 and down 8x4 = 96; lm_head 10x4 = 40.
    # Forward per token: 2 x (64 + 96) + 2 x 40 = 400; attention, causal, seq 6: 1 layer x 2 x
    # (6 / 2) x (2x2 + 2x2) = 48. Full fine-tuning: backward 2 x 448 = 896; recompute the layer: 368.
    f = flops_per_token(StepShape(TINY, "full", seq_len=6, gradient_checkpointing=True))
    assert (f.forward, f.backward, f.recompute) == (448, 896, 368)
    # Eager attention computes the whole square: 1 x 2 x 6 x 8 = 96.
    assert flops_per_token(StepShape(TINY, "full", seq_len=6, attention="eager")).forward == 400 + 96
    # LoRA r=1 on every linear layer: 2 x 1 x (in + out) each: q,k,v,o 4 x 16 + gate, up, down 3 x 24 = 136 a token.
    lora = flops_per_token(StepShape(TINY, "lora", lora_rank=1, seq_len=6, gradient_checkpointing=False))
    assert lora.forward == 448 + 136
    # Backward: frozen matmuls input gradients only (400), attention 2 x 48, adapters 2 x 136.
    assert lora.backward == 400 + 96 + 272


def test_lora_costs_less_than_full_and_checkpointing_adds_a_third():
    arch = resolve_model("qwen2.5-7b", load_profiles()).architecture
    full = flops_per_token(StepShape(arch, "full", seq_len=1024, gradient_checkpointing=False)).total
    full_gc = flops_per_token(StepShape(arch, "full", seq_len=1024, gradient_checkpointing=True)).total
    lora = flops_per_token(StepShape(arch, "lora", seq_len=1024, gradient_checkpointing=False)).total
    assert lora < full * 0.75
    assert full_gc / full == pytest.approx(4 / 3, rel=0.03)  # 8N / 6N, less the lm_head not recomputed


def _time(gpus=1, peak=100.0, steps=1000, **kw):
    return estimate_time(StepShape(TINY, **kw), steps=steps, micro_batch=1, accumulation=8 // gpus, gpus=gpus,
                         nodes=1, cutoff=1024, row_tokens=None, peak_tflops=peak, precision="bf16", where="x")


def test_more_gpus_take_less_time_for_the_same_tokens():
    one, four = _time(gpus=1), _time(gpus=4)
    assert one.tokens == four.tokens
    assert four.seconds < one.seconds
    assert one.seconds > 1000 * 8 * MICRO_STEP_OVERHEAD_S * 0.999  # the fixed cost per micro-step counts


def test_unknown_speed_gives_no_time_and_says_why():
    t = _time(peak=None)
    assert t.seconds is None and t.tokens_per_second is None
    assert any("unknown speed" in a for a in t.assumptions)
    cpu = Device(0, "cpu", "CPU", 16384, 16384, 0, False, False, False, False, True, cpu_cores=8)
    assert peak_tflops(cpu) == {}
    unknown = Device(0, "nvidia", "NVIDIA Some Future Card", 16384, 16384, 0, True, True, True, True, True)
    assert peak_tflops(unknown) == {}
    detected = Device(0, "nvidia", "NVIDIA GeForce RTX 4090", 24564, 24564, 0, True, True, True, True, True)
    assert peak_tflops(detected)["bf16"] == 165.2


def test_profile_peaks_and_padding():
    profiles = load_profiles()
    for name in ("a100-80g", "rtx4080-16g", "h100-80g", "t4-16g"):
        assert devices_from_profile(profiles.get("hardware", name).data)[0].peak_tflops
    assert "bf16" not in devices_from_profile(profiles.get("hardware", "t4-16g").data)[0].peak_tflops
    # Two rows of 10 and 30 tokens: batches of 2 are padded to 30 three times in four.
    assert padded_row_tokens({10: 1, 30: 1}, 1024, 2) == pytest.approx(25)
    assert padded_row_tokens({10: 1, 30: 1}, 20, 1) == pytest.approx(15)
    assert human_duration(3 * 3600 + 600) == "3 h 10 min"


def test_planner_fills_time_estimate_and_price():
    profiles = load_profiles()
    devices = devices_from_profile(profiles.get("hardware", "rtx4080-16g").data)
    recipes = {p.name: p.data for p in profiles.of("recipes")}
    req = PlanRequest(devices, resolve_model("qwen2.5-1.5b", profiles), recipes,
                      data=DataFacts(10_000),
                      price_per_gpu_hour=2.0)
    p = plan(req)
    t = p.time_estimate
    assert t.seconds > 0 and t.tokens > 0 and t.tokens_per_second > 0
    assert t.cost == pytest.approx(t.seconds / 3600 * 2.0)
    assert p.to_json()["time_estimate"]["cost"] == round(t.cost, 2)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "tui.cli.main", *args], capture_output=True, text=True, cwd=REPO)


def test_cli_plan_json_has_time_estimate_and_the_price_flag(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"say {i}", "input": "", "output": "ok " * 50}) + "\n"
                            for i in range(400)))
    done = _cli("plan", "--hardware", "rtx4080-16g", "--model", "qwen2.5-0.5b", "--dataset", str(data), "--json",
                "--price-per-gpu-hour", "1.5")
    t = json.loads(done.stdout)["time_estimate"]
    assert {"seconds", "tokens", "tokens_per_second", "assumptions"} <= set(t)
    assert t["seconds"] > 0 and t["cost"] is not None and t["price_per_gpu_hour"] == 1.5
    text = _cli("plan", "--hardware", "rtx4080-16g", "--model", "qwen2.5-0.5b", "--dataset", str(data))
    assert "Time: about" in text.stdout and "on 1 x NVIDIA GeForce RTX 4080 (MFU 58 %" in text.stdout
    bad = _cli("plan", "--hardware", "rtx4080-16g", "--model", "qwen2.5-0.5b", "--price-per-gpu-hour", "x")
    assert bad.returncode == 2 and "not a number" in bad.stderr
