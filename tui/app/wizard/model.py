"""Step 2: a model profile, hub id or local directory, looked up as it is typed."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import (
    Button,
    Input,
    Label,
    Select,
    Static,
)

from tui.app.wizard.state import Step
from tui.app.wizard.widgets import PathSuggester


class ModelStep(Step):
    def compose(self) -> ComposeResult:
        yield Static("A model profile, a hub id, or a local model directory.", classes="note")
        with Horizontal(classes="row"):
            yield Label("Model", classes="label")
            yield Input(placeholder="qwen2.5-0.5b, Qwen/Qwen2.5-7B-Instruct or /path/to/model", id="model-input",
                        suggester=PathSuggester())
        yield Select([], prompt="or pick a model profile", id="model-profile")
        yield Static("", id="model-info")
        yield Button("Next: dataset", variant="primary", id="model-next")

    def on_mount(self) -> None:
        from tui.common.profiles import load_profiles

        self.query_one("#model-profile", Select).set_options([(n, n) for n in load_profiles().names("models")])
        if self.state.model:
            self.query_one("#model-input", Input).value = self.state.model

    @on(Select.Changed, "#model-profile")
    def profile_picked(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):  # not the blank choice
            self.query_one("#model-input", Input).value = event.value
            self.look_up(event.value)

    @on(Input.Submitted, "#model-input")
    @on(Input.Changed, "#model-input")
    def typed(self, event) -> None:
        if event.value.strip():
            self.look_up(event.value.strip())

    @work(thread=True, exclusive=True, group="model")
    def look_up(self, spec: str) -> None:
        from tui.common.profiles import load_profiles
        from tui.models.architecture import ModelError
        from tui.models.resolve import resolve_model

        try:
            info = resolve_model(spec, load_profiles())
        except ModelError as err:
            self.app.call_from_thread(self.show, spec, None, str(err))
            return
        self.app.call_from_thread(self.show, spec, info, None)

    def show(self, spec: str, info, problem: str | None) -> None:
        if spec != self.query_one("#model-input", Input).value.strip():
            return  # an answer for something typed before: a newer lookup is coming
        box = self.query_one("#model-info", Static)
        if info is None:
            box.update(Text(problem or "", style="red"))
            return
        if self.state.model != spec:
            self.state.plan = None
        self.state.model, self.state.model_info = spec, info
        arch = info.architecture
        lines = [Content.from_markup("[b]$name[/b] ($source)  $path", name=info.name, source=info.source,
                                     path=info.model_name_or_path),
                 f"parameters  {info.params / 1e9:.2f}B" if info.params >= 1e8 else f"parameters  {info.params:,}",
                 f"arch        {arch.model_type}: {arch.num_hidden_layers} layers, hidden {arch.hidden_size}, "
                 f"heads {arch.num_attention_heads}/{arch.num_key_value_heads}, vocab {arch.vocab_size}",
                 f"template    {info.template or '(none known: set template= on the plan step)'}"]
        if info.weights is not None:
            lines.append(Content.from_markup("weights     [green]complete[/green]") if info.weights.complete else
                         Content.from_markup("weights     [red]$problems[/red]", problems="; ".join(info.weights.problems())))
        lines += [Content.from_markup("[yellow]$note[/yellow]", note=note) for note in info.notes]
        box.update(Content("\n").join(lines))

    @on(Button.Pressed, "#model-next")
    def next_step(self) -> None:
        if self.state.model_info is None:
            self.notify("choose a model first", severity="warning")
            return
        self.app.action_next_step()
