"""`sft-tui detect` and `sft-tui profiles`."""

from __future__ import annotations

import sys

from tui.cli.common import EXIT_OK, EXIT_PROBLEMS, gib, print_json, yes


def cmd_detect(args) -> int:
    from tui.hardware.detect import detect, summary_line

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
        used = f"{gib(d.memory_used_mib)}/{gib(d.memory_total_mib)}"
        state = ("free" if d.free else "busy") if d.is_gpu else ""
        print(
            f"{d.index:>2}  {d.vendor:<7} {d.name[:34]:<34} {used:>19} {util:>5}  {arch:<7} "
            f"{yes(d.bf16):<4} {yes(d.fp16):<4} {yes(d.flash_attn2):<4} {yes(d.bitsandbytes):<4} {state}"
        )
        for note in d.notes:
            print(f"    note: {note}")
    if detection.problems:
        print()
        for problem in detection.problems:
            print(problem)
    return EXIT_OK


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
        from tui.models.architecture import Architecture

        arch = Architecture.from_config(data["architecture"])
        out |= {
            "params": arch.param_count(),
            "active_params": arch.active_param_count(),
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
        active = summary.get("active_params", summary["params"])
        moe = f" ({active / 1e9:.2f}B active)" if active != summary["params"] else ""
        detail = f"{summary['params'] / 1e9:.2f}B params{moe}, template {summary['template']}; {', '.join(summary['hub_ids'])}"
    else:
        lora = f"LoRA r{summary['lora_rank']}/a{summary['lora_alpha']}, " if "lora_rank" in summary else ""
        detail = (
            f"{lora}lr {summary['learning_rate']:g}, {summary['num_train_epochs']:g} epochs, "
            f"effective batch {summary['effective_batch_size']}"
        )
    origin = summary["origin"] + (f", replaces {summary['overrides']}" if summary["overrides"] else "")
    return f"  {summary['name']:<18} {detail}\n  {'':<18} {origin}: {summary['source']}"


def profile_matches(summary: dict, text: str) -> bool:
    """A model profile whose name, hub ids or description contain `text` (any case)."""
    needle = text.strip().lower()
    haystack = [summary["name"], summary.get("description", ""), *summary.get("hub_ids", [])]
    return any(needle in field.lower() for field in haystack)


def search_models(text: str, summaries: list[dict], limit: int = 20) -> dict:
    """`profiles models --search`: the profiles and LLaMA-Factory's model table entries matching `text`."""
    from tui.models.lf_table import search

    profiles = [s for s in summaries if s["kind"] == "models" and profile_matches(s, text)]
    profile_of = {h.lower(): s["name"] for s in summaries if s["kind"] == "models" for h in s["hub_ids"]}
    table = [
        {"name": m.name, "hub_id": m.hf or m.modelscope or m.openmind, "hub_ids": list(m.hub_ids),
         "template": m.chat_template, "multimodal": m.multimodal,
         "profile": next((profile_of[h.lower()] for h in m.hub_ids if h.lower() in profile_of), None)}
        for m in search(text, limit=limit)
    ]
    return {"search": text, "profiles": profiles, "llamafactory": table}


def _print_search(found: dict) -> None:
    print(f"model profiles matching {found['search']!r} ({len(found['profiles'])}): offline, no download needed to plan")
    for row in found["profiles"]:
        print(_profile_line(row))
    rows = found["llamafactory"]
    print(f"\nLLaMA-Factory's models matching {found['search']!r} ({len(rows)}): config.json from the hub or the HF cache")
    for row in rows:
        flags = ", multimodal" if row["multimodal"] else ""
        profile = f", profile {row['profile']}" if row["profile"] else ""
        print(f"  {row['hub_id'] or '':<46} template {row['template'] or '?'}{flags}{profile}")
    if not found["profiles"] and not rows:
        print("  nothing: any hub id (org/name) or local model directory can still be planned with --model")


def cmd_profiles(args) -> int:
    from tui.common.profiles import KINDS, load_profiles

    search = getattr(args, "search", None)
    if search is not None and args.kind not in (None, "models"):
        print("sft-tui: --search searches model profiles: use `sft-tui profiles models --search TEXT`", file=sys.stderr)
        return EXIT_PROBLEMS
    kinds = ["models"] if search is not None else [args.kind] if args.kind else list(KINDS)
    profile_set = load_profiles(kinds)
    summaries = [profile_summary(p) for kind in kinds for p in profile_set.of(kind)]
    if search is not None:
        found = search_models(search, summaries)
        print_json(found) if args.json else _print_search(found)
    elif args.json:
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


def add_hardware_parsers(sub) -> None:
    p = sub.add_parser("detect", help="list the GPUs (and CPU) on this machine and what they can do")
    p.add_argument("--json", action="store_true", help="print JSON: {devices, problems}")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("profiles", help="list hardware, model and recipe profiles and where each came from")
    p.add_argument("kind", nargs="?", choices=["hardware", "models", "recipes"])
    p.add_argument("--json", action="store_true", help="print a JSON list of profiles")
    p.add_argument("--search", metavar="TEXT",
                   help="models: search the model profiles and LLaMA-Factory's model table (name or hub id contains TEXT)")
    p.set_defaults(func=cmd_profiles)
