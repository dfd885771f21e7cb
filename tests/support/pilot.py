"""What the Pilot tests of the app share: letting workers finish, reading a Static's text and the
notifications, typing into an input and pressing Enter, and filling the wizard up to Review, as a
user does."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Static


async def settle(app, pilot) -> None:
    """Until the app's workers (planning, validation, look-ups) are done and their results drawn."""
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


def text_of(app, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


async def submit(app, pilot, selector: str, text: str) -> None:
    """`text` in the input `selector`, then Enter, then settle."""
    box = app.query_one(selector, Input)
    box.value = text
    box.focus()
    await pilot.press("enter")
    await settle(app, pilot)


def notes(app) -> str:
    return "\n".join(str(n.message) for n in app._notifications)


async def type_dataset(app, pilot, value: str) -> None:
    app.go_to("dataset")
    await settle(app, pilot)
    box = app.query_one("#dataset-input", Input)
    box.value = value
    box.focus()  # the step opens on its Next button once files are chosen
    await pilot.press("enter")
    await settle(app, pilot)


async def fill_to_review(app, pilot, model: str, dataset: str, out: Path, name: str) -> None:
    app.go_to("model")
    await settle(app, pilot)
    app.query_one("#model-input", Input).value = model
    await settle(app, pilot)
    await type_dataset(app, pilot, dataset)
    app.go_to("plan")
    await settle(app, pilot)
    app.go_to("review")
    await settle(app, pilot)
    app.query_one("#out-dir", Input).value = str(out)
    app.query_one("#run-name", Input).value = name
    await settle(app, pilot)
