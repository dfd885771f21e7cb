"""Each memory lever changes the estimate the way its mechanism says, and the planner reaches for
Liger and 8-bit AdamW (only where installed) with reasons."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tests.plan.test_planner import PROFILES, request
from tui.hardware.environment import PACKAGES, installed_packages
from tui.models.resolve import resolve_model
from tui.plan.memory import (
    GIB,
    LIGER_LOGITS_BYTES_PER_HIDDEN,
    TrainingShape,
    estimate,
    layer_params,
)
from tui.plan.planner import plan
from tui.plan.values import DataFacts

ARCH = resolve_model("qwen2.5-7b", PROFILES).architecture
BASE = TrainingShape(arch=ARCH, micro_batch=2, seq_len=2048)


def gib(shape, term):
    return estimate(shape).breakdown[term]


def test_liger_replaces_the_logits_by_a_chunk_the_size_of_the_hidden_states():
    tokens = 2 * 2048
    assert gib(BASE, "logits") == pytest.approx(tokens * ARCH.vocab_size * 12 / GIB)
    liger = replace(BASE, liger=True)
    assert gib(liger, "logits") == pytest.approx(tokens * ARCH.hidden_size * LIGER_LOGITS_BYTES_PER_HIDDEN / GIB)
    assert gib(liger, "activations") < gib(BASE, "activations")  # its SwiGLU recomputes the activation
    assert gib(liger, "weights") == gib(BASE, "weights")


@pytest.mark.parametrize("optim, state_bytes", [("adamw_torch", 8), ("adamw_8bit", 2), ("paged_adamw_8bit", 2),
                                                ("paged_adamw_32bit", 8), ("sgd", 0)])
def test_the_optimizer_states_follow_the_optimizer(optim, state_bytes):
    shape = replace(BASE, optim=optim)
    assert gib(shape, "optimizer") == pytest.approx(estimate(shape).trainable_params * state_bytes / GIB)


def test_adafactor_factors_the_second_moment():
    full = replace(BASE, finetuning_type="full")
    assert gib(replace(full, optim="adafactor"), "optimizer") < gib(full, "optimizer") / 10


def test_freeze_trains_the_last_layers_and_keeps_activations_for_them_only():
    frozen = replace(BASE, finetuning_type="freeze", freeze_layers=3)
    est = estimate(frozen)
    assert est.trainable_params == round(3 * layer_params(ARCH))
    assert est.breakdown["weights"] == pytest.approx((ARCH.param_count() - est.trainable_params) * 2 / GIB)
    assert est.breakdown["optimizer"] == pytest.approx(est.trainable_params * 8 / GIB)
    first_layers = estimate(replace(frozen, freeze_layers=-3))  # backward runs through every layer after them
    assert est.breakdown["activations"] < first_layers.breakdown["activations"]
    assert est.trainable_params == first_layers.trainable_params


def test_galore_and_apollo_project_the_states_badam_trains_one_layer():
    full = replace(BASE, finetuning_type="full")
    galore = replace(full, low_rank_optimizer="galore", low_rank=128)
    assert gib(galore, "optimizer") < gib(full, "optimizer") / 4
    assert gib(replace(galore, low_rank=16), "optimizer") < gib(galore, "optimizer")
    badam = estimate(replace(full, low_rank_optimizer="badam", pure_bf16=True))
    assert badam.breakdown["weights"] == pytest.approx(ARCH.param_count() * 2 / GIB)
    assert badam.breakdown["gradients"] == pytest.approx(layer_params(ARCH) * 2 / GIB)


def test_unsloth_gc_moves_the_checkpointed_inputs_to_cpu_ram():
    moved = estimate(replace(BASE, unsloth_gc=True))
    assert moved.breakdown["activations"] < gib(BASE, "activations")
    assert moved.cpu_offload_gib == pytest.approx(gib(BASE, "activations") - moved.breakdown["activations"])


def test_packing_makes_every_row_cutoff_len_long_and_counts_steps_from_tokens():
    data = DataFacts(train_rows=1000, row_tokens_max=300, row_tokens={100: 800, 300: 200}, exact_tokens=True)
    plain = plan(request("a100-80g", "qwen2.5-0.5b", data=data, overrides={"cutoff_len": 1024}))
    packed = plan(request("a100-80g", "qwen2.5-0.5b", data=data, overrides={"cutoff_len": 1024, "packing": True}))
    assert plain.seq_len == 300 and packed.seq_len == 1024
    assert "packing" in packed.seq_len_source
    from tui.plan.rules import optimizer_steps

    packed_rows = -(-(800 * 100 + 200 * 300) // 1024)  # the tokens in cutoff_len pieces: 137 rows
    s = packed.settings
    assert packed.steps == optimizer_steps(packed_rows, s["num_train_epochs"], s["per_device_train_batch_size"],
                                           s["gradient_accumulation_steps"], 1)
    assert packed.steps < plain.steps


def test_the_planner_takes_liger_when_the_logits_dominate_and_it_is_installed():
    with_liger = request("rtx4090-24g", "qwen2.5-7b")
    with_liger.packages = dict.fromkeys(PACKAGES, True)
    chosen = plan(with_liger)
    assert chosen.settings["enable_liger_kernel"] is True
    assert chosen.reasons["enable_liger_kernel"].kind == "fitted"
    assert "never materialises them" in chosen.reasons["enable_liger_kernel"].text
    without = request("rtx4090-24g", "qwen2.5-7b")
    without.packages = dict.fromkeys(PACKAGES, False)
    left = plan(without)
    assert "enable_liger_kernel" not in left.settings
    assert any(w.startswith("liger-kernel is not installed in the training environment (pip install liger-kernel there)")
               for w in left.warnings)
    assert chosen.settings["per_device_train_batch_size"] >= left.settings["per_device_train_batch_size"]
    assert estimate_of(chosen) < estimate_of(left) or chosen.settings["per_device_train_batch_size"] > left.settings["per_device_train_batch_size"]


def estimate_of(p) -> float:
    return p.estimate.per_device_gib / p.settings["per_device_train_batch_size"]


def test_full_fine_tuning_gets_8bit_adamw_before_sharding_and_never_quantization():
    req = request("a100-80g", "qwen2.5-7b", overrides={"finetuning_type": "full"})
    req.packages = dict.fromkeys(PACKAGES, True)
    chosen = plan(req)
    assert chosen.settings["optim"] == "adamw_8bit" and chosen.reasons["optim"].kind == "fitted"
    assert chosen.settings.get("quantization_bit") is None
    unknown = plan(request("a100-80g", "qwen2.5-7b", overrides={"finetuning_type": "full"}))
    assert "optim" not in unknown.settings and unknown.settings.get("quantization_bit") is None
    assert any(w.startswith("if bitsandbytes is installed in the training environment") for w in unknown.warnings)


def test_packages_are_probed_once_in_the_training_python_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    found = installed_packages(Path(sys.executable))
    assert set(found) == set(PACKAGES) and all(isinstance(v, bool) for v in found.values())
    cache = tmp_path / "sft-tui" / "packages.json"
    assert cache.is_file()
    monkeypatch.setattr("subprocess.run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("probed again")))
    assert installed_packages(Path(sys.executable)) == found
    assert installed_packages(tmp_path / "no-python") is None


def test_moe_activations_count_the_experts_a_token_is_routed_to():
    """Qwen3-30B-A3B: 128 experts of width 768, 8 per token; the dense-MLP width in its config
    (6144) is not what a token's activations hold."""
    from tui.plan.memory import mlp_elements_per_token

    moe = resolve_model("qwen3-30b-a3b", PROFILES).architecture
    assert moe.is_moe and moe.experts_per_token == 8
    k, width = 8, moe.expert_intermediate_size
    assert mlp_elements_per_token(moe) == 4 * k * width + k * moe.hidden_size + 2 * moe.num_experts
    dense = mlp_elements_per_token(ARCH)
    assert dense == 4 * ARCH.intermediate_size
    weights = estimate(TrainingShape(arch=moe)).breakdown["weights"]
    assert weights == pytest.approx(moe.param_count() * 2 / GIB)  # every expert's weights are held


def test_a_multimodal_model_holds_its_frozen_vision_tower_in_the_weights():
    from dataclasses import replace as with_

    mm = with_(ARCH, multimodal=True, vision_params=675_759_104)  # Qwen2-VL-7B's tower and projector
    for method in ("lora", "full", "freeze"):
        shape = replace(BASE, arch=mm, finetuning_type=method)
        text_only = replace(BASE, finetuning_type=method)
        assert gib(shape, "weights") - gib(text_only, "weights") == pytest.approx(675_759_104 * 2 / GIB)



def test_optimizer_steps_are_counted_as_transformers_counts_them():
    """Trainer.set_initial_training_values: ceil(rows / processes / batch) micro-batches a process,
    ceil(that / accumulation) steps an epoch, ceil(epochs x that) in all."""
    from tui.plan.rules import optimizer_steps

    assert optimizer_steps(4, 5, 64, 1, 2) == 5  # a batch bigger than the data: one step an epoch
    assert optimizer_steps(100, 3, 4, 4, 1) == 3 * 7  # 25 micro-batches -> 7 steps an epoch
    assert optimizer_steps(100, 1.5, 4, 4, 1) == 11  # ceil(1.5 x 7)
    assert optimizer_steps(101, 1, 2, 1, 2) == 26  # 51 rows on a process -> 26 micro-batches
