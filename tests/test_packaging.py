"""A non-editable install into a fresh virtualenv finds its data folders from any directory."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.models.fake_hub import FakeHub

REPO = Path(__file__).resolve().parents[1]


def test_wheel_installs_into_a_fresh_venv_and_works_from_elsewhere(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(REPO)],
        check=True, capture_output=True, timeout=600,
    )
    (wheel,) = wheels.glob("sft_tui-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "tui/_data/schemas/hardware-profile.schema.json" in names
    assert "tui/_data/profiles/models/qwen2.5-14b.yaml" in names
    assert "tui/_data/templates/README.md" in names
    assert "tui/app/app.tcss" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        check=True, capture_output=True, timeout=600,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "HF_HOME": str(tmp_path / "hf")}

    def run(*args, check=True):
        done = subprocess.run([str(venv / "bin" / "sft-tui"), *args], cwd=elsewhere, env=env,
                              capture_output=True, text=True, timeout=120)
        if not check:
            return done
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    profiles = run("profiles", "--json")
    assert {p["kind"] for p in profiles} == {"hardware", "models", "recipes"}
    assert all(p["source"].startswith(str(venv)) for p in profiles)
    detected = run("detect", "--json")
    assert detected["devices"][-1]["vendor"] == "cpu"
    # The installed app never pulled the training stack in.
    freeze = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "freeze"], capture_output=True, text=True)
    assert not any(name in freeze.stdout.lower() for name in ("torch", "transformers", "llamafactory"))

    # A model id no profile covers is looked up on the hub (here a local stand-in) by the app's own
    # install: the hub client is one of sft-tui's dependencies, not the training extra's.
    yi = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 48,
          "num_attention_heads": 32, "num_key_value_heads": 4, "intermediate_size": 11008, "vocab_size": 64000,
          "tie_word_embeddings": False}
    with FakeHub() as hub:
        hub.add("01-ai/Yi-1.5-9B-Chat", {"config.json": yi})
        env["HF_ENDPOINT"] = hub.url
        plan = run("plan", "--model", "01-ai/Yi-1.5-9B-Chat", "--hardware", "a100-80g", "--json")
        assert plan["model"]["source"] == "hub" and 8.5e9 < plan["model"]["params"] < 9.0e9
        typo = run("plan", "--model", "Qwen/Qwen2.5-7B-Instrcut", "--hardware", "a100-80g", check=False)
    assert typo.returncode == 2 and "Traceback" not in typo.stderr, typo.stderr
    assert typo.stderr.startswith("sft-tui: ") and len(typo.stderr.strip().splitlines()) == 1, typo.stderr
    # An optional package this install lacks is one sentence with the command that installs it here.
    data = elsewhere / "rows.jsonl"
    data.write_text('{"instruction": "hi", "output": "hello"}\n', encoding="utf-8")
    (elsewhere / "tok").mkdir()
    tokens = run("validate", str(data), "--tokenizer", str(elsewhere / "tok"), check=False)
    assert "Traceback" not in tokens.stderr and f"{venv}/bin/python -m pip install tokenizers" in tokens.stderr, tokens.stderr
