"""`sft-tui` sub-commands. Thin: parse arguments, call the core, print text or `--json`.

Imports of the core happen inside each command so that `sft-tui --help` stays fast, and
nothing here imports torch, transformers or llamafactory. With no sub-command, the Textual
wizard opens.

Exit status: 0 success, 1 the command ran and found problems, 2 bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import sys

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class UserError(Exception):
    """Bad input from the user: printed as one sentence, exit 2, never a traceback."""


def print_json(value) -> None:
    import orjson

    text = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    print(text, flush=True)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _yes(flag: bool) -> str:
    return "yes" if flag else "-"


def _gib(mib: int | float) -> str:
    return f"{mib / 1024:.1f}"


# --- detect ------------------------------------------------------------------------------------


def cmd_detect(args) -> int:
    from tui.hardware import detect, summary_line

    detection = detect()
    if args.json:
        print_json(detection.to_json())
        return EXIT_OK
    print(summary_line(detection))
    print()
    header = f"{'#':>2}  {'vendor':<7} {'name':<34} {'VRAM used/total GiB':>19} {'util':>5}  {'arch':<7} {'bf16':<4} {'fp16':<4} {'fa2':<4} {'bnb':<4} state"
    print(header)
    for d in detection.devices:
        arch = d.compute_capability or d.gfx or (f"{d.cpu_cores} cores" if d.cpu_cores else "")
        util = "" if d.utilization_pct is None else f"{d.utilization_pct:.0f}%"
        used = f"{_gib(d.memory_used_mib)}/{_gib(d.memory_total_mib)}"
        state = "" if d.vendor == "cpu" else ("free" if d.free else "busy")
        print(
            f"{d.index:>2}  {d.vendor:<7} {d.name[:34]:<34} {used:>19} {util:>5}  {arch:<7} "
            f"{_yes(d.bf16):<4} {_yes(d.fp16):<4} {_yes(d.flash_attn2):<4} {_yes(d.bitsandbytes):<4} {state}"
        )
        for note in d.notes:
            print(f"    note: {note}")
    if detection.problems:
        print()
        for problem in detection.problems:
            print(problem)
    return EXIT_OK


# --- profiles ----------------------------------------------------------------------------------


def profile_summary(profile) -> dict:
    """The JSON object `sft-tui profiles --json` prints for one profile."""
    data = profile.data
    out = {
        "name": profile.name,
        "kind": profile.kind,
        "source": str(profile.source),
        "origin": profile.origin,
        "overrides": str(profile.overrides) if profile.overrides else None,
        "description": data.get("description", ""),
    }
    if profile.kind == "hardware":
        out |= {
            "vendor": data["vendor"],
            "device": data["device"],
            "gpus": data["gpus"],
            "memory_total_mib": data["memory_total_mib"],
            "vram_gib": round(data["memory_total_mib"] / 1024, 1),
            "compute_capability": data.get("compute_capability"),
            "gfx": data.get("gfx"),
        } | {flag: data[flag] for flag in ("bf16", "fp16", "flash_attn2", "bitsandbytes")}
    elif profile.kind == "models":
        from tui.models import Architecture

        arch = Architecture.from_config(data["architecture"])
        out |= {
            "params": arch.param_count(),
            "hub_ids": data["hub_ids"],
            "template": data["template"],
            "architecture": data["architecture"],
        }
    else:
        out |= {k: v for k, v in data.items() if k != "description"}
    return out


def _profile_line(summary: dict) -> str:
    kind = summary["kind"]
    if kind == "hardware":
        flags = " ".join(f for f in ("bf16", "fp16", "flash_attn2", "bitsandbytes") if summary[f])
        arch = summary["compute_capability"] or summary["gfx"] or ""
        count = f"x{summary['gpus']} {arch}" if summary["gpus"] else "RAM, no GPU"
        detail = f"{summary['device']}, {summary['vram_gib']:g} GiB {count} [{flags or 'fp32 only'}]"
    elif kind == "models":
        detail = f"{summary['params'] / 1e9:.2f}B params, template {summary['template']}; {', '.join(summary['hub_ids'])}"
    else:
        lora = f"LoRA r{summary['lora_rank']}/a{summary['lora_alpha']}, " if "lora_rank" in summary else ""
        detail = (
            f"{lora}lr {summary['learning_rate']:g}, {summary['num_train_epochs']:g} epochs, "
            f"effective batch {summary['effective_batch_size']}"
        )
    origin = summary["origin"] + (f", replaces {summary['overrides']}" if summary["overrides"] else "")
    return f"  {summary['name']:<18} {detail}\n  {'':<18} {origin}: {summary['source']}"


def cmd_profiles(args) -> int:
    from tui.profiles import KINDS, load_profiles

    kinds = [args.kind] if args.kind else list(KINDS)
    profile_set = load_profiles(kinds)
    summaries = [profile_summary(p) for kind in kinds for p in profile_set.of(kind)]
    if args.json:
        print_json(summaries)
    else:
        for kind in kinds:
            rows = [s for s in summaries if s["kind"] == kind]
            print(f"{kind} ({len(rows)})")
            for row in rows:
                print(_profile_line(row))
            print()
    for problem in profile_set.problems:
        print(f"sft-tui: broken profile: {problem}", file=sys.stderr)
    return EXIT_PROBLEMS if profile_set.problems else EXIT_OK


# --- validate ----------------------------------------------------------------------------------


def print_validation(report) -> None:
    from tui.datasets import PROBLEM_KINDS

    for f in report.files:
        for p in f.problems:
            where = f"{f.path}:{p.line}" if p.line is not None else str(f.path)
            field = f"{p.field}: " if p.field else ""
            print(f"{where}: {field}{p.severity} ({p.kind}): {p.message}")
        if f.problem_count > len(f.problems):
            print(f"{f.path}: ... {f.problem_count - len(f.problems)} more problems not listed (--max-errors)")
    for error in report.file_errors:
        print(f"sft-tui: {error}", file=sys.stderr)
    if not report.files:
        return
    print()
    for f in report.files:
        errors = f.error_count
        split = f" [{f.split}]" if f.split else ""
        print(f"{f.path}{split}: {f.format} ({f.format_source}); {plural(f.rows, 'row')}, {f.valid_rows} valid; "
              f"{plural(errors, 'error')}, {plural(f.problem_count - errors, 'warning')}")
    data = report.to_json()
    stats = data["stats"]
    if stats["splits"]:
        print("Splits: " + ", ".join(f"{k} {v}" for k, v in stats["splits"].items()))
    if stats["problems_by_kind"]:
        print("Problems by kind: " + ", ".join(
            f"{kind} {n} ({PROBLEM_KINDS[kind][0]})" for kind, n in stats["problems_by_kind"].items()))
    lengths = stats["lengths"]
    unit = "tokens" if lengths["unit"] == "tokens" else "approximate tokens"
    print(f"\nLengths of valid rows in {unit} ({lengths['method']}"
          + ("" if lengths["unit"] == "tokens" else "; --tokenizer DIR for exact counts") + "):")
    columns = ("min", "p50", "p90", "p95", "p99", "max")
    print(f"  {'':<9}" + "".join(f"{c:>8}" for c in columns))
    for part in ("prompt", "response", "row"):
        print(f"  {part:<9}" + "".join(f"{lengths[part][c]:>8}" for c in columns))
    cutoff = stats["cutoff"]
    print(f"\nRecommended cutoff_len: {cutoff['cutoff_len']} (smallest multiple of 256 covering p99 of rows; "
          f"truncates {plural(cutoff['rows_truncated'], 'row')}). "
          f"LLaMA-Factory's default 2048 truncates {cutoff['rows_truncated_at_default_2048']}.")


def cmd_validate(args) -> int:
    from pathlib import Path

    from tui.datasets import DatasetFileError, load_dataset_info_entry, validate_paths

    spec, paths = None, [Path(p) for p in args.paths]
    if args.dataset_info or args.name:
        if not (args.dataset_info and args.name):
            raise UserError("--dataset-info and --name go together")
        if args.format != "auto":
            raise UserError("--format cannot be combined with --dataset-info: the entry says the format")
        try:
            spec, entry_paths = load_dataset_info_entry(Path(args.dataset_info), args.name)
        except DatasetFileError as err:
            raise UserError(str(err)) from None
        paths = paths or entry_paths
    if not paths:
        raise UserError("name at least one dataset file or directory (or --dataset-info PATH --name NAME)")
    try:
        report = validate_paths(paths, fmt=args.format, spec=spec, tokenizer_dir=args.tokenizer,
                                max_errors=args.max_errors, jobs=args.jobs)
    except ValueError as err:  # an unusable --tokenizer
        raise UserError(str(err)) from None
    if args.json:
        print_json(report.to_json())
        for error in report.file_errors:
            print(f"sft-tui: {error}", file=sys.stderr)
    else:
        print_validation(report)
    if report.file_errors:
        return EXIT_USAGE
    return EXIT_PROBLEMS if report.has_errors else EXIT_OK


# --- plan --------------------------------------------------------------------------------------

BAR_PARTS = (("weights", "W"), ("trainable", "T"), ("gradients", "T"), ("optimizer", "T"),
             ("activations", "A"), ("logits", "L"), ("overhead", "O"))
BAR_WIDTH = 60


def memory_bar(breakdown: dict, capacity: float) -> str:
    """The breakdown as one line of letters against the device's capacity ('.' is free)."""
    from tui.memory import bar_cells

    letters = dict(BAR_PARTS)
    parts, free = bar_cells(breakdown, capacity, BAR_WIDTH)
    cells = "".join(letters[key] * n for key, n in parts) + "." * free
    return f"[{cells.ljust(BAR_WIDTH)}]"


def print_plan(plan, request) -> None:
    est = plan.estimate
    devices = request.devices
    where = (f"{plan.n_gpus} x {devices[0].name}" if devices[0].vendor != "cpu" else devices[0].name)
    nodes = f" x {plan.nodes} nodes" if plan.nodes > 1 else ""
    print(f"Plan: {request.model.model_name_or_path} on {where}{nodes} ({plan.capacity_gib:.1f} GiB per device), recipe {plan.recipe}")
    usable = plan.to_json()["estimate"]["usable_gib"]
    verdict = "fits" if plan.fits else "DOES NOT FIT"
    print(f"\nPeak memory per device: {est.per_device_gib:.1f} GiB of {usable:.1f} usable: {verdict}")
    print("  " + memory_bar(est.breakdown, plan.capacity_gib))
    print("  W weights  T trainable, gradients, optimizer  A activations  L logits  O overhead  . free")
    print("  " + "  ".join(f"{k} {v:.2f}" for k, v in est.breakdown.items()) + " (GiB)")
    if est.cpu_offload_gib:
        print(f"  CPU RAM for offloaded states: {est.cpu_offload_gib:.1f} GiB")
    print(f"  sequence length estimated: {plan.seq_len_source}")
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
    for warning in plan.warnings:
        print(f"warning: {warning}")
    if plan.suggestions:
        print("What would fit:")
        for suggestion in plan.suggestions:
            print(f"  - {suggestion}")


def make_plan_from_args(args):
    """(plan, request, validation report) from the plan options shared by plan and export."""
    from tui.planner import plan as make_plan
    from tui.requests import RequestError, build_request, parse_overrides

    if not args.model:
        raise UserError("--model is required")
    try:
        request, report = build_request(args.hardware, args.model, args.dataset, args.recipe,
                                        parse_overrides(args.set or []), args.gpus, args.nodes)
        return make_plan(request), request, report
    except (RequestError, ValueError) as err:
        raise UserError(str(err)) from None


def cmd_plan(args) -> int:
    result, request, _ = make_plan_from_args(args)
    if args.json:
        print_json(result.to_json())
    else:
        print_plan(result, request)
    return EXIT_OK if result.fits else EXIT_PROBLEMS


# --- export and check ------------------------------------------------------------------------


def cmd_export(args) -> int:
    from pathlib import Path

    from tui.bundle import BundleError, LaunchOptions, load_spec, make_spec, register_into, write_bundle

    try:
        if args.from_plan:
            spec = load_spec(Path(args.from_plan))
            fits = spec["plan"]["estimate"]["fits"]
        else:
            result, request, report = make_plan_from_args(args)
            gpu_ids = [int(i) for i in args.gpu_ids.split(",")] if args.gpu_ids else None
            if gpu_ids and len(gpu_ids) != result.n_gpus:
                raise UserError(f"--gpu-ids names {len(gpu_ids)} GPUs but the plan uses {result.n_gpus} (--gpus)")
            launch = LaunchOptions(env=args.env, gpu_ids=gpu_ids, master_addr=args.master_addr, slurm=args.slurm,
                                   ray=args.ray, modelscope=args.modelscope)
            spec = make_spec(result, request, report, launch, Path(args.out), args.name, hardware_name=args.hardware)
            fits = result.fits
        written = write_bundle(spec, force=args.force)
        registered = register_into(Path(args.register_into), spec["datasets"]["entries"], args.replace) if args.register_into else None
    except BundleError as err:
        raise UserError(str(err)) from None
    command = f"bash {written.run_dir / 'run_sft.sh'}"
    if args.json:
        print_json({"run_dir": str(written.run_dir), "files": written.written, "kept": written.kept,
                    "command": command, "fits": fits, "registered_into": str(registered) if registered else None})
    else:
        print(f"Wrote {written.run_dir}: {', '.join(written.written)}")
        for name in written.kept:
            print(f"kept your edited {name}; the new version is {name}.sft-tui-new")
        if registered:
            print(f"Registered {', '.join(spec['datasets']['entries'])} in {registered} (previous version: dataset_info.json.bak)")
        if not fits:
            print("warning: this plan does not fit the hardware's memory (see README.md in the run directory)")
        print(f"Start it:  {command}")
    return EXIT_OK


def cmd_check(args) -> int:
    from pathlib import Path

    from tui.check import CheckError, check_run

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


# --- the parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sft-tui",
        description="Plan, write and watch LLaMA-Factory fine-tunes. "
        "With no command, opens the interactive wizard.",
    )
    from tui import __version__

    parser.add_argument("--version", action="version", version=f"sft-tui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("detect", help="list the GPUs (and CPU) on this machine and what they can do")
    p.add_argument("--json", action="store_true", help="print JSON: {devices, problems}")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("profiles", help="list hardware, model and recipe profiles and where each came from")
    p.add_argument("kind", nargs="?", choices=["hardware", "models", "recipes"])
    p.add_argument("--json", action="store_true", help="print a JSON list of profiles")
    p.set_defaults(func=cmd_profiles)

    p = sub.add_parser("validate", help="check dataset files row by row and print training statistics",
                       description="Check JSONL/JSON dataset files against LLaMA-Factory's formats. Exit status: "
                       "0 no errors (warnings allowed), 1 errors found, 2 a file could not be read.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="dataset files, or directories of .jsonl/.json files")
    p.add_argument("--format", default="auto", choices=["auto", "alpaca", "sharegpt", "openai"])
    p.add_argument("--tokenizer", metavar="DIR", help="a local tokenizer (tokenizer.json) for exact token counts")
    p.add_argument("--dataset-info", metavar="PATH", help="a dataset_info.json whose entry --name says the columns and tags")
    p.add_argument("--name", metavar="NAME", help="the dataset_info.json entry to validate")
    p.add_argument("--max-errors", type=int, default=100, metavar="N", help="problems listed per file (all are counted)")
    p.add_argument("--jobs", type=int, default=0, metavar="N",
                   help="processes for a large JSONL file (default 0: one per usable core)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_validate)

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
    p.add_argument("--out", default=".", metavar="DIR", help="where runs/ and saves/ go (default: here)")
    p.add_argument("--name", metavar="RUN_ID", help="the run id (default: <model>-<method>-<YYYYmmdd-HHMM>)")
    p.add_argument("--env", metavar="conda:NAME|venv:PATH", help="the training environment run_sft.sh activates")
    p.add_argument("--gpu-ids", metavar="0,1", help="which GPUs (CUDA_VISIBLE_DEVICES / HIP_VISIBLE_DEVICES)")
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

    from tui.cli_after import add_after_parsers
    from tui.cli_runs import add_run_parsers

    add_run_parsers(sub)
    add_after_parsers(sub)
    return parser


def add_plan_arguments(p, model_required: bool) -> None:
    p.add_argument("--hardware", default="detected", metavar="NAME|detected", help="a hardware profile, or this machine (default)")
    p.add_argument("--gpus", type=int, metavar="N", help="GPUs per node (default: the profile's, or all detected)")
    p.add_argument("--nodes", type=int, default=1, metavar="N", help="nodes, for multi-node plans")
    p.add_argument("--model", required=model_required, metavar="NAME|PATH", help="a model profile, a hub id, or a local model directory")
    p.add_argument("--dataset", nargs="+", metavar="PATH", help="dataset files or directories (validated for row counts and lengths)")
    p.add_argument("--recipe", metavar="NAME", help="a recipe (default: chosen from the dataset size)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting (LLaMA-Factory's name); repeatable")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from tui.app import run_app

        return run_app()
    try:
        return args.func(args)
    except UserError as err:
        print(f"sft-tui: {err}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `sft-tui ... | head`
        return EXIT_OK
    except KeyboardInterrupt:  # Ctrl-C: a word, not a traceback (monitor says its own)
        print("sft-tui: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
