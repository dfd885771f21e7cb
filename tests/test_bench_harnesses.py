"""The benchmark harnesses run end to end here (their figures are printed, never judged)."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.llamafactory
def test_memory_accuracy_harness_runs_a_real_case_on_the_cpu(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "bench" / "memory_accuracy.py"), "--tiny", "--work", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "tiny-qwen2" in done.stdout and "estimate" in done.stdout
    assert "measured n/a (no GPU" in done.stdout or "measured" in done.stdout


def test_follow_log_harness_runs_small(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "bench" / "follow_log.py"), "--size-gb", "0.01", "--rate", "500",
                           "--seconds", "1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "last 40 lines" in done.stdout and "follower CPU" in done.stdout and "lag from write" in done.stdout


def test_validate_throughput_harness_runs_small():
    done = subprocess.run([sys.executable, str(REPO / "bench" / "validate_throughput.py"), "--rows", "3000",
                           "--baseline-rows", "500"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sft-tui validator, --jobs 1" in done.stdout and "json + jsonschema loop" in done.stdout
    assert "reported line 9001" in done.stdout and "right line" in done.stdout


def test_memory_published_harness_prints_rows_and_the_summary():
    done = subprocess.run([sys.executable, str(REPO / "bench" / "memory_published.py"), "--rows", "S1,L1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("S1 ") and "Qwen-7B" in line and "maxres" in line for line in lines)
    assert any(line.startswith("L1 ") and "Llama-2-7B" in line for line in lines)
    assert "Comparable to LLaMA-Factory (stack HF/HF-rc, one GPU): 2 points; median |error|" in done.stdout
    whole = subprocess.run([sys.executable, str(REPO / "bench" / "memory_published.py")],
                           capture_output=True, text=True, timeout=60)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    assert "safe side (estimate >= measured)" in whole.stdout and "Findings on the large errors" in whole.stdout
    assert "Not expressed:" in whole.stdout and "Q4:" in whole.stdout


def test_startup_harness_runs_once():
    """bench/startup.py imported `tui.cli.main` from the package regroup's old place and crashed."""
    done = subprocess.run([sys.executable, str(REPO / "bench" / "startup.py"), "--runs", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sft-tui --help" in done.stdout and "heavy imports: none" in done.stdout
    assert "first wizard screen painted" in done.stdout
