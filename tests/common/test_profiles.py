"""Profiles (hardware, models, recipes), model resolution and parameter counts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tui.common.profiles import load_profiles
from tui.common.resources import data_dir
from tui.hardware.profile import devices_from_profile, profile_capabilities
from tui.models.architecture import ModelError
from tui.models.resolve import check_weights, read_local_model, resolve_model

BIN = Path(sys.executable).parent

# Published parameter counts (SCENARIOS.md; where it rounds to one significant digit the
# model card's figure is used: Qwen2.5-1.5B's card says 1.54B).
PUBLISHED_PARAMS = {
    "qwen2.5-0.5b": 0.49e9,
    "qwen2.5-1.5b": 1.54e9,
    "qwen2.5-7b": 7.6e9,
    "qwen2.5-14b": 14.7e9,
    "qwen2.5-32b": 32.5e9,
    "qwen3-4b": 4.0e9,
    "llama-3.1-8b": 8.0e9,
    "llama-3.2-3b": 3.2e9,
    "llama-3.1-70b": 70.6e9,
    # Model cards' "Number of Parameters" unless said otherwise.
    "llama-3.2-1b": 1.23e9,  # meta-llama/Llama-3.2-1B: "1B (1.23B)"
    "qwen2.5-3b": 3.09e9,  # Qwen/Qwen2.5-3B-Instruct: "Number of Parameters: 3.09B"
    "qwen3-8b": 8.2e9,  # Qwen/Qwen3-8B: "Number of Parameters: 8.2B"
    "qwen3-14b": 14.8e9,  # Qwen/Qwen3-14B: "Number of Parameters: 14.8B"
    "qwen3-30b-a3b": 30.5e9,  # Qwen/Qwen3-30B-A3B: "Number of Parameters: 30.5B in total"
    "mixtral-8x7b": 46.7e9,  # Mistral's Mixtral announcement: "46.7B total parameters"
    "mistral-7b-v0.3": 7.25e9,  # the hub's safetensors count for mistralai/Mistral-7B-v0.3 (the card gives none)
    "gemma-2-2b": 2.61e9,  # the hub's safetensors count for google/gemma-2-2b ("2B" in the card's name)
    "gemma-2-9b": 9.24e9,  # the hub's safetensors count for google/gemma-2-9b
    "gemma-3-1b": 1.0e9,  # google/gemma-3-1b-it: "1B" (text only; the hub counts 1,000M)
    "phi-3.5-mini": 3.8e9,  # microsoft/Phi-3.5-mini-instruct: "3.8B parameters"
    "phi-4": 14.7e9,  # the hub's safetensors count for microsoft/phi-4 (the card: "14B")
    "deepseek-r1-distill-qwen-7b": 7.62e9,  # the hub's safetensors count (Qwen2.5-Math-7B's architecture)
    "glm-4-9b": 9.4e9,  # the hub's safetensors count for zai-org/glm-4-9b-chat
}
# Where a card rounds the total to two digits the 1 % test cannot hold (1.7B is 1.72B), its
# "Number of Parameters (Non-Embedding)" is compared with the count less the embeddings.
PUBLISHED_NON_EMBEDDING_PARAMS = {
    "qwen3-0.6b": 0.44e9,  # Qwen/Qwen3-0.6B: "Number of Paramaters (Non-Embedding): 0.44B"
    "qwen3-1.7b": 1.4e9,  # Qwen/Qwen3-1.7B: "Number of Paramaters (Non-Embedding): 1.4B"
    "qwen3-8b": 6.95e9,  # Qwen/Qwen3-8B: "6.95B"
    "qwen3-14b": 13.2e9,  # Qwen/Qwen3-14B: "13.2B"
    "qwen3-30b-a3b": 29.9e9,  # Qwen/Qwen3-30B-A3B: "29.9B"
}
# Parameters a token is routed through.
PUBLISHED_ACTIVE_PARAMS = {
    "qwen3-30b-a3b": (3.3e9, 0.02),  # "Number of Activated Parameters: 3.3B" (two digits: 2 %)
    "mixtral-8x7b": (12.9e9, 0.01),  # "only uses 12.9B parameters per token"
}
REQUIRED_HARDWARE = {
    "rtx3060-12g", "rtx3090-24g", "rtx4080-16g", "rtx4090-24g", "t4-16g", "v100-32g", "a100-40g",
    "a100-80g", "h100-80g", "l40s-48g", "mi50-32g", "mi100-32g", "mi300x-192g", "apple-m2-max-32g", "cpu",
}
REQUIRED_RECIPES = {"smoke-test", "small-dataset", "standard-lora", "qlora"}


@pytest.fixture(scope="module")
def builtin(tmp_path_factory):
    return load_profiles(user_dir=tmp_path_factory.mktemp("no-user-profiles"))


def test_every_builtin_profile_is_valid(builtin):
    assert builtin.problems == []
    assert REQUIRED_HARDWARE <= set(builtin.names("hardware"))
    assert set(PUBLISHED_PARAMS) | set(PUBLISHED_NON_EMBEDDING_PARAMS) == set(builtin.names("models"))
    assert REQUIRED_RECIPES <= set(builtin.names("recipes"))


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_computed_parameter_count_within_one_percent_of_published(builtin, name):
    params = resolve_model(name, builtin).params
    assert abs(params - PUBLISHED_PARAMS[name]) / PUBLISHED_PARAMS[name] < 0.01, params


@pytest.mark.parametrize("name", sorted(PUBLISHED_NON_EMBEDDING_PARAMS))
def test_non_embedding_count_within_one_percent_of_published(builtin, name):
    arch = resolve_model(name, builtin).architecture
    params = arch.param_count() - arch.embedding_params - arch.lm_head_params
    published = PUBLISHED_NON_EMBEDDING_PARAMS[name]
    assert abs(params - published) / published < 0.01, params


@pytest.mark.parametrize("name", sorted(PUBLISHED_ACTIVE_PARAMS))
def test_active_count_of_moe_profiles(builtin, name):
    model = resolve_model(name, builtin)
    published, tolerance = PUBLISHED_ACTIVE_PARAMS[name]
    assert abs(model.active_params - published) / published < tolerance, model.active_params


def test_profile_templates_agree_with_llamafactory_model_table(builtin):
    from tui.models.lf_table import template_for

    for profile in builtin.of("models"):
        for hub_id in profile.data["hub_ids"]:
            listed = template_for(hub_id)
            assert listed in (None, profile.data["template"]), (profile.name, hub_id, listed)


def test_hardware_profile_flags_agree_with_the_capability_rules(builtin):
    for profile in builtin.of("hardware"):
        caps = profile_capabilities(profile.data)
        stated = {f: profile.data[f] for f in ("bf16", "fp16", "flash_attn2", "bitsandbytes")}
        assert stated == {f: getattr(caps, f) for f in stated}, profile.name


def test_scenario_hardware_facts(builtin):
    mi50 = builtin.get("hardware", "mi50-32g").data
    assert (mi50["gfx"], mi50["bf16"], mi50["fp16"], mi50["bitsandbytes"]) == ("gfx906", False, False, False)
    rtx4080 = builtin.get("hardware", "rtx4080-16g").data
    assert (rtx4080["compute_capability"], rtx4080["bf16"], rtx4080["memory_total_mib"]) == ("8.9", True, 16376)
    devices = devices_from_profile(mi50, gpus=2)
    assert [d.index for d in devices] == [0, 1] and all(d.gfx == "gfx906" and d.free for d in devices)
    (cpu,) = devices_from_profile(builtin.get("hardware", "cpu").data)
    assert cpu.vendor == "cpu" and not cpu.bf16


def test_models_found_by_short_name_or_any_hub_id_case_insensitively(builtin):
    by_name = resolve_model("qwen2.5-14b", builtin)
    for spec in ("Qwen/Qwen2.5-Coder-14B-Instruct", "qwen/qwen2.5-coder-14b", "QWEN2.5-14B"):
        model = resolve_model(spec, builtin)
        assert model.name == "qwen2.5-14b" and model.architecture == by_name.architecture
    assert resolve_model("qwen/qwen2.5-coder-14b", builtin).model_name_or_path == "Qwen/Qwen2.5-Coder-14B"
    with pytest.raises(ModelError, match="unknown model 'qwen2.5-7bb': did you mean qwen2.5-7b"):
        resolve_model("qwen2.5-7bb", builtin)


def test_templates_exist_in_the_installed_llamafactory(builtin):
    """Template names checked against LLaMA-Factory's own registry (in a subprocess: the test
    process never imports llamafactory)."""
    code = "import json; from llamafactory.data.template import TEMPLATES; print(json.dumps(sorted(TEMPLATES)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    registry = set(json.loads(done.stdout.strip().splitlines()[-1]))
    used = {p.data["template"] for p in builtin.of("models")} | {"qwen3_nothink"}
    assert used <= registry, used - registry
    assert resolve_model("Qwen/Qwen3-4B", builtin).template == "qwen3"
    assert resolve_model("meta-llama/Llama-3.1-8B-Instruct", builtin).template == "llama3"


# --- user profiles and broken files ---------------------------------------------------------


def run_cli(*args, env=None):
    return subprocess.run([str(BIN / "sft-tui"), *args], capture_output=True, text=True, env=env, timeout=60)


def test_user_profile_wins_and_says_where_it_came_from(user_config_home, monkeypatch):
    hardware_dir = user_config_home / "profiles" / "hardware"
    hardware_dir.mkdir(parents=True)
    mine = hardware_dir / "rtx4090-24g.yaml"
    text = (data_dir("profiles") / "hardware" / "rtx4090-24g.yaml").read_text()
    mine.write_text(text.replace("memory_total_mib: 24564", "memory_total_mib: 24000"))
    (hardware_dir / "my-box.yaml").write_text(text.replace("gpus: 1", "gpus: 4"))

    profiles = load_profiles(["hardware"])
    assert profiles.problems == []
    p = profiles.get("hardware", "rtx4090-24g")
    assert (p.source, p.origin, p.data["memory_total_mib"]) == (mine, "user", 24000)
    assert p.overrides == data_dir("profiles") / "hardware" / "rtx4090-24g.yaml"

    import os

    done = run_cli("profiles", "hardware", "--json", env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    listed = {row["name"]: row for row in json.loads(done.stdout)}
    assert listed["rtx4090-24g"]["source"] == str(mine)
    assert listed["rtx4090-24g"]["origin"] == "user"
    assert listed["my-box"]["gpus"] == 4 and listed["my-box"]["vram_gib"] == 24.0
    assert listed["a100-80g"]["origin"] == "built-in"


def test_broken_profiles_are_reported_and_the_rest_still_load(user_config_home):
    import os

    models_dir = user_config_home / "profiles" / "models"
    models_dir.mkdir(parents=True)
    (models_dir / "bad-yaml.yaml").write_text("hub_ids: [a/b\ntemplate: qwen\n")
    bad_field = (data_dir("profiles") / "models" / "qwen2.5-7b.yaml").read_text()
    (models_dir / "bad-field.yaml").write_text(bad_field.replace("hidden_size: 3584", "hidden_size: wide"))
    recipes_dir = user_config_home / "profiles" / "recipes"
    recipes_dir.mkdir(parents=True)
    sneaky = (data_dir("profiles") / "recipes" / "qlora.yaml").read_text() + "quantization_bit: 4\n"
    (recipes_dir / "sneaky.yaml").write_text(sneaky)

    done = run_cli("profiles", "--json", env=dict(os.environ))
    assert done.returncode == 1
    names = {row["name"] for row in json.loads(done.stdout)}
    assert {"qwen2.5-7b", "qlora", "rtx4080-16g"} <= names
    assert not {"bad-yaml", "bad-field", "sneaky"} & names
    errors = done.stderr.splitlines()
    assert any(str(models_dir / "bad-yaml.yaml") in e and "is not valid YAML at line" in e for e in errors)
    assert any(str(models_dir / "bad-field.yaml") in e and "/architecture/hidden_size" in e for e in errors)
    # Hardware-forced settings never live in a recipe: the schema refuses them.
    assert any(str(recipes_dir / "sneaky.yaml") in e and "quantization_bit" in e for e in errors)
    assert "Traceback" not in done.stderr


def test_profiles_text_listing():
    done = run_cli("profiles", "models")
    assert done.returncode == 0
    assert "qwen2.5-14b" in done.stdout and "14.77B params, template qwen" in done.stdout
    assert "Qwen/Qwen2.5-Coder-14B-Instruct" in done.stdout


# --- local model directories ------------------------------------------------------------------


def make_sharded_dir(tmp_path, config) -> Path:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps(config))
    shards = [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    weight_map = {f"layer.{i}.weight": shard for i, shard in enumerate(shards)}
    (model_dir / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    for shard in shards:
        (model_dir / shard).write_bytes(b"x")
    (model_dir / "tokenizer.json").write_text("{}")
    return model_dir


QWEN25_7B_CONFIG = {
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 3584, "num_hidden_layers": 28,
    "num_attention_heads": 28, "num_key_value_heads": 4, "intermediate_size": 18944, "vocab_size": 152064,
    "tie_word_embeddings": False, "max_position_embeddings": 32768,
}


def test_local_directory_reads_config_and_matches_a_profile(tmp_path, builtin):
    model_dir = make_sharded_dir(tmp_path, QWEN25_7B_CONFIG)
    model = resolve_model(str(model_dir), builtin)
    assert model.source == "local" and model.model_name_or_path == str(model_dir.resolve())
    assert model.template == "qwen" and "qwen2.5-7b profile" in model.notes[0]
    assert model.params == resolve_model("qwen2.5-7b", builtin).params
    assert model.weights.complete and model.weights.problems() == []


def test_local_directory_with_a_missing_shard_and_an_unfinished_download(tmp_path, builtin):
    model_dir = make_sharded_dir(tmp_path, QWEN25_7B_CONFIG)
    (model_dir / "model-00002-of-00003.safetensors").unlink()
    (model_dir / "model-00002-of-00003.safetensors.incomplete").write_bytes(b"")
    weights = read_local_model(model_dir, builtin).weights
    assert not weights.complete
    assert weights.problems() == [
        "missing weight file model-00002-of-00003.safetensors",
        "unfinished download model-00002-of-00003.safetensors.incomplete",
    ]


def test_local_directory_without_weights_or_config(tmp_path, builtin):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model(str(empty), builtin)
    (empty / "config.json").write_text(json.dumps(QWEN25_7B_CONFIG))
    weights = check_weights(empty)
    assert weights.missing == ["model.safetensors (or pytorch_model.bin)"]
    assert "no tokenizer files" in weights.notes[-1]
    encoder = {"architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_size": 768}
    (empty / "config.json").write_text(json.dumps(encoder))
    with pytest.raises(ModelError, match="BertForMaskedLM .*not a causal language model"):
        resolve_model(str(empty), builtin)
    with pytest.raises(ModelError, match="no such model directory"):
        resolve_model("./does-not-exist", builtin)


def test_profiles_models_search_finds_profiles_and_llamafactory_models():
    done = run_cli("profiles", "models", "--search", "QWEN3-8B", "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert [row["name"] for row in found["profiles"]] == ["qwen3-8b"]
    table = {row["hub_id"]: row for row in found["llamafactory"]}
    assert table["Qwen/Qwen3-8B"]["profile"] == "qwen3-8b" and table["Qwen/Qwen3-8B"]["template"] == "qwen3"
    assert table["deepseek-ai/DeepSeek-R1-0528-Qwen3-8B"]["profile"] is None
    text = run_cli("profiles", "models", "--search", "mixtral")
    assert text.returncode == 0
    assert "mixtral-8x7b       46.70B params (12.88B active), template mistral" in text.stdout
    assert "mistralai/Mixtral-8x7B-Instruct-v0.1" in text.stdout
    nothing = run_cli("profiles", "models", "--search", "zzzz-no-model")
    assert nothing.returncode == 0 and "any hub id (org/name) or local model directory" in nothing.stdout
    wrong = run_cli("profiles", "hardware", "--search", "a100")
    assert wrong.returncode == 1 and "profiles models --search" in wrong.stderr and "Traceback" not in wrong.stderr
