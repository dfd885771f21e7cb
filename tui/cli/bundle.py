"""`sft-tui pack`: carry a bundle, with its data, to the machine it was planned for (tui.bundle.pack)."""

from __future__ import annotations

import shlex
from pathlib import Path

from tui.cli.common import EXIT_OK, UserError, print_json


def cmd_pack(args) -> int:
    from tui.bundle.pack import pack_bundle
    from tui.bundle.spec import BundleError

    try:
        result = pack_bundle(Path(args.run_dir), Path(args.output) if args.output else None, force=args.force)
    except BundleError as err:
        raise UserError(str(err)) from None
    if args.json:
        print_json({"archive": str(result.archive), "files": result.files, "carried": result.carried,
                    "notes": result.notes})
        return EXIT_OK
    run_id = result.files[0].split("/")[1]
    size = result.archive.stat().st_size
    shown = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{max(1, round(size / 1e3))} kB"
    print(f"Wrote {result.archive} ({len(result.files)} files, {shown}), with MANIFEST.sha256.")
    for source, target in result.carried.items():
        print(f"  carried {source} as runs/{run_id}/{target}")
    for note in result.notes:
        print(f"note: {note}")
    name = shlex.quote(result.archive.name)
    print("On the other machine, with sft-tui and LLaMA-Factory installed:")
    print(f"  tar xzf {name} && sft-tui run runs/{run_id}      (or: bash runs/{run_id}/run_sft.sh)")
    print(f"  sft-tui monitor runs/{run_id}")
    return EXIT_OK


def add_bundle_parsers(sub) -> None:
    p = sub.add_parser("pack", help="one archive of a run bundle and its data, for another machine",
                       description="Write <run-id>.tar.gz beside runs/ (or --output): the bundle, the dataset "
                       "files it registers copied in, and MANIFEST.sha256, which `sft-tui run` and run_sft.sh "
                       "check on the other machine. Unpack with `tar xzf` in any folder.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--output", "-o", metavar="ARCHIVE", help="the archive to write (default: <run-id>.tar.gz beside runs/)")
    p.add_argument("--force", action="store_true", help="replace an existing archive")
    p.add_argument("--json", action="store_true", help="print {archive, files, carried, notes} as JSON")
    p.set_defaults(func=cmd_pack)
