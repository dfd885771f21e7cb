"""`sft-tui plan`, `export` and `check`."""

from __future__ import annotations

import shlex
import sys

from tui.cli.common import EXIT_OK, EXIT_PROBLEMS, UserError, plural, print_json

BAR_PARTS = (("weights", "W"), ("trainable", "T"), ("gradients", "T"), ("optimizer", "T"),
             ("activations", "A"), ("logits", "L"), ("overhead", "O"))


BAR_WIDTH = 60


def memory_bar(breakdown: dict, capacity: float) -> str:
    """The breakdown as one line of letters against the device's capacity ('.' is free)."""
    from tui.plan.memory import bar_cells

    letters = dict(BAR_PARTS)
    parts, free = bar_cells(breakdown, capacity, BAR_WIDTH)
    cells = "".join(letters[key] * n for key, n in parts) + "." * free
    return f"[{cells.ljust(BAR_WIDTH)}]"


def print_plan(plan, request) -> None:
    est = plan.estimate
    devices = request.devices
    where = (f"{plan.n_gpus} x {devices[0].name}" if devices[0].is_gpu else devices[0].name)
    nodes = f" x {plan.nodes} nodes" if plan.nodes > 1 else ""
    print(f"Plan: {request.model.model_name_or_path} on {where}{nodes} ({plan.capacity_gib:.1f} GiB per device), recipe {plan.recipe}")
    for note in request.model.notes:  # where the counts and the template came from, image tokens, ...
        print(f"  model: {note}")
    usable = plan.usable_gib
    verdict = "fits" if plan.fits else "DOES NOT FIT"
    print(f"\nPeak memory per device: {est.per_device_gib:.1f} GiB of {usable:.1f} usable: {verdict}")
    if plan.simulated and plan.simulated.get("peak_gib") is not None:
        sim = plan.simulated
        print(f"  simulated: {sim['peak_gib']:.2f} GiB peak in {sim['phase']} (one step on fake tensors, "
              f"{sim['source']}) + {sim['overhead_gib']:.2f} GiB overhead; the analytic estimate "
              f"said {sim['analytic_gib']:.1f} GiB")
    elif plan.simulated:
        print(f"  analytic estimate, not simulated: {plan.simulated['why_not']}")
    if plan.memory_history:  # tui.plan.calibrated: your runs' peaks against their estimates
        print(f"  {plan.memory_history['text']}")
    print("  " + memory_bar(est.breakdown, plan.capacity_gib))
    print("  W weights  T trainable, gradients, optimizer  A activations  L logits  O overhead  . free")
    print("  " + "  ".join(f"{k} {v:.2f}" for k, v in est.breakdown.items()) + " (GiB)")
    if est.cpu_offload_gib:
        print(f"  CPU RAM for offloaded states: {est.cpu_offload_gib:.1f} GiB")
    print(f"  sequence length estimated: {plan.seq_len_source}")
    if plan.host_ram:
        ram = plan.host_ram
        parts = "  ".join(f"{k} {v:.1f}" for k, v in ram.parts.items() if v and k != "merge")
        where = "" if ram.available_gib is None else f" of {ram.available_gib:.0f} GiB"
        print(f"  host RAM per node: {ram.total_gib:.1f} GiB{where} ({parts}); merging needs {ram.parts['merge']:.1f}")
    if plan.cutoff_options:
        print("\nCutoff options (rows truncated, memory per device at this batch):")
        for option in plan.cutoff_options:
            mark = "fits" if option["fits"] else "does not fit"
            chosen = "  <- planned" if option["cutoff_len"] == plan.settings.get("cutoff_len") else ""
            print(f"  cutoff_len {option['cutoff_len']:>6}  {option['rows_truncated']:>7} rows truncated  "
                  f"{option['per_device_gib']:6.1f} GiB  {mark}{chosen}")
    print("\nSettings:")
    width = max(len(k) for k in plan.settings)
    for key, value in plan.settings.items():
        reason = plan.reasons.get(key)
        shown = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        print(f"  {key:<{width}}  {shown:<14} {reason.kind:<7} {reason.text}" if reason else f"  {key:<{width}}  {shown}")
    recipe_reason = plan.reasons["recipe"]
    print(f"\nRecipe: {plan.recipe} ({recipe_reason.kind}: {recipe_reason.text})")
    if plan.steps is not None:
        print(f"Optimizer steps: {plan.steps}")
    if plan.time_estimate is not None:
        from tui.plan.timing import summary_line

        print(summary_line(plan.time_estimate))
    for warning in plan.warnings:
        print(f"warning: {warning}")
    if plan.suggestions:
        print("What would fit:")
        for suggestion in plan.suggestions:
            print(f"  - {suggestion}")


def make_plan_from_args(args):
    """(plan, request, validation report) from the plan options shared by plan and export."""
    from tui.plan.planner import plan as make_plan
    from tui.plan.requests import RequestError, build_request, parse_overrides

    if not args.model:
        raise UserError("--model is required")
    try:
        request, report = build_request(args.hardware, args.model, args.dataset, args.recipe,
                                        parse_overrides(args.set or []), args.gpus, args.nodes, modelscope=bool(getattr(args, "modelscope", False)))
        request.price_per_gpu_hour = getattr(args, "price_per_gpu_hour", None)
        result = make_plan(request)
    except (RequestError, ValueError) as err:
        raise UserError(str(err)) from None
    from tui.plan.simulated import apply_simulation

    # The chosen plan judged on its simulated step (the training environment's python; cached).
    result = apply_simulation(result, request, enabled=not getattr(args, "no_simulate", False),
                              progress=None if getattr(args, "json", False) else
                              lambda text: print(text, file=sys.stderr, flush=True))
    from tui.plan.calibrated import apply_history

    # the time estimate corrected by your own runs on this hardware (the run history), unless --no-history
    result = apply_history(result, request, enabled=not getattr(args, "no_history", False))
    return result, request, report


def cmd_plan(args) -> int:
    from tui.datasets.gate import dataset_refusal

    result, request, report = make_plan_from_args(args)
    if args.json:
        print_json(result.to_json() | {"model": request.model.to_json()})  # id, source, params, active_params, template
    else:
        print_plan(result, request)
        refusal = dataset_refusal(report, drop_errors=False) if report is not None else None
        if refusal:  # planning goes on; `export` refuses until the rows are fixed or dropped
            print(f"warning: {refusal}")
    return EXIT_OK if result.fits else EXIT_PROBLEMS


def replanned_spec(args, old: dict, out) -> dict:
    """`export --from plan.json --set ...`: the old plan's hardware, model, files, recipe and
    settings, planned again with the new --set values; a new run directory (--name, else a new id)."""
    from pathlib import Path

    from tui.bundle.replan import request_from_spec
    from tui.bundle.spec import LaunchOptions, make_spec
    from tui.plan.planner import plan
    from tui.plan.requests import RequestError, parse_overrides

    try:
        request, report = request_from_spec(old, parse_overrides(args.set))
        result = plan(request)
    except (RequestError, ValueError) as err:
        raise UserError(str(err)) from None
    from tui.plan.calibrated import apply_history

    result = apply_history(result, request, enabled=not getattr(args, "no_history", False))
    launch = {k: v for k, v in old["launch"].items() if k in LaunchOptions.__dataclass_fields__}
    root = out or Path(old["paths"]["run_dir"]).parent.parent
    return make_spec(result, request, report, LaunchOptions(**launch), root, args.name,
                     hardware_name=old["hardware"]["name"])


def cmd_export(args) -> int:
    import sys
    from pathlib import Path

    from tui.bundle.environment import default_env
    from tui.bundle.export import DatasetRefused, export_bundle, export_spec
    from tui.bundle.spec import NEW_SUFFIX, BundleError, LaunchOptions, load_spec, relocated
    from tui.bundle.write import register_into
    from tui.datasets.validate import validate_paths

    out = Path(args.out) if args.out else None
    chosen_env = env_warning = None
    try:
        given = [flag for flag, value in (("--model", args.model), ("--dataset", args.dataset), ("--recipe", args.recipe),
                                          ("--gpus", args.gpus)) if value]
        if args.from_plan and given:  # plan.json names them; changing them is a new plan
            raise UserError(f"--from takes the model, dataset, recipe and GPUs from plan.json, so {', '.join(given)} "
                            "would be ignored: plan again without --from")
        if args.from_plan:
            old = load_spec(Path(args.from_plan))
            # With --set, plan.json is planned again with your new settings on top; without, rendered as it is.
            spec = replanned_spec(args, old, out) if args.set else relocated(old, out, args.name)
            # The files plan.json registers may have changed since: they pass the same gate.
            report = validate_paths([Path(e["file_name"]) for e in spec["datasets"]["entries"].values()])
            exported = export_spec(spec, report, force=args.force, drop_errors=args.drop_errors)
            fits = exported.spec["plan"]["estimate"]["fits"]
        else:
            if not args.dataset:  # the dataset gate would say "validate the dataset first": say what to do
                raise UserError("--dataset is required: a bundle trains on your files (sft-tui plan works without one)")
            result, request, report = make_plan_from_args(args)
            gpu_ids = [int(i) for i in args.gpu_ids.split(",")] if args.gpu_ids else None
            env = args.env
            if env is None:
                env, chosen_env = default_env(args.hardware)
            elif args.hardware == "detected" and env.startswith("venv:") and not (Path(env[5:]) / "bin" / "activate").is_file():
                env_warning = f"warning: --env {env}: no virtualenv there on this machine; `sft-tui run` refuses until it exists"
            launch = LaunchOptions(env=env, gpu_ids=gpu_ids, master_addr=args.master_addr, slurm=args.slurm,
                                   ray=args.ray, modelscope=args.modelscope)
            # the one export (the wizard's too): the dataset gate first, nothing written when it refuses
            exported = export_bundle(result, request, report, launch, out or Path("."), args.name,
                                     hardware_name=args.hardware, force=args.force, drop_errors=args.drop_errors)
            fits = result.fits
        spec, written = exported.spec, exported.result
        registered = register_into(Path(args.register_into), spec["datasets"]["entries"], args.replace) if args.register_into else None
    except DatasetRefused as err:
        print(f"sft-tui: {err}", file=sys.stderr)
        return EXIT_PROBLEMS
    except BundleError as err:
        raise UserError(str(err)) from None
    if env_warning:
        print(env_warning, file=sys.stderr)
    from tui.cli.history import record_in_history

    record_in_history([written.run_dir])
    command = f"bash {written.run_dir / 'run_sft.sh'}"
    if args.json:
        print_json({"run_dir": str(written.run_dir), "files": written.written, "kept": written.kept,
                    "command": command, "fits": fits, "registered_into": str(registered) if registered else None,
                    "env": spec["launch"]["env"], "dropped_rows": written.dropped})
    else:
        if chosen_env:
            print(chosen_env)
        for copy, rows in written.dropped.items():
            print(f"{copy}: the copy without the {plural(rows, 'row')} with errors (registered in dataset_info.json)")
        print(f"Wrote {written.run_dir}: {', '.join(written.written)}")
        for name in written.kept:
            print(f"kept your edited {name}; the new version is {name}{NEW_SUFFIX}")
        if registered:
            print(f"Registered {', '.join(spec['datasets']['entries'])} in {registered} (previous version: dataset_info.json.bak)")
        if not fits:
            print("warning: this plan does not fit the hardware's memory (see README.md in the run directory)")
        print(f"Start it:  {command}")
        if spec["hardware"]["name"] != "detected":  # planned for another machine: how to take it there
            print(f"Take it there:  sft-tui pack {shlex.quote(str(written.run_dir))}   (the bundle and its data, one archive)")
    return EXIT_OK


def cmd_check(args) -> int:
    from pathlib import Path

    from tui.bundle.check import CheckError, check_run

    try:
        result = check_run(Path(args.run_dir), args.python)
    except CheckError as err:
        raise UserError(str(err)) from None
    if args.json:
        print_json({"ok": result.ok, "problems": result.problems, "notes": result.notes})
    else:
        for line in result.lines():
            print(line)
        for note in result.notes:
            print(f"note: {note}")
        if result.ok:
            print(f"{args.run_dir}: LLaMA-Factory accepts this bundle")
    return EXIT_OK if result.ok else EXIT_PROBLEMS


def _price(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError("a price cannot be negative")
    return value


def add_plan_arguments(p, model_required: bool) -> None:
    p.add_argument("--hardware", default="detected", metavar="NAME|detected", help="a hardware profile, or this machine (default)")
    p.add_argument("--gpus", type=int, metavar="N", help="GPUs per node (default: the profile's, or all detected)")
    p.add_argument("--nodes", type=int, default=1, metavar="N", help="nodes, for multi-node plans")
    p.add_argument("--model", required=model_required, metavar="NAME|PATH", help="a model profile, a hub id, or a local model directory")
    p.add_argument("--dataset", nargs="+", metavar="PATH", help="dataset files or directories (validated for row counts and lengths)")
    p.add_argument("--recipe", metavar="NAME", help="a recipe (default: chosen from the dataset size)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting (LLaMA-Factory's name); repeatable")
    p.add_argument("--price-per-gpu-hour", type=_price, metavar="X",
                   help="what one GPU costs an hour: the time estimate also gives the cost")
    p.add_argument("--no-simulate", action="store_true", help="keep the analytic memory estimate: do not simulate "
                   "the training step in the training environment")
    p.add_argument("--no-history", action="store_true", help="do not calibrate the time estimate from your own "
                   "runs on this hardware (the run history: sft-tui history)")


def add_plan_parsers(sub) -> None:
    p = sub.add_parser("plan", help="recommend LLaMA-Factory settings that fit the hardware, with reasons",
                       description="Exit status: 0 the plan fits, 1 nothing fits (the closest plan is shown, "
                       "with what would fit), 2 bad input.")
    add_plan_arguments(p, model_required=True)
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("export", help="write a run bundle (train.yaml, run_sft.sh, ...) for a plan",
                       description="Plan as `sft-tui plan` does, then write runs/<run-id>/ under --out. "
                       "An existing run directory is refused unless --force, and files you edited are never overwritten.")
    add_plan_arguments(p, model_required=False)
    p.add_argument("--out", metavar="DIR", help="where runs/ and saves/ go (default: here; with --from, plan.json's)")
    p.add_argument("--name", metavar="RUN_ID", help="the run id (default: <model>-<method>-<YYYYmmdd-HHMM>)")
    p.add_argument("--env", metavar="conda:NAME|venv:PATH", help="the training environment run_sft.sh activates "
                   "(default for this machine: the one LLaMA-Factory is installed in, else llamafactory-cli on PATH)")
    p.add_argument("--drop-errors", action="store_true", help="leave the dataset rows with errors out: a cleaned "
                   "copy goes into the run directory (data/) and is registered instead; your file is never changed")
    from tui.hardware.vendors import VENDORS

    visible = " / ".join(v.visible_devices for v in VENDORS.values() if v.visible_devices)
    p.add_argument("--gpu-ids", metavar="0,1", help=f"which GPUs ({visible})")
    p.add_argument("--master-addr", metavar="HOST", help="multi-node: the rank-0 node's address")
    p.add_argument("--slurm", action="store_true", help="also write run_sft.sbatch")
    p.add_argument("--ray", action="store_true", help="launch through Ray (USE_RAY=1)")
    p.add_argument("--modelscope", action="store_true", help="download the model from ModelScope (USE_MODELSCOPE_HUB=1)")
    p.add_argument("--register-into", metavar="DIR", help="also register the dataset in DIR/dataset_info.json")
    p.add_argument("--replace", action="store_true", help="with --register-into: replace entries of the same name")
    p.add_argument("--from", dest="from_plan", metavar="plan.json", help="render the bundle a plan.json describes")
    p.add_argument("--force", action="store_true", help="update an existing run directory (edited files are kept)")
    p.add_argument("--json", action="store_true", help="print {run_dir, files, command} as JSON")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("check", help="check a run directory with LLaMA-Factory's own argument parser",
                       description="Exit status: 0 LLaMA-Factory accepts the bundle, 1 problems (listed), 2 bad usage.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--python", metavar="PATH", help="the training environment's python (default: the one behind llamafactory-cli)")
    p.add_argument("--json", action="store_true", help="print {ok, problems} as JSON")
    p.set_defaults(func=cmd_check)
