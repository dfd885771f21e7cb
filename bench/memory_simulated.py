"""The analytic memory estimate against the simulated training step, on many configurations.
Prints figures; asserts nothing.

    python bench/memory_simulated.py                 # every row (minutes: big models take 10-60 s each)
    python bench/memory_simulated.py --only qwen3    # rows whose model name contains the text
    python bench/memory_simulated.py --json out.json

Each row writes a config.json from a model profile's `architecture` (profiles/models/: the
published values; what a profile leaves out is transformers' default) with dtype bfloat16 (the
published checkpoints' dtype, which LLaMA-Factory loads), and one training step at the row's shape
is simulated by tui/lf/simulate_step.py (the training environment's python: LLaMA-Factory's
own model building on the meta device, two optimizer steps on fake tensors). All rows go to one
process, so `s` is the row's own time, without the imports (about 4 s once). Beside it stands
tui/plan/memory.py's analytic figure for the same shape as the planner sees it (attention: sdpa
unless flash_attn is disabled), without its overhead term (context and fragmentation, which no
simulation sees): `diff` is analytic / simulated - 1, negative where the analytic model is short.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tui.common.profiles import load_profiles
from tui.models.architecture import Architecture
from tui.plan.memory import GIB, TrainingShape, estimate

SCRIPT = REPO / "tui" / "lf" / "simulate_step.py"
SHORT_ATTN = {"flash_attention_2": "fa2"}

# Models without a profile: config.json from the published values (Qwen/Qwen2-VL-2B-Instruct).
# Its rows take a text-only batch (no image tokens); the vision tower's weights are held, frozen.
CONFIGS = {
    "qwen2-vl-2b": {
        "architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl", "hidden_size": 1536,
        "intermediate_size": 8960, "num_hidden_layers": 28, "num_attention_heads": 12, "num_key_value_heads": 2,
        "vocab_size": 151936, "tie_word_embeddings": True, "max_position_embeddings": 32768, "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0, "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
        "vision_config": {"depth": 32, "embed_dim": 1280, "hidden_size": 1536, "mlp_ratio": 4, "num_heads": 16,
                          "in_chans": 3, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2},
        "image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652,
    },
}

# (model profile or CONFIGS name, finetuning_type, extra settings, micro-batch, tokens)
LORA, FULL, FREEZE = "lora", "full", "freeze"
NO_GC = {"gradient_checkpointing": False}
PURE = {"pure_bf16": True, "bf16": False}
EAGER = {"flash_attn": "disabled"}
SDPA = {"flash_attn": "sdpa"}
FA2 = {"flash_attn": "fa2"}  # a stand-in where flash-attn is not installed
QLORA = {"quantization_bit": 4}
PAGED = {"optim": "paged_adamw_8bit"}
ROWS = [
    ("qwen2.5-0.5b", LORA, {}, 1, 1024),
    ("qwen2.5-0.5b", FULL, {}, 4, 1024),
    ("qwen2.5-0.5b", FULL, PURE, 4, 1024),
    ("qwen3-0.6b", FULL, {}, 4, 2048),
    ("llama-3.2-1b", LORA, NO_GC, 1, 2048),
    ("llama-3.2-1b", FULL, {}, 2, 2048),
    ("llama-3.2-1b", LORA, {}, 16, 512),
    ("llama-3.2-1b", FREEZE, NO_GC, 4, 1024),
    ("gemma-3-1b", LORA, {}, 4, 1024),
    ("qwen2.5-1.5b", LORA, NO_GC, 2, 2048),
    ("qwen2.5-1.5b", FULL, {**PURE, **NO_GC}, 1, 1024),
    ("gemma-2-2b", LORA, {}, 1, 2048),
    ("gemma-2-2b", LORA, NO_GC, 1, 2048),
    ("gemma-2-2b", LORA, {**NO_GC, **SDPA}, 1, 2048),
    ("qwen2.5-3b", FULL, {}, 1, 2048),
    ("qwen2.5-3b", LORA, {}, 8, 1024),
    ("llama-3.2-3b", LORA, {}, 4, 2048),
    ("phi-3.5-mini", LORA, {}, 1, 4096),
    ("phi-3.5-mini", LORA, NO_GC, 1, 1024),
    ("qwen3-4b", LORA, {}, 2, 2048),
    ("qwen2.5-7b", LORA, {}, 1, 2048),
    ("qwen2.5-7b", LORA, {}, 1, 8192),
    ("qwen2.5-7b", FREEZE, {}, 1, 2048),
    ("mistral-7b-v0.3", LORA, {}, 2, 2048),
    ("llama-3.1-8b", LORA, {}, 1, 4096),
    ("llama-3.1-8b", LORA, NO_GC, 1, 1024),
    ("qwen3-8b", LORA, NO_GC, 1, 2048),
    ("qwen3-8b", LORA, EAGER, 1, 8192),
    ("gemma-2-9b", LORA, NO_GC, 1, 2048),
    ("gemma-2-9b", LORA, {}, 1, 4096),
    ("glm-4-9b", LORA, {}, 1, 2048),
    ("qwen2.5-14b", LORA, {}, 1, 8192),
    ("phi-4", LORA, {}, 1, 2048),
    ("qwen3-30b-a3b", LORA, {}, 1, 2048),
    ("gemma-2-9b", LORA, {**NO_GC, **FA2}, 1, 2048),
    ("qwen2.5-7b", LORA, QLORA, 1, 2048),
    ("llama-3.1-8b", LORA, {**QLORA, **PAGED}, 1, 4096),
    ("qwen2.5-14b", LORA, QLORA, 1, 4096),
    ("qwen2.5-32b", LORA, {**QLORA, **PAGED}, 1, 2048),
    ("mixtral-8x7b", LORA, QLORA, 1, 2048),
    ("llama-3.2-1b", FULL, {"optim": "adamw_8bit"}, 4, 1024),
    ("qwen2-vl-2b", LORA, {}, 1, 2048),
    ("qwen2-vl-2b", LORA, NO_GC, 2, 1024),
]


def settings_of(method: str, extra: dict, batch: int, tokens: int) -> dict:
    return {"finetuning_type": method, "per_device_train_batch_size": batch, "cutoff_len": tokens,
            "bf16": True, "gradient_checkpointing": True, "flash_attn": "auto", **extra}


def analytic_gib(arch: Architecture, s: dict) -> float:
    shape = TrainingShape(
        arch=arch, finetuning_type=s["finetuning_type"], compute_bytes=2, pure_bf16=bool(s.get("pure_bf16")),
        micro_batch=s["per_device_train_batch_size"], seq_len=s["cutoff_len"],
        gradient_checkpointing=s["gradient_checkpointing"],
        attention={"disabled": "eager", "fa2": "fa2"}.get(s["flash_attn"], "sdpa"),
        quantization_bit=s.get("quantization_bit"), optim=s.get("optim") or "adamw_torch",
    )
    est = estimate(shape)
    return (est.per_device_gib - est.breakdown.get("overhead", 0.0))


def architecture(model: str, profiles: dict) -> Architecture:
    """The architecture as the planner sees it: a profile's counts, or for a config.json the
    meta-device facts where the training environment gives them (as for a local or hub model)."""
    if model not in CONFIGS:
        return Architecture.from_config(profiles[model]["architecture"])
    from tui.models.facts import facts_for

    arch = Architecture.from_config(CONFIGS[model])
    facts, _ = facts_for(CONFIGS[model])
    return facts.apply(arch) if facts is not None else arch


def label(method: str, extra: dict, s: dict) -> str:
    parts = [method, "pure-bf16" if s.get("pure_bf16") else "bf16+fp32", "gc" if s["gradient_checkpointing"] else "no-gc"]
    if "flash_attn" in extra:
        parts.append({"disabled": "eager", "sdpa": "sdpa"}.get(extra["flash_attn"], extra["flash_attn"]))
    if s.get("quantization_bit"):
        parts[0] = f"qlora{s['quantization_bit']}"
    if s.get("optim"):
        parts.append(s["optim"])
    return " ".join(parts)


def model_folder(tmp: str, i: int, model: str, profiles: dict) -> str:
    """A folder holding the row's config.json (CONFIGS' or the profile's architecture, bf16)."""
    folder = Path(tmp) / f"{i}-{model}"
    folder.mkdir()
    config = {"dtype": "bfloat16", **(CONFIGS.get(model) or profiles[model]["architecture"])}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return str(folder)


def start_simulations(python: str, requests: list[dict]) -> subprocess.Popen:
    """One simulate_step.py process for all the requests: its answers come a line each, in order."""
    proc = subprocess.Popen([python, str(SCRIPT), "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(requests))
    proc.stdin.close()
    return proc


def next_answer(proc: subprocess.Popen) -> dict:
    """The next request's answer (its JSON line), or an error once the process has ended."""
    assert proc.stdout is not None
    line = ""
    while not line.startswith("{"):
        line = proc.stdout.readline()
        if not line:
            return {"error": "the simulation process ended"}
    return json.loads(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="rows whose model name and setting (e.g. 'qlora4') contain this")
    parser.add_argument("--limit", type=int, help="the first N rows only")
    parser.add_argument("--python", default=sys.executable, help="the training environment's python")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    profiles = {p.name: p.data for p in load_profiles().of("models")}
    rows = [r for r in ROWS if not args.only or args.only in f"{r[0]} {label(r[1], r[2], settings_of(*r[1:]))}"]
    rows = rows[:args.limit]
    with tempfile.TemporaryDirectory(prefix="sft-tui-bench-sim-") as tmp:
        requests = []
        for i, (model, method, extra, batch, tokens) in enumerate(rows):
            folder = model_folder(tmp, i, model, profiles)
            requests.append({"model": folder, "settings": settings_of(method, extra, batch, tokens)})
        proc = start_simulations(args.python, requests)
        header = (f"{'model':<16} {'method':<38} {'bs x L':>9} {'attn':>6} {'analytic':>9} {'simulated':>9} "
                  f"{'diff':>7} {'phase':>9} {'s':>6}")
        print(header)
        print("-" * len(header))
        results, errors = [], []
        for (model, method, extra, batch, tokens), request in zip(rows, requests, strict=True):
            answer = next_answer(proc)
            s = request["settings"]
            name = label(method, extra, s)
            if "error" in answer:
                errors.append((model, name, answer["error"]))
                print(f"{model:<16} {name:<38} {batch:>4}x{tokens:<4} error: {answer['error'][:80]}", flush=True)
                continue
            ana = analytic_gib(architecture(model, profiles), s)
            sim = answer["peak_bytes"] / GIB
            diff = ana / sim - 1
            results.append({"model": model, "method": name, "batch": batch, "tokens": tokens,
                            "attn": answer["attn_implementation"], "analytic_gib": round(ana, 3),
                            "simulated_gib": round(sim, 3), "diff": round(diff, 4), "phase": answer["phase"],
                            "seconds": answer["seconds"], "breakdown_gib": {k: round(v / GIB, 3) for k, v in
                                                                            answer["breakdown"].items()}})
            print(f"{model:<16} {name:<38} {batch:>4}x{tokens:<4} {SHORT_ATTN.get(answer['attn_implementation'], answer['attn_implementation']):>6} {ana:>9.2f} "
                  f"{sim:>9.2f} {diff:>+7.1%} {answer['phase']:>9} {answer['seconds']:>6.1f}", flush=True)
        proc.wait()
    if results:
        diffs = [abs(r["diff"]) for r in results]
        short = [r for r in results if r["diff"] < -0.10]
        print(f"\n{len(results)} rows: median |diff| {statistics.median(diffs):.1%}, "
              f"from {min(r['diff'] for r in results):+.1%} to {max(r['diff'] for r in results):+.1%}; "
              f"{len(short)} analytic figures short by more than 10 %; simulation time median "
              f"{statistics.median(r['seconds'] for r in results):.1f} s, max {max(r['seconds'] for r in results):.1f} s")
    if errors:
        print(f"{len(errors)} rows could not be simulated")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": results, "errors": errors}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
