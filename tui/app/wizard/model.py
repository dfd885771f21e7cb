"""Step 2: a model profile, hub id or local directory, looked up as it is typed.

Profiles and local directories answer at once. A hub id is looked up in the Hugging Face cache
and then on the hub, in a worker, once typing pauses (or on Enter), with a visible "resolving"
state; the input completes profile names, their hub ids and LLaMA-Factory's hub ids.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.suggester import Suggester
from textual.timer import Timer
from textual.widgets import (
    Button,
    Input,
    Label,
    Select,
    Static,
)

from tui.app.wizard.state import Step
from tui.app.wizard.widgets import PathInput, PathSuggester
from tui.app.wizard.wording import in_app_words

# Seconds typing must pause before a hub id is looked up (each look-up is a request to the hub).
HUB_LOOKUP_DELAY = 0.8


class ModelSuggester(Suggester):
    """Completes a path from the file system, else a profile name or hub id (profiles first, then
    LLaMA-Factory's table), in its own spelling. A complete name or id gets no suggestion."""

    def __init__(self, candidates: list[str]):
        super().__init__(use_cache=False, case_sensitive=True)
        self.candidates = candidates
        self.exact = {c.lower() for c in candidates}
        self.paths = PathSuggester()

    async def completions(self, value: str) -> list[str]:
        """Every candidate the text typed begins (Tab's list, tui.app.wizard.widgets.PathInput)."""
        if value.startswith(("/", ".", "~")):
            return await self.paths.completions(value)
        typed = value.lower()
        return [c for c in self.candidates if c.lower().startswith(typed)] if typed else []

    async def get_suggestion(self, value: str) -> str | None:
        if value.startswith(("/", ".", "~")):
            return await self.paths.get_suggestion(value)
        typed = value.lower()
        if not typed or typed in self.exact:
            return None
        return next((c for c in self.candidates if c.lower().startswith(typed) and len(c) > len(value)), None)


def completion_candidates(profiles) -> list[str]:
    from tui.models.lf_table import hub_ids

    names = profiles.names("models")
    profile_hub_ids = [h for p in profiles.of("models") for h in p.data["hub_ids"]]
    seen: set[str] = set()
    unique: list[str] = []
    for c in (*names, *profile_hub_ids, *hub_ids()):  # the first of each, case aside
        if c.lower() not in seen:
            seen.add(c.lower())
            unique.append(c)
    return unique


class ModelStep(Step):
    _pending: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static("A model profile, a hub id, or a local model directory.", classes="note")
        with Horizontal(classes="row"):
            yield Label("Model", classes="label")
            yield PathInput(placeholder="qwen2.5-0.5b, Qwen/Qwen2.5-7B-Instruct or /path/to/model", id="model-input",
                            select_on_focus=False)  # focus comes back here after a refusal: typing goes on
        yield Select([], prompt="or pick a model profile", id="model-profile")
        yield Static("", id="model-info")
        yield Button("Next: dataset", variant="primary", id="model-next")

    def on_mount(self) -> None:
        from tui.common.profiles import load_profiles

        profiles = load_profiles()
        # Names a profile answers at once, without the cache or the hub.
        self._known = {n.lower() for n in profiles.names("models")}
        self._known |= {h.lower() for p in profiles.of("models") for h in p.data["hub_ids"]}
        self.query_one("#model-profile", Select).set_options([(n, n) for n in profiles.names("models")])
        self.query_one("#model-input", Input).suggester = ModelSuggester(completion_candidates(profiles))
        if self.state.model:
            self.query_one("#model-input", Input).value = self.state.model

    @on(Select.Changed, "#model-profile")
    def profile_picked(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):  # not the blank choice
            self.query_one("#model-input", Input).value = event.value
            self.look_up(event.value)

    def needs_hub(self, spec: str) -> bool:
        """A hub id no profile covers and no local directory answers: the cache or the hub must."""
        from pathlib import Path

        from tui.models.hub import looks_like_hub_id

        return looks_like_hub_id(spec) and spec.lower() not in self._known and not Path(spec).expanduser().is_dir()

    @on(Input.Changed, "#model-input")
    def typed(self, event: Input.Changed) -> None:
        spec = event.value.strip()
        if self._pending is not None:
            self._pending.stop()
            self._pending = None
        # What the box holds is the model the next steps get, once it is resolved.
        resolved = spec and spec == self.state.model and self.state.model_info is not None
        self.state.model_typed(None if resolved else (
            f"still resolving {spec}" if spec else "choose a model first: a model profile, hub id or local directory"))
        if not spec:
            return
        if self.needs_hub(spec):  # wait for a pause in typing: each look-up may be a request
            self.show_resolving(spec, waiting=True)
            self._pending = self.set_timer(HUB_LOOKUP_DELAY, lambda: self.start_look_up(spec))
        else:
            self.start_look_up(spec)

    @on(Input.Submitted, "#model-input")
    def submitted(self, event: Input.Submitted) -> None:
        if self._pending is not None:
            self._pending.stop()
            self._pending = None
        if event.value.strip():
            self.start_look_up(event.value.strip())

    def start_look_up(self, spec: str) -> None:
        if spec != self.query_one("#model-input", Input).value.strip():
            return  # typed on since
        if self.needs_hub(spec):
            self.show_resolving(spec, waiting=False)
        self.look_up(spec)

    def show_resolving(self, spec: str, waiting: bool) -> None:
        what = "will look up" if waiting else "resolving"
        self.query_one("#model-info", Static).update(Content.from_markup(
            f"[yellow]{what}[/yellow] $spec… (the Hugging Face cache, then the hub: config.json only)", spec=spec))

    @work(thread=True, exclusive=True, group="model", exit_on_error=False)
    def look_up(self, spec: str) -> None:
        from tui.common.profiles import load_profiles
        from tui.models.architecture import ModelError
        from tui.models.resolve import resolve_model

        try:
            info = resolve_model(spec, load_profiles())
        except ModelError as err:
            self.app.call_from_thread(self.show, spec, None, in_app_words(str(err)))
            return
        except ImportError as err:  # a broken install: the sentence that fixes it, the app stays
            from tui.common.packages import missing_package_sentence

            self.app.call_from_thread(self.show, spec, None, missing_package_sentence(err, "looking models up"))
            return
        self.app.call_from_thread(self.show, spec, info, None)

    def show(self, spec: str, info, problem: str | None) -> None:
        if spec != self.query_one("#model-input", Input).value.strip():
            return  # an answer for something typed before: a newer lookup is coming
        box = self.query_one("#model-info", Static)
        if info is None:
            self.state.model_typed(problem or f"{spec}: not a model")
            box.update(Text(problem or "", style="red"))
            return
        self.state.model_resolved(spec, info)
        arch = info.architecture
        params = f"parameters  {info.params / 1e9:.2f}B" if info.params >= 1e8 else f"parameters  {info.params:,}"
        if arch.is_moe:
            params += (f" ({info.active_params / 1e9:.2f}B active: {arch.experts_per_token} of "
                       f"{arch.num_experts} experts per token)")
        lines: list[str | Content] = [Content.from_markup("[b]$name[/b] ($source)  $path", name=info.name, source=info.source,
                                     path=info.model_name_or_path),
                 params,
                 f"arch        {arch.model_type}: {arch.num_hidden_layers} layers, hidden {arch.hidden_size}, "
                 f"heads {arch.num_attention_heads}/{arch.num_key_value_heads}, vocab {arch.vocab_size}",
                 f"template    {info.template or '(none known: set template= on the plan step)'}"]
        if info.weights is not None:
            lines.append(Content.from_markup("weights     [green]complete[/green]") if info.weights.complete else
                         Content.from_markup("weights     [red]$problems[/red]", problems="; ".join(info.weights.problems())))
        lines += [Content.from_markup("[yellow]$note[/yellow]", note=note) for note in info.notes]
        box.update(Content("\n").join(lines))

    def refusal(self) -> str | None:
        return self.state.model_refusal()  # the steps after need a resolved model

    def first_input(self):
        box = self.query_one("#model-input", Input)
        return box if not box.value.strip() or self.state.model_refusal() else None

    @on(Button.Pressed, "#model-next")
    def next_step(self) -> None:
        self.app.action_next_step()  # the app's one gate: a resolved model (as for ctrl+n and the step bar)
