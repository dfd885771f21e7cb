"""What the Pilot tests of the app share: letting workers finish, reading a Static's text and the
notifications, typing into an input and pressing Enter, and filling the wizard up to Review, as a
user does."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Static


async def settle(app, pilot) -> None:
    """Until the app's workers (planning, validation, look-ups) are done and their results drawn."""
    await pilot.pause()
    # A worker may start another as it ends (a plan whose choices changed while it ran re-plans),
    # and wait_for_complete waits only for those it finds: wait until none is left unfinished.
    for _ in range(100):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if all(worker.is_finished for worker in app.workers):
            break


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


async def until(pilot, predicate, what: str, seconds: float = 120.0) -> None:
    """Poll `predicate` until it holds: a condition, not a time, so a busy machine only makes it
    slower. The deadline is generous and only there to end a test that would hang."""
    import time

    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")
        await pilot.pause(0.1)


def on_screen(app, widget=None) -> bool:
    """The widget (the focused one by default) is drawn whole on the screen, above the footer."""
    from textual.widgets import Footer

    widget = widget if widget is not None else app.focused
    if widget is None or not widget.region:
        return False
    screen = app.screen.region
    footers = [f.region for f in app.screen.query(Footer) if f.display]
    if footers:
        screen = screen.intersection(screen.__class__(0, 0, screen.width, min(f.y for f in footers)))
    return screen.contains_region(widget.region)


async def press(app, pilot, selector: str) -> None:
    """Press a button from the keyboard: focus it (which scrolls it into view) and Enter. A Pilot
    click lands wherever the button was last drawn, on the command palette when it is off screen."""
    from textual.widgets import Button

    button = app.screen.query_one(selector, Button)
    button.focus()
    await pilot.pause()
    await pilot.press("enter")


async def focus_is(app, pilot, expected, what: str = "", seconds: float = 60.0) -> None:
    """Wait until the focus is on `expected` (a widget, or its id). Textual moves the focus after the
    message that asked for it, so under load it lands after a settle: wait for it, not for a time."""

    def there() -> bool:
        focused = app.focused
        return focused is expected if not isinstance(expected, str) else focused is not None and focused.id == expected

    def where() -> str:
        step = app.query("#steps").first().active if app.query("#steps") else "-"
        return f"it is on {app.focused}, step {step}, notes: {notes(app)!r}"

    try:
        await until(pilot, there, f"focus on {expected} {what}", seconds)
    except AssertionError as err:
        raise AssertionError(f"{err} ({where()})") from None
