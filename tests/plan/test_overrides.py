"""Every setting a user gives passes one gate (tui/plan/settings.py through tui/plan/requests.py):
`--set`, plan.json read by `export --from`, a recipe file. Bad input is one line per problem and
exit status 2; a valid LLaMA-Factory argument the planner does not decide goes to train.yaml as
given; a user's value always wins, and its reason says what sft-tui would choose without it."""

from __future__ import annotations

import json
import string

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.llamafactory import SAMPLE_ALPACA_ROWS, write_jsonl
from tui.cli.main import main
from tui.plan.settings import schema

PLAN = ["plan", "--model", "qwen2.5-0.5b", "--hardware", "rtx4080-16g"]


def dataset(tmp_path) -> str:
    path = tmp_path / "data" / "train.jsonl"
    path.parent.mkdir(exist_ok=True)
    write_jsonl(path, SAMPLE_ALPACA_ROWS)
    return str(path)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("setting, message", [
    ("lora_rank=abc", "lora_rank: 'abc' is not an integer"),
    ("cutoff_len=4k", "cutoff_len: '4k' is not an integer"),
    ("lora_dropout=--help", "lora_dropout: '--help' is not a number"),
    ("learning_rate=abc", "learning_rate: 'abc' is not a number"),
    ("bf16=maybe", "bf16: 'maybe' is not true or false"),
    ("lora_rank=-1", "lora_rank: -1 is too small (at least 1)"),
    ("per_device_train_batch_size=0", "per_device_train_batch_size: 0 is too small (at least 1)"),
    ("per_device_train_batch_size=abc", "per_device_train_batch_size: 'abc' is not an integer"),
    ("quantization_bit=3", "quantization_bit: 3 is not allowed with quantization_method bnb (allowed: 4, 8)"),
    ("lora_rnak=8", "unknown setting 'lora_rnak': did you mean lora_rank?"),
    ("unknown_key=1", "unknown setting 'unknown_key': not a LLaMA-Factory argument"),
    ("output_dir=/tmp/x", "output_dir: cannot be set here: checkpoints go to saves/<run-id>: choose it with export --out and --name"),
    ("novalue", "--set 'novalue': expected KEY=VALUE with a LLaMA-Factory argument name as KEY"),
])
def test_a_bad_setting_is_one_clear_line_and_exit_2(capsys, setting, message):
    code, out, err = run_cli(capsys, *PLAN, "--set", setting)
    assert (code, out, err) == (2, "", f"sft-tui: {message}\n")


def test_every_problem_is_reported_one_line_each(capsys):
    code, _, err = run_cli(capsys, *PLAN, "--set", "lora_rnak=8", "--set", "learning_rate=fast",
                           "--set", "lr_scheduler_type=cosin")
    assert code == 2
    lines = err.splitlines()
    assert lines[:2] == ["sft-tui: unknown setting 'lora_rnak': did you mean lora_rank?",
                         "sft-tui: learning_rate: 'fast' is not a number"]
    assert lines[2].startswith("sft-tui: lr_scheduler_type: 'cosin' is not one of linear, cosine,")
    assert lines[2].endswith("; did you mean cosine?") and len(lines) == 3


def test_settings_the_planner_does_not_decide_pass_through_to_train_yaml(capsys, tmp_path):
    code, out, err = run_cli(capsys, "export", "--model", "qwen2.5-0.5b", "--hardware", "rtx4080-16g", "--out",
                             str(tmp_path), "--name", "r", "--dataset", dataset(tmp_path), "--set", "seed=7", "--set", "neftune_noise_alpha=5",
                             "--set", "report_to=tensorboard", "--json")
    assert code == 0, err
    run_dir = tmp_path / "runs" / "r"
    train = yaml.safe_load((run_dir / "train.yaml").read_text())
    assert (train["seed"], train["neftune_noise_alpha"], train["report_to"]) == (7, 5, "tensorboard")
    assert "# set by you; passed to LLaMA-Factory as given" in (run_dir / "train.yaml").read_text()
    reasons = json.loads((run_dir / "plan.json").read_text())["plan"]["reasons"]
    assert {reasons[k]["kind"] for k in ("seed", "neftune_noise_alpha", "report_to")} == {"user"}


def test_a_user_reason_says_what_sft_tui_would_choose_without_it(capsys):
    _, out, _ = run_cli(capsys, *PLAN, "--json")
    own = json.loads(out)
    _, out, _ = run_cli(capsys, *PLAN, "--set", "per_device_train_batch_size=64", "--json")
    theirs = json.loads(out)
    chosen = own["settings"]["per_device_train_batch_size"]
    assert chosen != 64 and theirs["settings"]["per_device_train_batch_size"] == 64
    reason = theirs["reasons"]["per_device_train_batch_size"]
    assert reason["kind"] == "user"
    assert reason["text"] == f"set by you; sft-tui would choose {chosen}: {own['reasons']['per_device_train_batch_size']['text']}"


def test_what_would_fit_names_your_own_setting_first(capsys):
    code, out, _ = run_cli(capsys, "plan", "--model", "qwen2.5-7b", "--hardware", "rtx4080-16g",
                           "--set", "per_device_train_batch_size=64", "--json")
    result = json.loads(out)
    assert code == 1 and not result["estimate"]["fits"]
    _, own, _ = run_cli(capsys, "plan", "--model", "qwen2.5-7b", "--hardware", "rtx4080-16g", "--json")
    would = json.loads(own)["settings"]["per_device_train_batch_size"]
    assert result["suggestions"][0] == f"your per_device_train_batch_size=64: sft-tui would use {would}"
    need = result["estimate"]["per_device_gib"] / (1 - result["estimate"]["safety_margin"])
    memory = next(s for s in result["suggestions"] if s.startswith("more memory"))
    assert memory == f"more memory: a GPU with at least {int(-(-need // 1))} GiB for this plan as it is"


def test_an_edited_plan_json_passes_the_same_gate(capsys, tmp_path):
    assert run_cli(capsys, "export", *PLAN[1:], "--out", str(tmp_path), "--name", "a", "--dataset", dataset(tmp_path))[0] == 0
    plan_json = tmp_path / "runs" / "a" / "plan.json"
    spec = json.loads(plan_json.read_text())
    spec["plan"]["settings"]["lora_rank"] = "abc"
    spec["plan"]["settings"]["lora_rnak"] = 8
    plan_json.write_text(json.dumps(spec))
    code, _, err = run_cli(capsys, "export", "--from", str(plan_json), "--out", str(tmp_path), "--name", "b")
    assert code == 2
    assert err.splitlines() == [f"sft-tui: {plan_json}: lora_rank: 'abc' is not an integer",
                                f"sft-tui: {plan_json}: unknown setting 'lora_rnak': did you mean lora_rank?"]


def test_a_broken_recipe_file_is_named(capsys, user_config_home):
    recipes = user_config_home / "profiles" / "recipes"
    recipes.mkdir(parents=True)
    (recipes / "mine.yaml").write_text("description: mine\nfinetuning_type: lora\neffective_batch_size: 8\n"
                                       "learning_rate: fast\nnum_train_epochs: 1\nlr_scheduler_type: cosine\n"
                                       "logging_steps: 5\nsave_steps: 100\n")
    code, _, err = run_cli(capsys, *PLAN, "--recipe", "mine")
    assert code == 2
    assert err.startswith(f"sft-tui: recipe {recipes / 'mine.yaml'}: /learning_rate: ") and len(err.splitlines()) == 1


NAMES = sorted(schema()["properties"])
keys = st.one_of(st.sampled_from(NAMES),
                 st.sampled_from(NAMES).map(lambda n: n[:-1] + ("x" if n[-1] != "x" else "y")),  # near misses
                 st.text(string.ascii_letters + "_", min_size=1, max_size=12))
values = st.one_of(st.just(""), st.integers(-10**30, 10**30).map(str), st.floats(allow_nan=True).map(str),
                   st.sampled_from(["[1, 2]", "{a: 1}", "${HOME}", "$(touch pwned)", "`touch pwned`", "true", "null",
                                    "日本語", "4k", "--help", "1e999", "-0", "a=b"]),
                   st.text(max_size=20))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(keys, values), min_size=1, max_size=4))
def test_any_setting_is_a_plan_or_one_line_errors_and_nothing_runs(capsys, tmp_path, monkeypatch, pairs):
    monkeypatch.chdir(tmp_path)
    argv = list(PLAN) + [a for key, value in pairs for a in ("--set", f"{key}={value}")]
    code, out, err = run_cli(capsys, *argv)
    assert code in (0, 1, 2)
    if code == 2:
        assert out == "" and err and all(line.startswith("sft-tui: ") for line in err.splitlines())
    else:
        assert "Plan:" in out
    assert not (tmp_path / "pwned").exists()


def test_export_from_plan_json_with_set_plans_it_again(capsys, tmp_path):
    """--from plan.json --set ...: the same model, files and your earlier settings, planned again
    with the new ones, into a new run directory; options plan.json decides are refused."""
    assert run_cli(capsys, "export", *PLAN[1:], "--out", str(tmp_path), "--name", "a", "--dataset", dataset(tmp_path),
                   "--set", "seed=7")[0] == 0
    plan_json = tmp_path / "runs" / "a" / "plan.json"
    code, _, err = run_cli(capsys, "export", "--from", str(plan_json), "--name", "b", "--set", "learning_rate=1e-4")
    assert code == 0, err
    train = yaml.safe_load((tmp_path / "runs" / "b" / "train.yaml").read_text())
    assert (train["learning_rate"], train["seed"]) == (1e-4, 7)
    code, _, err = run_cli(capsys, "export", "--from", str(plan_json), "--name", "c", "--set", "lora_rnak=8")
    assert (code, err) == (2, "sft-tui: unknown setting 'lora_rnak': did you mean lora_rank?\n")
    code, _, err = run_cli(capsys, "export", "--from", str(plan_json), "--name", "d", "--set", "seed=1", "--model", "qwen2.5-7b")
    assert (code, err) == (2, "sft-tui: --from takes the model, dataset, recipe and GPUs from plan.json, so --model "
                              "would be ignored: plan again without --from\n")
    assert not (tmp_path / "runs" / "c").exists() and not (tmp_path / "runs" / "d").exists()


def test_with_your_batch_the_weights_verdict_is_judged_at_one_row(capsys):
    """A --set micro-batch that overflows must not make the quantization reason say '16-bit
    weights fit: 64.3 of 24.0 GiB'."""
    _, out, _ = run_cli(capsys, "plan", "--model", "qwen2.5-7b", "--hardware", "rtx4090-24g",
                        "--set", "per_device_train_batch_size=16", "--set", "cutoff_len=1024", "--json")
    result = json.loads(out)
    text = result["reasons"]["quantization_bit"]["text"]
    assert text.endswith("GiB at one row per step") and text.startswith("16-bit weights fit: ")
    weights_at_one = float(text.split("fit: ")[1].split(" of ")[0])
    assert weights_at_one < result["estimate"]["capacity_gib"] < result["estimate"]["per_device_gib"]


def test_export_without_a_dataset_says_dataset_is_required(capsys, tmp_path):
    code, _, err = run_cli(capsys, "export", *PLAN[1:], "--out", str(tmp_path))
    assert (code, err) == (2, "sft-tui: --dataset is required: a bundle trains on your files "
                              "(sft-tui plan works without one)\n")


def test_your_batch_as_the_cause_leaves_only_the_ways_out_that_hold(capsys):
    """When sft-tui's own plan fits, a shorter cutoff or more GPUs worked out around your batch
    would not fit either: only your setting and the memory your plan needs are offered."""
    code, out, _ = run_cli(capsys, "plan", "--model", "qwen2.5-7b", "--hardware", "rtx4080-16g",
                           "--set", "per_device_train_batch_size=64", "--json")
    suggestions = json.loads(out)["suggestions"]
    assert code == 1 and len(suggestions) == 2
    assert suggestions[0].startswith("your per_device_train_batch_size=64: sft-tui would use ")
    assert suggestions[1].startswith("more memory: a GPU with at least ")
