"""tui/lf/simulate_step.py: one training step on fake tensors, run by the test virtualenv's python in
a subprocess (the pytest process never imports torch). Tiny models only: each process takes a few
seconds, so the requests of a test go to one process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.llamafactory import REPO, offline_env

SCRIPT = REPO / "tui" / "lf" / "simulate_step.py"
TINY_SHAPE = {"cutoff_len": 128, "per_device_train_batch_size": 2}


def simulate(requests: list[dict]) -> list[dict]:
    done = subprocess.run([sys.executable, str(SCRIPT), "-"], input=json.dumps(requests), capture_output=True,
                          text=True, timeout=600, env=offline_env(), check=False)
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(answers) == len(requests), done.stderr[-2000:]
    for answer in answers:
        assert "error" not in answer, answer["error"]
    return answers


def tiny_config_dir(root: Path, name: str, config: dict) -> str:
    folder = root / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return str(folder)


TINY_GEMMA2 = {
    "architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "vocab_size": 512, "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": 16, "max_position_embeddings": 512, "sliding_window": 64, "query_pre_attn_scalar": 16,
    "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0, "dtype": "bfloat16",
}
TINY_QWEN2_BF16 = {
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 512, "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "max_position_embeddings": 512, "tie_word_embeddings": True, "dtype": "bfloat16",
}


@pytest.mark.parametrize("settings", [
    {"finetuning_type": "lora", "gradient_checkpointing": True},
    {"finetuning_type": "full", "gradient_checkpointing": False, "optim": "adamw_torch"},
    {"finetuning_type": "lora", "lora_dropout": 0.1, "use_dora": True},
], ids=["lora-checkpointing", "full-foreach", "dora-dropout"])
def test_simulate_fake_peak_agrees_with_the_same_step_on_real_cpu_tensors(tiny_model_dir, settings):
    settings = {**TINY_SHAPE, **settings}
    fake, real = simulate([{"model": str(tiny_model_dir), "settings": settings},
                           {"model": str(tiny_model_dir), "settings": settings, "real": True}])
    assert not fake["real"] and real["real"]
    assert abs(fake["peak_bytes"] - real["peak_bytes"]) <= 0.01 * real["peak_bytes"]
    # the caching allocator replayed on the same allocations, in the same order: the same reserve
    for mode in ("default", "expandable_segments"):
        assert fake["reserved_peak_bytes"][mode] >= fake["allocated_peak_bytes"][mode] >= fake["peak_bytes"]
        assert abs(fake["reserved_peak_bytes"][mode] - real["reserved_peak_bytes"][mode]) <= 0.01 * real[
            "reserved_peak_bytes"][mode]
    assert fake["phase"] == real["phase"]
    assert sum(fake["breakdown"].values()) == fake["peak_bytes"]
    # Two optimizer steps were taken: the state is live in step 2's forward.
    assert fake["snapshots"]["forward_end_2"]["kinds"]["optimizer_state"] > 0
    assert fake["snapshots"]["backward_end_1"]["kinds"]["gradients"] > 0


def test_simulate_is_deterministic_and_follows_transformers_default_optimizer(tiny_model_dir):
    request = {"model": str(tiny_model_dir), "settings": TINY_SHAPE}
    first, second = simulate([request, request])
    for key in ("peak_bytes", "phase", "step", "breakdown", "phase_peaks", "snapshots"):
        assert first[key] == second[key], key
    major, minor = (int(x) for x in first["versions"]["torch"].split(".")[:2])
    if (major, minor) >= (2, 8):  # transformers 5 defaults to the fused AdamW there
        assert first["optim"] == "adamw_torch_fused" and first["optimizer_kwargs"].get("fused") is True
    assert first["gradient_checkpointing"] is True


def test_simulate_upcasts_trainable_parameters_to_fp32_unless_pure_bf16(tmp_path):
    model = tiny_config_dir(tmp_path, "qwen2-bf16", TINY_QWEN2_BF16)
    full = {**TINY_SHAPE, "finetuning_type": "full"}
    mixed, pure, lora_pure = simulate([
        {"model": model, "settings": {**full, "bf16": True}},
        {"model": model, "settings": {**full, "pure_bf16": True, "bf16": False}},
        {"model": model, "settings": {**TINY_SHAPE, "pure_bf16": True, "bf16": False}},
    ])
    assert set(mixed["param_dtypes"]) == {"trainable:float32"}
    assert set(pure["param_dtypes"]) == {"trainable:bfloat16"}
    assert mixed["autocast"] == "bfloat16" and pure["autocast"] is None
    assert pure["breakdown"]["trainable"] * 2 == mixed["breakdown"]["trainable"]
    # LoRA under pure_bf16: LLaMA-Factory does not upcast, but PEFT's get_peft_model does
    # (autocast_adapter_dtype=True), so the adapters train in fp32 over the bf16 base.
    assert set(lora_pure["param_dtypes"]) == {"frozen:bfloat16", "trainable:float32"}


def test_simulate_gemma2_gets_eager_attention_without_flash_attn(tmp_path):
    model = tiny_config_dir(tmp_path, "gemma2", TINY_GEMMA2)
    auto, sdpa, fa2 = simulate([
        {"model": model, "settings": {**TINY_SHAPE, "gradient_checkpointing": False}},
        {"model": model, "settings": {**TINY_SHAPE, "gradient_checkpointing": False, "flash_attn": "sdpa"}},
        {"model": model, "settings": {**TINY_SHAPE, "gradient_checkpointing": False, "flash_attn": "fa2"}},
    ])
    # fa2 asked for: LLaMA-Factory's choice as where flash-attn is installed, run as its stand-in
    assert fa2["attn_implementation"] == "flash_attention_2"
    assert fa2["snapshots"]["forward_end_1"]["kinds"]["activations"] == \
        sdpa["snapshots"]["forward_end_1"]["kinds"]["activations"]
    if auto["flash_attn"] == "fa2":
        pytest.skip("flash-attn is installed here: LLaMA-Factory picks it for Gemma 2")
    assert any(item.startswith("flash-attention 2 as SDPA") for item in fa2["stand_ins"])
    assert auto["flash_attn"] == "disabled" and auto["attn_implementation"] == "eager"
    assert sdpa["attn_implementation"] == "sdpa"
    # tied embeddings stay tied through to_empty: counted once
    h, layer = 64, 64 * 64 * 2 + 64 * 32 * 2 + 3 * 64 * 128 + 4 * 64
    assert auto["param_dtypes"]["frozen:bfloat16"] == 512 * h + 2 * layer + h
    # eager keeps the (batch, heads, L, L) scores for backward: more activations than sdpa
    assert auto["snapshots"]["forward_end_1"]["kinds"]["activations"] > \
        sdpa["snapshots"]["forward_end_1"]["kinds"]["activations"]


def test_simulate_bench_harness_runs_one_row():
    done = subprocess.run([sys.executable, str(REPO / "bench" / "memory_simulated.py"), "--only", "qwen2.5-0.5b",
                           "--limit", "1"], capture_output=True, text=True, timeout=600, env=offline_env(), check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "qwen2.5-0.5b" in done.stdout and "1 rows: median |diff|" in done.stdout


def test_simulate_bitsandbytes_stand_ins_hold_packed_weights_and_agree_with_real_tensors(tmp_path):
    model = tiny_config_dir(tmp_path, "qwen2-bf16", TINY_QWEN2_BF16)
    qlora = {**TINY_SHAPE, "quantization_bit": 4, "optim": "paged_adamw_8bit"}
    fake, real, plain = simulate([{"model": model, "settings": qlora}, {"model": model, "settings": qlora, "real": True},
                                  {"model": model, "settings": TINY_SHAPE}])
    assert fake["peak_bytes"] == real["peak_bytes"]
    assert any(s.startswith("bitsandbytes 4-bit weights (NF4 with double quantization): 14 nn.Linear") for s in
               fake["stand_ins"])
    assert any("paged_adamw_8bit" in s for s in fake["stand_ins"])
    linear = 2 * (64 * 64 * 2 + 64 * 32 * 2 + 3 * 64 * 128)  # q, o; k, v; gate, up, down: two layers
    assert fake["param_dtypes"]["frozen:uint8"] == linear // 2  # NF4: two weights a byte
    assert fake["param_dtypes"]["frozen:bfloat16"] == plain["param_dtypes"]["frozen:bfloat16"] - linear
    assert fake["snapshots"]["forward_end_1"]["kinds"]["weights"] < plain["snapshots"]["forward_end_1"]["kinds"]["weights"]
