"""The app speaks its own language (issue 25, item 7): it names its own controls, never a CLI flag
(a full `sft-tui ...` command in backticks is a command to copy, and may name its flags); values
are spelled as train.yaml spells them; counts agree with their nouns; memory is in GiB; a run that
failed to start says why, with the progress bar stopped; the install hint is a command that works
from this checkout."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import Button, DataTable, Input, Label, ProgressBar, Static

from tests.app.test_snapshots import wizard_state
from tests.runs.recorded import recorded_run
from tests.support.pilot import fill_to_review, settle, submit, text_of
from tui.app.main import SftTuiApp

REPO = Path(__file__).resolve().parents[2]
S2 = str(REPO / "tests" / "data" / "s2")
FLAG = re.compile(r"(?<![\w`-])--[a-z][\w-]*")


def bare_flags(text: str) -> list[str]:
    """CLI flags `text` names as if they were the app's controls: a whole command in backticks
    (`sft-tui run RUN --resume`) is one to copy, and may name its flags; a flag alone may not."""
    parts = text.split("`")
    said = [part for n, part in enumerate(parts) if n % 2 == 0 or " " not in part.strip() or part.startswith("--")]
    return FLAG.findall(" ".join(said))


def shown_text(screen) -> str:
    """Everything the screen shows a user: statics, labels, inputs' placeholders, table cells."""
    parts = []
    for widget in screen.query("*"):
        if isinstance(widget, (Static, Label)):
            parts.append(str(widget.render()))
        elif isinstance(widget, Input):
            parts += [widget.placeholder, widget.value]
        elif isinstance(widget, DataTable):
            parts += [str(cell) for row in range(widget.row_count) for cell in widget.get_row_at(row)]
    return "\n".join(parts)


async def test_no_step_names_a_cli_flag(tmp_path):
    from textual.widgets import Select

    app = SftTuiApp(state=wizard_state(env=""))
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(app, pilot)
        app.query_one("#hardware-profile", Select).value = "rtx3060-12g"
        await settle(app, pilot)
        assert bare_flags(shown_text(app.screen)) == []
        assert "--gpus" not in app.query_one("#gpu-count", Input).placeholder
        app.query_one("#hardware-profile", Select).value = "detected"  # the RTX 4080: fa2 is available
        await settle(app, pilot)

        await fill_to_review(app, pilot, "qwen2.5-0.5b", S2, tmp_path, "a b")  # a run name it refuses
        said = shown_text(app.screen)
        assert bare_flags(said) == [], said
        assert "run name 'a b': use letters, digits" in text_of(app, "#plan-diff")

        app.go_to("plan")
        await settle(app, pilot)
        said = shown_text(app.screen)
        assert bare_flags(said) == [], said
        assert "fa2 is available: flash_attn=fa2 in step 4's Set box" in said

        await submit(app, pilot, "#plan-set", "finetuning_type=full")  # nothing fits: what would fit, in app words
        await submit(app, pilot, "#plan-set", "per_device_train_batch_size=1024")
        assert not app.state.plan.fits
        said = shown_text(app.screen)
        assert bare_flags(said) == [], said
        assert "What would fit" in text_of(app, "#plan-verdict")


async def test_review_spells_values_as_train_yaml_does(tmp_path):
    app = SftTuiApp(state=wizard_state(env=""))
    async with app.run_test(size=(120, 50)) as pilot:
        await fill_to_review(app, pilot, "qwen2.5-0.5b", S2, tmp_path, "spelled")
        app.go_to("plan")
        await settle(app, pilot)
        await submit(app, pilot, "#plan-set", "packing=true")
        await submit(app, pilot, "#plan-set", "max_samples=")  # cleared: null
        app.state.overrides["max_samples"] = None
        app.go_to("review")
        await settle(app, pilot)
        diff = text_of(app, "#plan-diff")
        assert "packing = true" in diff and "max_samples = null" in diff, diff
        assert not re.search(r"= (None|True|False)\b", diff), diff


async def test_counts_agree_with_their_nouns(tmp_path):
    one = tmp_path / "one.jsonl"
    one.write_text('{"instruction": "Say hi", "input": "", "output": "hi"}\n')
    app = SftTuiApp(state=wizard_state(env=""))
    async with app.run_test(size=(120, 50)) as pilot:
        app.go_to("dataset")
        await settle(app, pilot)
        app.query_one("#dataset-input", Input).value = str(one)
        app.query_one("#validate", Button).press()
        await settle(app, pilot)
        stats = text_of(app, "#dataset-stats")
        assert "1 valid row of 1" in stats and "0 rows longer" in stats, stats
        assert not re.search(r"\b1 rows\b", stats)


def test_the_eval_line_and_the_core_agree_in_number():
    from tui.after.evaluate import EvalResult

    note = EvalResult(Path("."), [{"label": "a", "predict": ""}], {}).empty_note()
    assert "nothing for 1 of 1 row," in note and bare_flags(note) == []


async def test_the_start_dialog_says_gib_like_every_other_screen():
    from tui.app.wizard.run import ConfirmOtherHardware
    from tui.hardware.device import Detection
    from tui.runs.preflight import hardware_mismatch

    from tests.app.test_snapshots import CPU

    spec = {"hardware": {"vendor": "nvidia", "gpus": 1, "device": "NVIDIA GeForce RTX 4090"},
            "plan": {"settings": {"bf16": True}, "estimate": {"capacity_gib": 23.99}}}
    mismatch = hardware_mismatch(spec, Detection([CPU], []))
    app = SftTuiApp(state=wizard_state())
    async with app.run_test(size=(100, 32)) as pilot:
        app.push_screen(ConfirmOtherHardware(mismatch.planned, mismatch.here))
        await pilot.pause()
        question = str(app.screen.query_one("#confirm-text", Label).render())
        assert "NVIDIA GeForce RTX 4090 (24 GiB)" in question and " GB)" not in question


async def test_a_run_that_failed_to_start_says_why_and_its_bar_stops(tmp_path, monkeypatch):
    run_dir = recorded_run(tmp_path, "finished")
    (run_dir / "train.log").write_text("")  # run_sft.sh gave up before training: no trainer log either
    shutil.rmtree(tmp_path / "saves")
    (run_dir / "exit_code").write_text("127\n")
    reason = ("no virtualenv at /opt/gone (no bin/activate): create it there with LLaMA-Factory, "
              "or export again with --env venv:PATH")
    (run_dir / "exit_reason").write_text(reason + "\n")
    monkeypatch.chdir(tmp_path)
    app = SftTuiApp(monitor=run_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        monitor = app.screen.query_one("RunMonitor")
        for _ in range(30):
            await pilot.pause(0.2)
            if monitor.ended_event is not None:
                break
        await pilot.pause(0.5)
        status = str(monitor.query_one("#run-status", Static).render())
        assert status.startswith("failed  no virtualenv at /opt/gone"), status
        assert "waiting for training to start" not in status and bare_flags(status) == [], status
        bar = monitor.query_one("#run-progress", ProgressBar)
        assert not (bar.display and bar.total is None), "an indeterminate bar keeps moving after the failure"
        assert monitor.query_one("#run-status").size.height >= 2  # the whole sentence, not its first line


async def test_the_stop_question_names_no_flag():
    from tui.app.monitor import ConfirmStop

    app = SftTuiApp(state=wizard_state())
    async with app.run_test(size=(100, 32)) as pilot:
        app.push_screen(ConfirmStop())
        await pilot.pause()
        assert bare_flags(shown_text(app.screen)) == []


def test_the_install_hint_is_a_command_that_works_from_this_checkout():
    from tui.common.packages import train_extra_command

    command = train_extra_command()
    words = shlex.split(command)
    assert words[:4] == [sys.executable, "-m", "pip", "install"], command
    assert words[4:] == ["-e", f"{REPO}[train]"], command
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]  # the checkout pip installs from
    assert project["name"] == "sft-tui" and project["optional-dependencies"]["train"]


def test_no_install_hint_names_a_package_index_sft_tui_is_not_on():
    found = subprocess.run(["grep", "-rn", "install 'sft-tui\\[", str(REPO / "tui"), str(REPO / "README.md")],
                           capture_output=True, text=True)
    assert found.stdout == ""


CORE_SENTENCES = [  # what tui.plan, tui.bundle, tui.runs and tui.models say, as the CLI says it
    "LLaMA-Factory picks sdpa (memory linear in length); fa2 is available: --set flash_attn=fa2",
    "a shorter cutoff_len: 1024 fits one row per step (--set cutoff_len=1024)",
    "more GPUs: 4 of these with DeepSpeed ZeRO-3 (--gpus 4)",
    "if liger-kernel is installed: with --set enable_liger_kernel=true the logits' 5.0 GiB shrink",
    "your --set per_device_train_batch_size=64 is part of a plan that no longer fits",
    "--name 'a b': use letters, digits, '.', '_' and '-' only",
    "--env 'x': use conda:NAME or venv:PATH",
    "a bundle needs a dataset: pass --dataset PATH",
    "no virtualenv at /x (no bin/activate): create it there with LLaMA-Factory, or export again with --env venv:PATH",
    "train again with a lower learning_rate (--set learning_rate=...), or a shorter warmup",
    "train on a GPU with more memory, or on more GPUs with DeepSpeed ZeRO-3 (--gpus N)",
    "acme/x is a LoRA adapter (adapter_config.json, no config.json) trained on Qwen/Q: plan with "
    "--model Qwen/Q, and give the adapter to LLaMA-Factory as adapter_name_or_path=acme/x",
]


@pytest.mark.parametrize("sentence", CORE_SENTENCES)
def test_the_core_s_sentences_come_out_in_the_app_s_words(sentence):
    from tui.app.wizard.wording import in_app_words

    said = in_app_words(sentence)
    assert bare_flags(said) == [], said
    assert in_app_words("stopped at 3/9; continue with `sft-tui run runs/x --resume`").endswith(
        "`sft-tui run runs/x --resume`")  # a command to copy stays as it is


def test_the_demo_without_llamafactory_prints_that_command(tmp_path):
    """An interpreter with no LLaMA-Factory beside it and none on PATH: the demo's hint names the
    checkout's train extra for that interpreter (the system python here, when it can import sft-tui)."""
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        pytest.skip("no system python3 to run without LLaMA-Factory")
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "from tui.runs.demo import DemoError, find_training_env\n"
            "try:\n    find_training_env()\nexcept DemoError as err:\n    print(err)\n")
    done = subprocess.run([python, "-c", code, str(REPO)], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, cwd=tmp_path)
    if done.returncode != 0 or "LLaMA-Factory" not in done.stdout:
        pytest.skip(f"the system python cannot import sft-tui's core: {done.stderr[-300:]}")
    assert f"{python} -m pip install -e '{REPO}[train]'" in done.stdout, done.stdout


def test_from_a_wheel_the_hint_installs_the_train_extra_s_own_requirements():
    from tui.common.packages import train_extra_command

    words = shlex.split(train_extra_command(checkout=None))  # no checkout: sft-tui's installed metadata
    assert words[:4] == [sys.executable, "-m", "pip", "install"]
    assert any(w.startswith("llamafactory") and "0.9.5" in w for w in words[4:]), words
    assert "sft-tui[train]" not in " ".join(words)
