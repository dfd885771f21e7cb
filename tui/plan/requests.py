"""Gathering a PlanRequest from what a user names: a hardware profile or `detected`, a model
name or directory, dataset files, a recipe, `--set` overrides. This is the I/O around the pure
planner; the CLI and the app both call it.
"""

from __future__ import annotations

from pathlib import Path

from tui.common.errors import SftTuiError
from tui.common.profiles import ProfileSet, load_profiles
from tui.common.text import plural
from tui.hardware.detect import detect
from tui.hardware.profile import devices_from_profile, gpu_count_problem, no_gpu_problem
from tui.models.architecture import ModelError
from tui.models.resolve import resolve_model
from tui.plan.settings import check_settings
from tui.plan.values import DataFacts, PlanRequest


class RequestError(SftTuiError):
    """Bad input: an unknown profile, an unreadable model or dataset. One sentence."""


# Settings the bundle decides from other choices: a --set for them would be overwritten, so the
# gate says where the choice is made instead of dropping it silently.
BUNDLE_OWNED = {
    "dataset": "the bundle registers your --dataset files",
    "eval_dataset": "the bundle registers the validation split of your --dataset files (a file named val/valid/dev/eval)",
    "dataset_dir": "the bundle's own dataset_info.json registers your files",
    "output_dir": "checkpoints go to saves/<run-id>: choose it with export --out and --name",
    "do_train": "a bundle trains",
}
# A recipe's own keys that are not LLaMA-Factory arguments.
RECIPE_KEYS = ("description", "effective_batch_size")


def parse_overrides(pairs: list[str]) -> dict:
    """`key=value` pairs (the text of --set or the wizard's Set box) through the settings gate:
    typed values, or RequestError with one line per problem. `key=` clears an Optional setting."""
    raw, problems = {}, []
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            problems.append(f"--set {pair!r}: expected KEY=VALUE with a LLaMA-Factory argument name as KEY")
            continue
        raw[key.strip()] = text.strip()
    typed, found = check_overrides(raw)
    if problems or found:
        raise RequestError("\n".join(problems + found))
    return typed


def check_overrides(values: dict) -> tuple[dict, list[str]]:
    """The gate for settings a user gives, as text or typed (plan.json, a retry): (typed, problems)."""
    typed, problems = check_settings(values)
    for key in [k for k in values if k in BUNDLE_OWNED]:
        typed.pop(key, None)
        problems.append(f"{key}: cannot be set here: {BUNDLE_OWNED[key]}")
    return typed, problems


def check_recipes(recipes: dict, profiles: ProfileSet) -> None:
    """Every recipe's LLaMA-Factory settings through the gate; a broken recipe file is named."""
    problems = []
    for name, data in recipes.items():
        _, found = check_settings({k: v for k, v in data.items() if k not in RECIPE_KEYS})
        profile = profiles.get("recipes", name)
        where = profile.source if profile is not None else name
        problems += [f"recipe {where}: {line}" for line in found]
    if problems:
        raise RequestError("\n".join(problems))


def training_packages(hardware: str) -> dict[str, bool] | None:
    """What the training environment can import, when planning for this machine (where it is
    found); None for another machine, whose environment sft-tui cannot see."""
    if hardware != "detected":
        return None
    from tui.hardware.environment import find_llamafactory, installed_packages

    install = find_llamafactory()
    return installed_packages(install.python) if install else None


def pick_devices(hardware: str, gpus: int | None, profiles: ProfileSet):
    """(devices, problems, RAM per node in GiB or None): a profile's devices and the RAM it states,
    or this machine's (all GPUs, else the CPU) and its RAM. A GPU count (--gpus) passes the one
    rule the wizard's GPUs box asks too, and is refused for a machine that has no GPU."""
    if gpus is not None and gpu_count_problem(gpus):
        raise RequestError(f"--gpus {gpus}: {gpu_count_problem(gpus)}")
    if hardware == "detected":
        detection = detect()
        found = detection.gpus
        if gpus is not None and not found:
            raise RequestError(f"--gpus {gpus}: {no_gpu_problem('this machine')}: leave --gpus out, "
                               f"or plan for another machine with --hardware NAME --gpus {gpus}")
        if gpus is not None:
            if gpus > len(found):
                raise RequestError(f"--gpus {gpus}: this machine has {plural(len(found), 'GPU')}")
            found = found[:gpus]
        cpu = [d for d in detection.devices if not d.is_gpu]
        return (found or cpu), detection.problems, detection.host_ram_gib
    profile = profiles.get("hardware", hardware)
    if profile is None:
        raise RequestError(f"unknown hardware {hardware!r}: {did_you_mean_hardware(hardware, profiles)}")
    if gpus is not None and not profile.data["gpus"]:
        raise RequestError(f"--gpus {gpus}: {no_gpu_problem(f'the hardware profile {profile.name}')}: "
                           "leave --gpus out, or choose a profile with GPUs")
    return devices_from_profile(profile.data, gpus), [], profile.data.get("host_ram_gib")


def did_you_mean_hardware(name: str, profiles: ProfileSet) -> str:
    """The rest of "unknown hardware NAME: ...": the profiles it may mean, else all of them."""
    close = profiles.close_names("hardware", name)
    if close:
        return f"did you mean {', '.join(close)}? (`sft-tui profiles hardware` lists them)"
    return f"use `detected` or one of {', '.join(profiles.names('hardware'))}"


def build_request(hardware: str, model: str, datasets: list[str] | None = None, recipe: str | None = None,
                  overrides: dict | None = None, gpus: int | None = None, nodes: int = 1,
                  profiles: ProfileSet | None = None, report=None, devices=None, modelscope: bool = False,
                  host_ram_gib: float | None = None):
    """(PlanRequest, validation report or None). A `report` already made (the wizard validates
    with a progress bar) is used instead of validating `datasets` again; `devices` chosen in the
    wizard are used instead of `hardware`'s, with the RAM per node that goes with them
    (`host_ram_gib`; otherwise it comes with the devices `hardware` names)."""
    profiles = profiles or load_profiles()
    if nodes < 1:
        raise RequestError(f"--nodes {nodes}: a node count is a whole number, at least 1")
    if devices is None:
        devices, _, found_ram = pick_devices(hardware, gpus, profiles)
        host_ram_gib = host_ram_gib if host_ram_gib is not None else found_ram
    try:
        model_info = resolve_model(model, profiles, modelscope=modelscope or None)
    except ModelError as err:
        raise RequestError(str(err)) from None
    recipes = {p.name: p.data for p in profiles.of("recipes")}
    check_recipes(recipes, profiles)
    overrides, problems = check_overrides(overrides or {})
    if problems:
        raise RequestError("\n".join(problems))
    broken = [f"recipe {problem}" for problem in profiles.problems
              if recipe and problem.path.parent.name == "recipes" and problem.path.stem.lower() == recipe.lower()]
    if broken:  # the file exists but cannot be used: say why, not "unknown recipe"
        raise RequestError("\n".join(broken))
    if recipe and recipe not in recipes:
        raise RequestError(f"unknown recipe {recipe!r}: one of {', '.join(sorted(recipes))}")
    data = None
    if report is None and datasets:
        from tui.datasets.validate import validate_paths

        report = validate_paths([Path(p) for p in datasets])
    if report is not None:
        if report.file_errors:
            raise RequestError("; ".join(report.file_errors))
        data = DataFacts.from_report(report)
    request = PlanRequest(devices=devices, model=model_info, recipes=recipes, recipe=recipe, data=data,
                          packages=training_packages(hardware),
                          host_ram_gib=host_ram_gib,
                          overrides=overrides, nodes=nodes)
    return request, report
