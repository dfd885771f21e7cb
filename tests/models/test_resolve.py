"""Resolving a hub id: the local Hugging Face cache, then the hub (a local stand-in: HF_ENDPOINT),
with errors a user can act on. Nothing reaches the network: the hub is tests/models/fake_hub.py,
and every cache is a tmp dir."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.models.fake_hub import FakeHub
from tui.common.profiles import load_profiles
from tui.models.architecture import ModelError
from tui.models.resolve import resolve_model

BIN = Path(sys.executable).parent

# Published config.json facts of the models served (the keys that size them).
GEMMA2_27B = {  # google/gemma-2-27b-it (gated); 27.2B parameters
    "architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "hidden_size": 4608, "num_hidden_layers": 46,
    "num_attention_heads": 32, "num_key_value_heads": 16, "head_dim": 128, "intermediate_size": 36864,
    "vocab_size": 256000, "tie_word_embeddings": True,
}
QWEN3_30B_A3B = {  # Qwen/Qwen3-30B-A3B-Instruct-2507: 30.5B in total, 3.3B activated
    "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": 2048,
    "num_hidden_layers": 48, "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128,
    "intermediate_size": 6144, "moe_intermediate_size": 768, "num_experts": 128, "num_experts_per_tok": 8,
    "decoder_sparse_step": 1, "mlp_only_layers": [], "vocab_size": 151936, "tie_word_embeddings": False,
}
QWEN25_7B = {
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 3584, "num_hidden_layers": 28,
    "num_attention_heads": 28, "num_key_value_heads": 4, "intermediate_size": 18944, "vocab_size": 152064,
    "tie_word_embeddings": False,
}
MINILM = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 384, "num_hidden_layers": 6}
TOKEN = "hf_test_token_with_access"


@pytest.fixture
def profiles(tmp_path_factory):
    return load_profiles(user_dir=tmp_path_factory.mktemp("no-user-profiles"))


@pytest.fixture
def hub_env(tmp_path, monkeypatch):
    """Every cache in tmp dirs, no token, online."""
    for name in ("HF_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN_PATH", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path


@pytest.fixture
def hub(hub_env, monkeypatch):
    with FakeHub() as fake:
        fake.add("google/gemma-2-27b-it", {"config.json": GEMMA2_27B}, gated_token=TOKEN)
        fake.add("Qwen/Qwen3-30B-A3B-Instruct-2507", {"config.json": QWEN3_30B_A3B})
        fake.add("acme/support-bot-7b", {"config.json": QWEN25_7B})
        fake.add("acme/support-bot-7b-GGUF", {"README.md": b"# GGUF files only\n"})
        fake.add("sentence-transformers/all-MiniLM-L6-v2", {"config.json": MINILM})
        fake.add("acme/support-bot-lora", {"adapter_config.json": {"base_model_name_or_path": "Qwen/Qwen2.5-7B-Instruct",
                                                                   "peft_type": "LORA", "r": 16}})
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        yield fake


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_a_model_from_the_hub_gets_counts_and_lf_template(hub, profiles):
    model = resolve_model("Qwen/Qwen3-30B-A3B-Instruct-2507", profiles)
    assert (model.source, model.model_name_or_path, model.name) == (
        "hub", "Qwen/Qwen3-30B-A3B-Instruct-2507", "Qwen3-30B-A3B-Instruct-2507")
    assert model.template == "qwen3_nothink"  # LLaMA-Factory's table, not a guess
    assert abs(model.params - 30.5e9) / 30.5e9 < 0.01
    assert 3.3e9 < model.active_params < 3.4e9
    assert any("template qwen3_nothink from LLaMA-Factory's model table" in n for n in model.notes)
    assert any("128 experts, 8 per token" in n for n in model.notes)
    data = model.to_json()
    assert (data["source"], data["params"], data["active_params"], data["template"]) == (
        "hub", model.params, model.active_params, "qwen3_nothink")
    assert data["experts"] == 128 and data["experts_per_token"] == 8
    json.dumps(data)
    # Only config.json was asked for, and it is kept in sft-tui's cache, not the user's HF cache.
    assert {path.rsplit("/", 1)[-1] for _, path in hub.requests} == {"config.json"}
    assert list(hub_env_path(hub).glob("**/config.json"))
    assert not (Path(os.environ["HF_HUB_CACHE"])).exists()


def hub_env_path(hub) -> Path:
    return Path(os.environ["XDG_CACHE_HOME"]) / "sft-tui" / "hub"


def test_a_fine_tune_outside_lf_table_gets_its_family_template_with_a_note(hub, profiles):
    model = resolve_model("acme/support-bot-7b", profiles)
    assert model.template == "qwen"
    assert "template qwen is the usual one for qwen2; check it" in model.notes


def test_a_looked_up_model_still_resolves_when_the_hub_is_gone(hub, profiles, monkeypatch):
    first = resolve_model("acme/support-bot-7b", profiles)
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    again = resolve_model("acme/support-bot-7b", profiles)
    assert again.params == first.params and again.source == "hub"
    assert any("hub not reached" in note for note in again.notes)


def test_gated_repo_without_a_token_says_how_to_get_access(hub, profiles, monkeypatch):
    with pytest.raises(ModelError) as err:
        resolve_model("google/gemma-2-27b-it", profiles)
    message = str(err.value)
    assert message == (f"google/gemma-2-27b-it is a gated model: accept its licence on {hub.url}/google/gemma-2-27b-it, "
                       "then run `hf auth login` or set HF_TOKEN, and try again")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    model = resolve_model("google/gemma-2-27b-it", profiles)
    assert model.template == "gemma2" and abs(model.params - 27.2e9) / 27.2e9 < 0.01


def test_the_token_saved_by_hf_auth_login_is_used(hub, profiles, hub_env):
    token_file = Path(os.environ["HF_HOME"]) / "token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text(TOKEN + "\n")
    assert resolve_model("google/gemma-2-27b-it", profiles).source == "hub"


def test_a_repo_without_config_json_says_so(hub, profiles):
    with pytest.raises(ModelError, match="acme/support-bot-7b-GGUF exists on .* but has no config.json"):
        resolve_model("acme/support-bot-7b-GGUF", profiles)


def test_an_adapter_repo_names_its_base_model(hub, profiles):
    with pytest.raises(ModelError) as err:
        resolve_model("acme/support-bot-lora", profiles)
    assert str(err.value) == (
        "acme/support-bot-lora is a LoRA adapter (adapter_config.json, no config.json) trained on "
        "Qwen/Qwen2.5-7B-Instruct: plan with --model Qwen/Qwen2.5-7B-Instruct, and give the adapter to "
        "LLaMA-Factory as adapter_name_or_path=acme/support-bot-lora")


def test_a_config_that_is_not_a_causal_lm_says_what_it_is(hub, profiles):
    with pytest.raises(ModelError, match=r"sentence-transformers/all-MiniLM-L6-v2: config.json describes BertModel "
                                         r"\(model_type bert\), not a causal language model"):
        resolve_model("sentence-transformers/all-MiniLM-L6-v2", profiles)


def test_a_typo_on_the_hub_gets_did_you_mean(hub, profiles):
    with pytest.raises(ModelError) as err:
        resolve_model("Qwen/Qwen2.5-7B-Instruc", profiles)
    message = str(err.value)
    assert message.startswith(f"Qwen/Qwen2.5-7B-Instruc is not a model on {hub.url} (check the spelling; if it is "
                              "private or gated, run `hf auth login` or set HF_TOKEN); did you mean")
    assert "Qwen/Qwen2.5-7B-Instruct" in message


def test_a_typo_of_a_profile_never_reaches_the_hub(hub, profiles):
    with pytest.raises(ModelError, match="unknown model 'qwen3-4': did you mean qwen3-4b"):
        resolve_model("qwen3-4", profiles)
    assert hub.requests == []


def test_no_network_and_nothing_cached_says_how_to_plan_offline(hub_env, profiles, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    with pytest.raises(ModelError) as err:
        resolve_model("acme/support-bot-7b", profiles)
    assert str(err.value).startswith("cannot reach the hub (http://127.0.0.1:")
    assert "to plan offline, name a local model directory or a model profile" in str(err.value)


def test_hf_hub_offline_with_nothing_cached(hub, profiles, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE is set and acme/support-bot-7b is not in the Hugging Face cache"):
        resolve_model("acme/support-bot-7b", profiles)
    assert hub.requests == []


def populate_hf_cache(cache: Path, repo_id: str, config: dict, weights: bool = True) -> Path:
    """The layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<commit>/...}."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    (snapshot / "config.json").write_text(json.dumps(config))
    if weights:
        (snapshot / "model.safetensors").write_bytes(b"x")
        (snapshot / "tokenizer.json").write_text("{}")
    return snapshot


def test_a_model_in_the_hf_cache_resolves_offline_without_the_hub(hub_env, profiles, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    snapshot = populate_hf_cache(Path(os.environ["HF_HUB_CACHE"]), "acme/support-bot-7b", QWEN25_7B)
    model = resolve_model("acme/support-bot-7b", profiles)
    assert (model.source, model.model_name_or_path, model.template) == ("cache", "acme/support-bot-7b", "qwen")
    assert model.weights.complete
    assert model.notes[0] == f"config.json from the Hugging Face cache ({snapshot})"


def test_plan_offline_from_the_hf_cache_on_the_command_line(hub_env):
    cache = hub_env / "hf-cache"
    populate_hf_cache(cache, "acme/support-bot-7b", QWEN25_7B, weights=False)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_ENDPOINT=closed_port_url())
    done = subprocess.run([str(BIN / "sft-tui"), "plan", "--hardware", "rtx4090-24g", "--model", "acme/support-bot-7b"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    assert done.stdout.startswith("Plan: acme/support-bot-7b on 1 x NVIDIA GeForce RTX 4090")
    assert "template                        qwen" in done.stdout
    assert "Traceback" not in done.stderr


def test_cli_errors_are_one_sentence(hub_env):
    env = dict(os.environ, HF_ENDPOINT=closed_port_url())
    done = subprocess.run([str(BIN / "sft-tui"), "plan", "--hardware", "rtx4090-24g", "--model", "acme/nothing-here"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "cannot reach the hub" in done.stderr


def test_resolving_a_profile_imports_no_hub_client():
    code = ("import sys; from tui.common.profiles import load_profiles; from tui.models.resolve import resolve_model; "
            "resolve_model('qwen3-4b', load_profiles()); print('huggingface_hub' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_a_typo_of_a_known_hub_id_offline_still_gets_did_you_mean(monkeypatch, tmp_path):
    from tui.common.profiles import load_profiles
    from tui.models.architecture import ModelError
    from tui.models.resolve import resolve_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelError) as caught:
        resolve_model("Qwen/Qwen2.5-7B-Instruc", load_profiles(["models"]))
    message = str(caught.value)
    assert message.startswith("HF_HUB_OFFLINE is set and Qwen/Qwen2.5-7B-Instruc is not in the Hugging Face cache")
    assert "; or did you mean Qwen/Qwen2.5-7B-Instruct" in message and "\n" not in message


def test_validate_tokenizer_takes_a_hub_id_and_fetches_only_its_tokenizer(hub, tiny_model_dir, tmp_path, capsys):
    """Exact token counts for a hub model: its tokenizer.json from the hub into sft-tui's cache
    (nothing else), then from that cache without the hub; a repo without one says so."""
    import json as _json

    from tui.cli.main import main

    hub.add("acme/tiny-tok", {"config.json": QWEN25_7B, "tokenizer.json": (tiny_model_dir / "tokenizer.json").read_bytes()})
    data = tmp_path / "train.jsonl"
    data.write_text("".join(_json.dumps({"instruction": f"Say {i}.", "output": "ok"}) + "\n" for i in range(3)))
    assert main(["validate", str(data), "--tokenizer", "acme/tiny-tok", "--json"]) == 0
    lengths = _json.loads(capsys.readouterr().out)["stats"]["lengths"]
    assert lengths["unit"] == "tokens" and lengths["method"].endswith("tokenizer.json")
    assert [path for method, path in hub.requests if method == "GET"] == ["/acme/tiny-tok/resolve/main/tokenizer.json"]
    with pytest.MonkeyPatch.context() as offline:
        offline.setenv("HF_HUB_OFFLINE", "1")
        assert main(["validate", str(data), "--tokenizer", "acme/tiny-tok"]) == 0  # from sft-tui's cache
    capsys.readouterr()
    assert len([1 for method, _ in hub.requests if method == "GET"]) == 1
    assert main(["validate", str(data), "--tokenizer", "acme/support-bot-7b"]) == 2
    assert capsys.readouterr().err.startswith(f"sft-tui: acme/support-bot-7b on {hub.url} has no tokenizer.json")
