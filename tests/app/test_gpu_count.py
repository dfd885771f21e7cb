"""The wizard's GPUs box asks the CLI's --gpus rules (tui/hardware/profile.py): a count from 1 to
64, and none at all for a profile without a GPU, said under the box in the app's words."""

from __future__ import annotations

from textual.widgets import Input, Select

from tests.app.test_snapshots import wizard_state
from tests.support.pilot import settle, text_of
from tui.app.main import SftTuiApp


async def test_the_gpus_box_refuses_what_the_cli_refuses():
    app = SftTuiApp(state=wizard_state())
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        app.query_one("#hardware-profile", Select).value = "cpu"
        await settle(app, pilot)
        box = app.query_one("#gpu-count", Input)
        assert "--" not in box.placeholder and "64" in box.placeholder
        for typed, said in [("2", "GPUs: the hardware profile cpu has no GPU, so the plan is for its CPU: leave it "
                                   "empty, or choose a profile with GPUs"),
                            ("0", "GPUs: a GPU count is a whole number from 1 to 64 per node, or empty for the profile's"),
                            ("-3", "GPUs: a GPU count is a whole number from 1 to 64 per node, or empty for the profile's")]:
            box.value = typed
            await settle(app, pilot)
            assert text_of(app, "#profile-note") == said and app.state.gpu_problem == said
            assert app.state.gpus is None
        app.query_one("#hardware-profile", Select).value = "rtx3060-12g"
        box.value = "64"
        await settle(app, pilot)
        assert app.state.gpu_problem is None and app.state.gpus == 64
        assert "with 64 GPUs" in text_of(app, "#profile-note")
        box.value = "1"
        await settle(app, pilot)
        assert "with 1 GPU." in text_of(app, "#profile-note")
