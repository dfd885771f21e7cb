"""After training, with the real LLaMA-Factory on a trained tiny-model run: try, eval, merge."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.llamafactory import BIN, SAMPLE_ALPACA_ROWS, offline_env, write_jsonl

pytestmark = pytest.mark.llamafactory
SFT_TUI = str(BIN / "sft-tui")


def sft_tui(*args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([SFT_TUI, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=offline_env())


@pytest.fixture(scope="module")
def trained_run(tiny_model_dir, tmp_path_factory) -> Path:
    """A finished LoRA run of the tiny model on a dataset with a 3-row test split."""
    root = tmp_path_factory.mktemp("after")
    data = root / "data"
    data.mkdir()
    write_jsonl(data / "train.jsonl", SAMPLE_ALPACA_ROWS)
    write_jsonl(data / "val.jsonl", SAMPLE_ALPACA_ROWS[:2])
    write_jsonl(data / "test.jsonl", SAMPLE_ALPACA_ROWS[5:8])
    done = sft_tui("export", "--hardware", "cpu", "--model", tiny_model_dir, "--dataset", data, "--out", root,
                   "--name", "after", "--env", f"venv:{BIN.parent}", "--set", "num_train_epochs=1",
                   "--set", "save_steps=2", "--json")
    assert done.returncode == 0, done.stderr
    run_dir = Path(json.loads(done.stdout)["run_dir"])
    train = subprocess.run(["bash", str(run_dir / "run_sft.sh"), "--foreground"], capture_output=True, text=True,
                           env=offline_env(), timeout=600)
    assert train.returncode == 0, train.stdout[-2000:]
    return run_dir


def test_try_answers_with_the_adapter_and_the_base(trained_run):
    done = sft_tui("try", trained_run, "--prompt", "Write a function that adds two numbers.", "--compare",
                   "--max-new-tokens", "8", "--temperature", "0", "--json")
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    assert [a["variant"] for a in answers] == ["base", "fine-tuned"]
    assert all(a["prompt"] == "Write a function that adds two numbers." and isinstance(a["answer"], str) for a in answers)
    text = sft_tui("try", trained_run, "--prompt", "hello", "--checkpoint", "2", "--max-new-tokens", "4")
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("[checkpoint-2] hello")


def test_try_a_missing_checkpoint_is_a_clear_error(trained_run):
    done = sft_tui("try", trained_run, "--prompt", "hello", "--checkpoint", "999")
    assert done.returncode == 2
    assert "no checkpoint 999 in" in done.stderr and "(checkpoints: 2, 4" in done.stderr
    assert "Traceback" not in done.stderr


def test_eval_generates_every_test_row_and_saves_metrics(trained_run):
    done = sft_tui("eval", trained_run, "--max-new-tokens", "8", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert len(result["rows"]) == 3
    assert [row["label"].strip() for row in result["rows"]] == [r["output"].strip() for r in SAMPLE_ALPACA_ROWS[5:8]]
    assert {"predict_bleu-4", "predict_rouge-l"} <= set(result["metrics"])
    assert (trained_run / "eval" / "predict_results.json").is_file()
    shown = sft_tui("eval", trained_run, "--show")  # printed again from the saved files, nothing run
    assert shown.returncode == 0 and shown.stdout.count("--- row") == 3


def test_merge_writes_a_model_transformers_loads_and_generates_with(trained_run, tmp_path):
    out = tmp_path / "merged"
    done = sft_tui("merge", trained_run, "--out", out, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["out_dir"] == str(out) and result["size_bytes"] > 0
    assert any("vllm serve" in command for command in result["serve"])
    code = ("import sys, torch; from transformers import AutoModelForCausalLM, AutoTokenizer\n"
            "tok = AutoTokenizer.from_pretrained(sys.argv[1]); model = AutoModelForCausalLM.from_pretrained(sys.argv[1])\n"
            "ids = tok('Write a function', return_tensors='pt').input_ids\n"
            "out = model.generate(ids, max_new_tokens=4, do_sample=False)\n"
            "print(out.shape[1] - ids.shape[1])")
    generated = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True,
                               env=offline_env(), timeout=300)
    assert generated.returncode == 0, generated.stderr[-2000:]
    assert 1 <= int(generated.stdout.strip().splitlines()[-1]) <= 4
    again = sft_tui("merge", trained_run, "--out", out)
    assert again.returncode == 2 and "not empty" in again.stderr
