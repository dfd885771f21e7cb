"""The wizard's model step: completion from the profiles and LLaMA-Factory's table, and a hub
look-up in a worker with a visible "resolving" state (the hub is tests/models/fake_hub.py)."""

from __future__ import annotations

import asyncio

from textual.widgets import Input, Static

from tests.models.fake_hub import FakeHub
from tests.models.test_resolve import QWEN3_30B_A3B, QWEN25_7B
from tests.support.pilot import settle
from tui.app.main import SftTuiApp
from tui.app.wizard.model import ModelSuggester, completion_candidates
from tui.common.profiles import load_profiles


def info_text(app) -> str:
    return str(app.query_one("#model-info", Static).render())


async def test_completion_from_profiles_then_llamafactory_table(tmp_path):
    suggester = ModelSuggester(completion_candidates(load_profiles(user_dir=tmp_path)))
    assert await suggester.get_suggestion("qwen3-1") == "qwen3-1.7b"  # profile names first
    assert await suggester.get_suggestion("qwen/qwen3-0.6") == "Qwen/Qwen3-0.6B"  # the hub's spelling
    assert await suggester.get_suggestion("google/gemma-2-27") == "google/gemma-2-27b"  # LLaMA-Factory's table
    assert await suggester.get_suggestion("qwen3-8b") is None  # complete already
    assert await suggester.get_suggestion("zzz/nothing") is None
    (tmp_path / "my-model").mkdir()
    assert await suggester.get_suggestion(f"{tmp_path}/my-m") == f"{tmp_path}/my-model/"


async def test_a_hub_id_is_resolved_in_a_worker_with_a_resolving_state(tmp_path, monkeypatch):
    for name in ("HF_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    with FakeHub() as hub:
        hub.add("acme/moe-bot", {"config.json": QWEN3_30B_A3B})
        hub.add("acme/support-bot-7b", {"config.json": QWEN25_7B})
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        app = SftTuiApp()
        async with app.run_test(size=(100, 32)) as pilot:
            app.go_to("model")
            await settle(app, pilot)
            box = app.query_one("#model-input", Input)
            box.value = "acme/moe-bot"
            await pilot.pause()
            assert "will look up acme/moe-bot" in info_text(app) and hub.requests == []  # waits for a pause
            seen = []
            for _ in range(200):  # the look-up starts once typing has paused for HUB_LOOKUP_DELAY
                await asyncio.sleep(0.05)
                seen.append(info_text(app).splitlines()[0])
                if "(hub)" in seen[-1]:
                    break
            await settle(app, pilot)
            assert any(line.startswith("resolving acme/moe-bot") for line in seen) or "(hub)" in seen[0], seen
            text = info_text(app)
            assert "moe-bot (hub)  acme/moe-bot" in text
            assert "30.53B (3.35B active: 8 of 128 experts per token)" in text
            assert "template    qwen3" in text and "check it" in text
            assert app.state.model_info.source == "hub"
            # Enter looks up at once; a typo's error is shown, one sentence.
            box.value = "acme/support-bot-8b"
            await pilot.pause()
            await box.action_submit()
            await settle(app, pilot)
            assert "acme/support-bot-8b is not a model on" in info_text(app)
            # A profile answers without the hub.
            before = len(hub.requests)
            box.value = "qwen3-8b"
            await settle(app, pilot)
            assert "qwen3-8b (profile)  Qwen/Qwen3-8B" in info_text(app) and len(hub.requests) == before
