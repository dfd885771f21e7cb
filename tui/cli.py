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
    return parser


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


if __name__ == "__main__":
    sys.exit(main())
