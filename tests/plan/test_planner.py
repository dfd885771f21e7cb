"""The planner: scenarios S1-S6, properties over random models and hardware, overrides, and
LLaMA-Factory's own argument names."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui.common.profiles import load_profiles
from tui.hardware.profile import devices_from_profile
from tui.models.architecture import Architecture
from tui.models.resolve import ModelInfo, resolve_model
from tui.plan.fitting import SAFETY_MARGIN, capacity_gib
from tui.plan.memory import TrainingShape, estimate, lora_params, weights_bytes
from tui.plan.planner import plan
from tui.plan.values import DataFacts, PlanRequest

BIN = Path(sys.executable).parent
PROFILES = load_profiles(user_dir=Path("/nonexistent-sft-tui-user-dir"))
RECIPES = {p.name: p.data for p in PROFILES.of("recipes")}


def request(hardware, model, data=None, gpus=None, recipe=None, overrides=None):
    devices = devices_from_profile(PROFILES.get("hardware", hardware).data, gpus)
    return PlanRequest(devices=devices, model=resolve_model(model, PROFILES), recipes=RECIPES, recipe=recipe,
                       data=data, overrides=overrides or {})


def effective(p) -> int:
    s = p.settings
    return s["per_device_train_batch_size"] * s["gradient_accumulation_steps"] * p.n_gpus * p.nodes


# --- scenarios (SCENARIOS.md): forced choices exactly, the rest by their reasons ------------------


def test_s1_qwen14b_on_a_16gb_rtx4080():
    p = plan(request("rtx4080-16g", "Qwen/Qwen2.5-Coder-14B-Instruct", DataFacts(10_000, 0, 1800, 2048)))
    s = p.settings
    assert (s["quantization_bit"], s["bf16"], s["fp16"], s["disable_gradient_checkpointing"]) == (4, True, False, False)
    assert p.reasons["quantization_bit"].kind == "fitted" and p.reasons["bf16"].kind == "forced"
    assert p.fits and s["template"] == "qwen"
    # the seed's qlora soft settings: r16 a32, lr 2e-4, effective batch 16
    assert (p.recipe, s["lora_rank"], s["lora_alpha"], s["learning_rate"]) == ("qlora", 16, 32, 2e-4)
    assert effective(p) == 16
    # "as large as memory allows": the cutoff is fitted to memory, and says so
    assert p.reasons["cutoff_len"].kind in ("default", "fitted")
    if p.reasons["cutoff_len"].kind == "fitted":
        assert any("cutoff_len was shortened" in w for w in p.warnings)


def test_s2_small_dataset_on_a_12gb_rtx3060_and_on_a_cpu():
    data = DataFacts(29, 1, 700, 768)
    for hardware in ("rtx3060-12g", "cpu"):
        p = plan(request(hardware, "Qwen/Qwen2.5-Coder-0.5B", data))
        s = p.settings
        assert s["quantization_bit"] is None and p.fits
        assert p.recipe == "small-dataset" and p.reasons["recipe"].kind == "default"
        assert (s["lora_rank"], s["lora_alpha"], s["lora_dropout"], s["learning_rate"], s["num_train_epochs"]) == (32, 64, 0.1, 3e-5, 5)
        assert (s["lr_scheduler_type"], s["warmup_steps"]) == ("cosine", 10)
        assert effective(p) == 4
        assert p.steps == 40  # as transformers counts: ceil(29 rows / 4) = 8 steps an epoch, x 5 epochs
        assert s["eval_strategy"] == "steps"  # the separate val.jsonl
        assert s["logging_steps"] <= p.steps // 20
    cpu = plan(request("cpu", "Qwen/Qwen2.5-Coder-0.5B", data)).settings
    assert (cpu["bf16"], cpu["fp16"]) == (False, False)


def test_s3_standard_lora_for_3k_rows():
    p = plan(request("rtx4090-24g", "Qwen/Qwen2.5-Coder-0.5B", DataFacts(2964, 163, 900, 1024)))
    s = p.settings
    assert s["quantization_bit"] is None and p.recipe == "standard-lora"
    assert (s["lora_rank"], s["lora_alpha"], s["learning_rate"], s["warmup_ratio"]) == (64, 128, 5e-5, 0.1)
    assert effective(p) == 16


def test_s4_qwen14b_on_24gb_is_4bit():
    p = plan(request("rtx3090-24g", "Qwen/Qwen2.5-Coder-14B-Instruct", DataFacts(10_550, 0, 1800, 2048)))
    assert p.settings["quantization_bit"] == 4 and p.settings["bf16"] is True and p.fits
    assert p.settings["flash_attn"] == "auto" and "fa2 is available" in p.reasons["flash_attn"].text
    assert effective(p) == 16


def test_s5_qwen3_4b_needs_no_quantization_on_24gb():
    p = plan(request("rtx4090-24g", "Qwen/Qwen3-4B", DataFacts(5000, 0, 3500, 4096)))
    s = p.settings
    assert s["quantization_bit"] is None and s["bf16"] is True and p.fits
    assert s["disable_gradient_checkpointing"] is False and s["template"] == "qwen3"
    assert s["cutoff_len"] == 4096


def test_s6_two_mi50s_fp32_no_flash_attention_no_bitsandbytes():
    p = plan(request("mi50-32g", "Qwen/Qwen2.5-7B-Instruct", DataFacts(5600, 0, 900, 1024), gpus=2))
    s = p.settings
    assert (s["bf16"], s["fp16"], s["flash_attn"], s["quantization_bit"]) == (False, False, "disabled", None)
    assert all(p.reasons[k].kind == "forced" for k in ("bf16", "fp16", "flash_attn", "quantization_bit"))
    assert "gfx906" in p.reasons["fp16"].text and "bitsandbytes" in p.reasons["quantization_bit"].text
    assert p.n_gpus == 2 and p.fits
    # fp32 weights of 7.6B (28 GiB) do not leave room on one 32 GB card: sharded over both
    assert s["deepspeed"] == "ds_z3.json" and p.zero_stage == 3
    assert s["disable_gradient_checkpointing"] is False


def test_nothing_fits_says_what_would():
    p = plan(request("rtx4090-24g", "llama-3.1-70b", DataFacts(5000, 0, 1000, 1024)))
    assert not p.fits
    assert p.settings["quantization_bit"] == 4  # the closest plan
    assert any(w.startswith("does not fit") for w in p.warnings)
    assert any("more GPUs" in s for s in p.suggestions) and any("GiB" in s for s in p.suggestions)


def test_no_dataset_plans_with_the_default_cutoff_and_says_so():
    p = plan(request("a100-80g", "qwen2.5-7b"))
    assert p.settings["cutoff_len"] == 2048 and p.steps is None
    assert "no dataset statistics" in p.seq_len_source
    assert any("number of optimizer steps is unknown" in w for w in p.warnings)


def test_a_busy_gpu_is_planned_with_its_free_memory():
    devices = devices_from_profile(PROFILES.get("hardware", "rtx4090-24g").data)
    devices[0].memory_free_mib, devices[0].memory_used_mib, devices[0].free = 4096, 20_468, False
    req = PlanRequest(devices=devices, model=resolve_model("qwen2.5-7b", PROFILES), recipes=RECIPES)
    p = plan(req)
    assert p.capacity_gib == 4.0
    assert any("in use by other processes" in w for w in p.warnings)


def test_flash_attention_2_only_where_eligible():
    fa2 = {"flash_attn": "fa2"}
    assert plan(request("a100-80g", "qwen2.5-7b", overrides=fa2)).settings["flash_attn"] == "fa2"
    t4 = plan(request("t4-16g", "qwen2.5-0.5b", overrides=fa2))
    assert t4.settings["flash_attn"] == "auto" and "needs NVIDIA compute capability 8.0" in t4.reasons["flash_attn"].text
    assert (t4.settings["bf16"], t4.settings["fp16"]) == (False, True)


# --- overrides ---------------------------------------------------------------------------------------


def test_a_user_override_is_kept_re_estimated_and_warned_about():
    p = plan(request("rtx3060-12g", "qwen2.5-7b", DataFacts(5000, 0, 2048, 2048), overrides={"per_device_train_batch_size": 16}))
    assert p.settings["per_device_train_batch_size"] == 16
    reason = p.reasons["per_device_train_batch_size"]
    assert reason.kind == "user" and "sft-tui would choose" in reason.text
    assert not p.fits
    assert "your --set per_device_train_batch_size=16 is part of a plan that no longer fits" in p.warnings
    ok = plan(request("a100-80g", "qwen2.5-0.5b", overrides={"learning_rate": 1e-4, "quantization_bit": 4}))
    assert ok.settings["learning_rate"] == 1e-4 and ok.settings["quantization_bit"] == 4
    assert ok.reasons["quantization_bit"].kind == "user"


# --- properties ------------------------------------------------------------------------------------

HARDWARE = sorted(PROFILES.names("hardware"))


@st.composite
def architectures(draw):
    heads = draw(st.sampled_from([8, 12, 16, 32, 40, 64]))
    head_dim = draw(st.sampled_from([64, 128]))
    return Architecture(
        model_type=draw(st.sampled_from(["qwen2", "llama", "qwen3"])),
        hidden_size=heads * head_dim,
        num_hidden_layers=draw(st.integers(2, 80)),
        num_attention_heads=heads,
        num_key_value_heads=draw(st.sampled_from([h for h in (1, 2, 4, 8) if heads % h == 0])),
        intermediate_size=draw(st.integers(1, 40)) * 512,
        vocab_size=draw(st.sampled_from([32000, 128256, 151936])),
        tie_word_embeddings=draw(st.booleans()),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    arch=architectures(),
    hardware=st.sampled_from(HARDWARE),
    gpus=st.integers(1, 4),
    recipe=st.sampled_from(sorted(RECIPES)),
    rows=st.integers(10, 100_000),
    longest=st.integers(16, 8192),
)
def test_plan_properties(arch, hardware, gpus, recipe, rows, longest):
    profile = PROFILES.get("hardware", hardware).data
    devices = devices_from_profile(profile, gpus if profile["gpus"] else None)
    model = ModelInfo(name="random", source="profile", model_name_or_path="org/random", architecture=arch, template="qwen")
    cutoff = min(8192, (longest + 255) // 256 * 256)
    p = plan(PlanRequest(devices=devices, model=model, recipes=RECIPES, recipe=recipe, data=DataFacts(rows, 0, longest, cutoff)))
    s = p.settings
    # bf16 never where the hardware lacks it; 4-bit never without bitsandbytes
    assert not (s["bf16"] and not all(d.bf16 for d in devices))
    assert not (s["fp16"] and not all(d.fp16 for d in devices))
    assert not (s["quantization_bit"] is not None and not all(d.bitsandbytes for d in devices))
    # the effective batch is the recipe's (exactly when the devices divide it)
    wanted = RECIPES[recipe]["effective_batch_size"]
    n = p.n_gpus
    if wanted % n == 0:
        assert effective(p) == wanted
    else:
        assert effective(p) >= wanted
    if p.fits:
        # the chosen micro-batch fits; the next size up that keeps the effective batch exact does not
        batch = s["per_device_train_batch_size"]
        shape = TrainingShape(
            arch=arch, quantization_bit=s["quantization_bit"], compute_bytes=2 if (s["bf16"] or s["fp16"]) else 4,
            lora_rank=s["lora_rank"], lora_target=s["lora_target"], lora_dropout=s["lora_dropout"],
            micro_batch=batch, seq_len=p.seq_len, gradient_checkpointing=not s["disable_gradient_checkpointing"],
            attention="eager" if s["flash_attn"] == "disabled" else "sdpa", n_gpus=n, zero_stage=p.zero_stage,
            offload=p.offload, vendor=devices[0].vendor,
        )
        usable = capacity_gib(devices) * (1 - SAFETY_MARGIN)
        assert estimate(shape).per_device_gib <= usable + 1e-9
        per_device = -(-wanted // n)
        bigger = [b for b in range(batch + 1, per_device + 1) if per_device % b == 0]
        if bigger:
            reason = p.reasons["per_device_train_batch_size"].text
            assert "largest that fits" in reason
            with_ckpt = replace(shape, micro_batch=bigger[0], gradient_checkpointing=True)
            assert estimate(with_ckpt).per_device_gib > usable
    else:
        assert p.suggestions and p.warnings[0].startswith("does not fit")


# --- memory arithmetic ------------------------------------------------------------------------------


def test_quantized_weights_keep_embeddings_in_16_bit():
    arch = resolve_model("qwen2.5-14b", PROFILES).architecture
    embeddings = arch.embedding_params + arch.lm_head_params
    assert embeddings == 2 * 152064 * 5120  # 1.56B params: not quantized
    full = weights_bytes(TrainingShape(arch))
    four = weights_bytes(TrainingShape(arch, quantization_bit=4))
    eight = weights_bytes(TrainingShape(arch, quantization_bit=8))
    assert full == arch.param_count() * 2
    assert four < eight < full
    assert four > embeddings * 2  # the 16-bit embeddings alone are 2.9 GiB


def test_lora_parameter_count_matches_peft_arithmetic():
    arch = resolve_model("qwen2.5-0.5b", PROFILES).architecture
    # per layer, r x (in + out): q 896+896, k 896+128, v 896+128, o 896+896, gate/up 896+4864, down 4864+896
    per_layer = 8 * ((896 + 896) * 2 + (896 + 128) * 2 + (896 + 4864) * 3)
    assert lora_params(arch, 8, "all") == 24 * per_layer
    assert lora_params(arch, 8, "q_proj,v_proj") == 24 * 8 * ((896 + 896) + (896 + 128))


def test_estimate_grows_with_batch_and_sequence_and_shrinks_with_checkpointing_and_sharding():
    arch = resolve_model("qwen2.5-7b", PROFILES).architecture
    base = TrainingShape(arch, micro_batch=2, seq_len=1024)
    est = estimate(base).per_device_gib
    assert estimate(replace(base, micro_batch=4)).per_device_gib > est
    assert estimate(replace(base, seq_len=2048)).per_device_gib > est
    assert estimate(replace(base, gradient_checkpointing=False)).per_device_gib > est
    assert estimate(replace(base, n_gpus=4, zero_stage=3)).per_device_gib < est
    eager = estimate(replace(base, attention="eager", seq_len=4096, gradient_checkpointing=False))
    sdpa = estimate(replace(base, seq_len=4096, gradient_checkpointing=False))
    assert eager.breakdown["activations"] > sdpa.breakdown["activations"]


# --- against the installed LLaMA-Factory, and through the CLI -----------------------------------


def llamafactory_argument_names() -> set[str]:
    code = (
        "import dataclasses, json\n"
        "from llamafactory.hparams import DataArguments, FinetuningArguments, GeneratingArguments, ModelArguments, TrainingArguments\n"
        "names = set()\n"
        "for cls in (ModelArguments, DataArguments, FinetuningArguments, TrainingArguments, GeneratingArguments):\n"
        "    names |= {f.name for f in dataclasses.fields(cls)}\n"
        "print(json.dumps(sorted(names)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.llamafactory
def test_every_setting_is_a_llamafactory_argument():
    names = llamafactory_argument_names()
    plans = [
        plan(request("rtx4080-16g", "qwen2.5-14b", DataFacts(10_000, 0, 1800, 2048))),
        plan(request("mi50-32g", "qwen2.5-7b", DataFacts(5600, 0, 900, 1024), gpus=2)),
        plan(request("cpu", "qwen2.5-0.5b", DataFacts(29, 1, 300, 512))),
        plan(request("a100-80g", "qwen3-4b", DataFacts(100, 0, 300, 512), recipe="smoke-test", overrides={"pure_bf16": True})),
        plan(request("rtx4090-24g", "llama-3.1-70b", DataFacts(5000, 0, 1000, 1024), gpus=4)),
    ]
    for p in plans:
        unknown = set(p.settings) - names
        assert not unknown, unknown


def run_plan(*args):
    return subprocess.run([str(BIN / "sft-tui"), "plan", *map(str, args)], capture_output=True, text=True, timeout=120)


def test_plan_cli_json_and_exit_codes(tmp_path):
    s2 = tmp_path / "s2"
    s2.mkdir()
    row = {"instruction": "Write a counter in Chisel.", "input": "", "output": "val r = RegInit(0.U(8.W))"}
    (s2 / "train.jsonl").write_text("".join(json.dumps({**row, "instruction": f"{row['instruction']} {i}"}) + "\n" for i in range(29)))
    (s2 / "val.jsonl").write_text(json.dumps(row) + "\n")
    done = run_plan("--hardware", "rtx3060-12g", "--model", "Qwen/Qwen2.5-Coder-0.5B", "--dataset", s2, "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out) >= {"settings", "estimate", "reasons", "steps", "warnings"}
    assert set(out["estimate"]) >= {"per_device_gib", "capacity_gib", "fits", "breakdown"}
    assert out["settings"]["quantization_bit"] is None and out["settings"]["bf16"] is True
    assert out["reasons"]["bf16"]["kind"] == "forced" and out["reasons"]["bf16"]["rule"] == "decide_precision"
    assert out["steps"] == 40 and out["settings"]["eval_strategy"] == "steps"
    assert "longest row" in out["estimate"]["seq_len_source"]

    text = run_plan("--hardware", "rtx4090-24g", "--model", "llama-3.1-70b")
    assert text.returncode == 1
    assert "DOES NOT FIT" in text.stdout and "What would fit:" in text.stdout

    user = run_plan("--hardware", "rtx3060-12g", "--model", "qwen2.5-0.5b", "--set", "learning_rate=1e-4", "--set", "lora_rank=8", "--json")
    settings_ = json.loads(user.stdout)["settings"]
    assert settings_["learning_rate"] == 1e-4 and settings_["lora_rank"] == 8

    for bad, message in [(("--hardware", "gtx-9999", "--model", "qwen2.5-0.5b"), "unknown hardware 'gtx-9999'"),
                         (("--hardware", "cpu", "--model", tmp_path / "nomodel"), "no such model directory"),
                         (("--hardware", "cpu", "--model", "qwen2.5-0.5b", "--recipe", "yolo"), "unknown recipe 'yolo'"),
                         (("--hardware", "cpu", "--model", "qwen2.5-0.5b", "--set", "oops"), "expected KEY=VALUE")]:
        done = run_plan(*bad)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_plan_with_the_tiny_model_directory(tiny_model_dir):
    done = run_plan("--hardware", "cpu", "--model", tiny_model_dir, "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["settings"]["model_name_or_path"] == str(tiny_model_dir) and out["settings"]["template"] == "qwen"
