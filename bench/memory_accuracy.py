"""Estimated vs measured peak GPU memory of real LLaMA-Factory training steps. Prints figures.

    python bench/memory_accuracy.py            # the GPU matrix (needs CUDA, bitsandbytes for 4-bit)
    python bench/memory_accuracy.py --tiny     # one tiny-model case on the CPU: proves the harness

For each case it builds a model with random weights from a profile's architecture (no hub
access), writes rows longer than the case's sequence length so that every row is truncated to
exactly `cutoff_len`, runs a few steps of `llamafactory-cli train` with RECORD_VRAM=1 (which
writes vram_allocated / vram_reserved into trainer_log.jsonl), and prints tui.memory's estimate
next to the measured peak (reserved: what the allocator took from the card) and the error.

Cases: models qwen2.5-0.5b, llama-3.2-3b, qwen2.5-7b; LoRA bf16 and QLoRA 4-bit; sequences
512 and 2048; micro-batches 1, 2, 4. Then, for cards of 16 and 24 GB emulated with
torch.cuda.set_per_process_memory_fraction, the planner's recommended plan is run, and the
report says whether it ran without running out of memory.
Targets: every case within +-10 % (or 1 GiB), no OOM, recommended micro-batch >= 80 % of the
largest that ran. On the CPU, measured memory is n/a (LLaMA-Factory records 0 there).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.llamafactory import build_tiny_model, offline_env  # noqa: E402
from tui.common.profiles import load_profiles  # noqa: E402
from tui.hardware.device import Device  # noqa: E402
from tui.models.architecture import Architecture
from tui.models.resolve import read_local_model  # noqa: E402
from tui.plan.memory import TrainingShape, estimate  # noqa: E402
from tui.plan.planner import plan  # noqa: E402
from tui.plan.values import DataFacts, PlanRequest

GIB = 1024**3
STEPS = 3
TOLERANCE = 0.10
TOLERANCE_GIB = 1.0

# Runs LLaMA-Factory in-process after capping the CUDA allocator, to emulate a smaller card.
CAPPED_TRAIN = """
import json, sys
import torch
fraction = float(sys.argv[2])
if fraction < 1 and torch.cuda.is_available():
    torch.cuda.set_per_process_memory_fraction(fraction)
from llamafactory.train.tuner import run_exp
run_exp(json.load(open(sys.argv[1])))
"""

BUILD_MODEL = """
import json, sys, torch
from transformers import AutoConfig, AutoModelForCausalLM
arch, out = json.loads(sys.argv[1]), sys.argv[2]
config = AutoConfig.for_model(arch.pop("model_type"), **arch)
with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
    model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)
model.save_pretrained(out)
"""


@dataclass
class Case:
    model: str
    quantization_bit: int | None
    seq_len: int
    micro_batch: int
    capacity_fraction: float = 1.0


def gpu_total_gib() -> float | None:
    code = "import torch; print(torch.cuda.get_device_properties(0).total_memory if torch.cuda.is_available() else 0)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
    return int(out) / GIB if out and out != "0" else None


def model_dir(name: str, arch: Architecture, work: Path, tokenizer_dir: Path) -> Path:
    out = work / "models" / name
    if not (out / "config.json").exists():
        fields = {k: v for k, v in arch.__dict__.items() if v is not None}
        subprocess.run([sys.executable, "-c", BUILD_MODEL, json.dumps(fields), str(out)], check=True, env=offline_env())
        for f in tokenizer_dir.glob("tokenizer*"):
            shutil.copy(f, out / f.name)
    return out


def dataset_dir(work: Path, seq_len: int, rows: int = 64) -> Path:
    """Rows far longer than seq_len: LLaMA-Factory truncates every one to exactly cutoff_len."""
    out = work / f"data-{seq_len}"
    out.mkdir(parents=True, exist_ok=True)
    text = " ".join(["the quick brown fox jumps over the lazy dog"] * (seq_len // 2 + 8))
    with (out / "rows.jsonl").open("w") as f:
        for i in range(rows):
            f.write(json.dumps({"instruction": f"{i} {text}", "input": "", "output": text}) + "\n")
    info = {"rows": {"file_name": str(out / "rows.jsonl"), "columns": {"prompt": "instruction", "query": "input", "response": "output"}}}
    (out / "dataset_info.json").write_text(json.dumps(info))
    return out


def run_case(case: Case, model_path: Path, data: Path, work: Path, settings: dict) -> dict:
    out = work / "runs" / f"{case.model}-q{case.quantization_bit}-s{case.seq_len}-b{case.micro_batch}-f{case.capacity_fraction}"
    config = {
        "model_name_or_path": str(model_path), "stage": "sft", "do_train": True, "finetuning_type": "lora",
        "lora_target": "all", "dataset": "rows", "dataset_dir": str(data), "template": "qwen",
        "cutoff_len": case.seq_len, "output_dir": str(out), "overwrite_output_dir": True,
        "max_steps": STEPS, "logging_steps": 1, "save_strategy": "no", "report_to": "none",
        "per_device_train_batch_size": case.micro_batch, **settings,
    }
    if case.quantization_bit:
        config["quantization_bit"] = case.quantization_bit
    out.mkdir(parents=True, exist_ok=True)
    (out / "args.json").write_text(json.dumps(config))
    started = time.time()
    done = subprocess.run([sys.executable, "-c", CAPPED_TRAIN, str(out / "args.json"), str(case.capacity_fraction)],
                          capture_output=True, text=True, env=offline_env(RECORD_VRAM="1"))
    log = done.stdout + done.stderr
    oom = "out of memory" in log.lower()
    rows = []
    trainer_log = out / "trainer_log.jsonl"
    if trainer_log.exists():
        rows = [json.loads(line) for line in trainer_log.read_text().splitlines() if line.strip()]
    reserved = max((r.get("vram_reserved", 0) for r in rows), default=0)
    allocated = max((r.get("vram_allocated", 0) for r in rows), default=0)
    return {"ok": done.returncode == 0, "oom": oom, "reserved_gib": reserved, "allocated_gib": allocated,
            "seconds": time.time() - started, "tail": log[-800:] if done.returncode else ""}


def estimate_for(case: Case, arch: Architecture, compute_bytes: int, vendor: str) -> float:
    shape = TrainingShape(arch=arch, quantization_bit=case.quantization_bit, compute_bytes=compute_bytes, lora_rank=8,
                          micro_batch=case.micro_batch, seq_len=case.seq_len, vendor=vendor)
    return estimate(shape).per_device_gib


def report_line(case: Case, est: float, result: dict) -> str:
    quant = f"{case.quantization_bit}-bit" if case.quantization_bit else "16-bit"
    label = f"{case.model:<14} {quant:<6} seq {case.seq_len:>5} batch {case.micro_batch}"
    if not result["ok"]:
        return f"  {label}  estimate {est:6.2f} GiB  run FAILED{' (OOM)' if result['oom'] else ''}"
    if result["reserved_gib"] <= 0:
        return f"  {label}  estimate {est:6.2f} GiB  measured n/a (no GPU: LLaMA-Factory records 0)  ran in {result['seconds']:.0f} s"
    measured = result["reserved_gib"]
    error = (est - measured) / measured
    within = abs(error) <= TOLERANCE or abs(est - measured) <= TOLERANCE_GIB
    return (f"  {label}  estimate {est:6.2f} GiB  measured {measured:6.2f} GiB (allocated {result['allocated_gib']:.2f})"
            f"  error {error:+.1%}  {'ok' if within else 'OUTSIDE +-10 %'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="one tiny-model case on the CPU (no GPU needed)")
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="sft-tui-memory-"))
    tokenizer = build_tiny_model(work / "tiny") if not (work / "tiny" / "config.json").exists() else work / "tiny"
    profiles = load_profiles()
    total = gpu_total_gib()
    print(f"memory accuracy: {'GPU with %.1f GiB' % total if total else 'no GPU (CPU run)'}; {STEPS} steps per case")

    if args.tiny or total is None:
        arch = read_local_model(tokenizer, profiles).architecture
        case = Case("tiny-qwen2", None, 128, 2)
        result = run_case(case, tokenizer, dataset_dir(work, case.seq_len), work, {"bf16": False})
        print(report_line(case, estimate_for(case, arch, 4, "cpu"), result))
        if not result["ok"]:
            print(result["tail"])
            sys.exit(1)
        return

    from tui.models.resolve import resolve_model

    for name in ("qwen2.5-0.5b", "llama-3.2-3b", "qwen2.5-7b"):
        arch = resolve_model(name, profiles).architecture
        path = model_dir(name, arch, work, tokenizer)
        for quant in (None, 4):
            for seq in (512, 2048):
                data = dataset_dir(work, seq)
                for batch in (1, 2, 4):
                    case = Case(name, quant, seq, batch)
                    print(report_line(case, estimate_for(case, arch, 2, "nvidia"), run_case(case, path, data, work, {"bf16": True})), flush=True)
        for card_gib in (16, 24):
            fraction = min(1.0, card_gib / total)
            device = Device(index=0, vendor="nvidia", name=f"emulated {card_gib} GB", memory_total_mib=int(card_gib * 1024 * 0.98),
                            memory_free_mib=int(card_gib * 1024 * 0.98), memory_used_mib=0, bf16=True, fp16=True,
                            flash_attn2=True, bitsandbytes=True, free=True, compute_capability="9.0")
            p = plan(PlanRequest(devices=[device], model=resolve_model(name, profiles), recipes={r.name: r.data for r in profiles.of("recipes")},
                                 recipe="standard-lora", data=DataFacts(1000, 0, 2048, 2048)))
            s = p.settings
            case = Case(name, s.get("quantization_bit"), p.seq_len, s["per_device_train_batch_size"], fraction)
            settings = {"bf16": True, "lora_rank": s["lora_rank"], "disable_gradient_checkpointing": s["disable_gradient_checkpointing"]}
            result = run_case(case, path, dataset_dir(work, case.seq_len), work, settings) if p.fits else {"ok": False, "oom": False}
            verdict = "does not fit (planner)" if not p.fits else ("ran" if result["ok"] else "OOM" if result.get("oom") else "FAILED")
            print(f"  plan for a {card_gib} GB card: {name} quant {s.get('quantization_bit')} batch {s['per_device_train_batch_size']} "
                  f"seq {p.seq_len}: estimate {p.estimate.per_device_gib:.1f} GiB: {verdict}", flush=True)


if __name__ == "__main__":
    main()
