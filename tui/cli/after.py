"""The after-training sub-commands: try, eval, merge (see tui.after)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tui.cli.common import EXIT_OK, print_json


def _human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{size} B"
        size /= 1024
    return f"{size} B"


def cmd_try(args) -> int:
    from tui.after.chat import read_prompts, try_run

    prompts = ([args.prompt] if args.prompt else []) + (read_prompts(Path(args.prompts)) if args.prompts else [])
    answers = try_run(Path(args.run_dir), prompts, checkpoint=args.checkpoint, base=args.base, compare=args.compare,
                      generation={"max_new_tokens": args.max_new_tokens, "temperature": args.temperature,
                                  "top_p": args.top_p})
    if args.json:
        print_json([a.__dict__ for a in answers])
        return EXIT_OK
    for answer in answers:
        print(f"[{answer.variant}] {answer.prompt}")
        print(textwrap.indent(answer.answer.strip() or f"(an empty answer: {answer.answer!r})", "    "))
        print()
    return EXIT_OK


def cmd_eval(args) -> int:
    from tui.after.evaluate import eval_run, read_eval

    result = read_eval(Path(args.run_dir).resolve() / "eval") if args.show else \
        eval_run(Path(args.run_dir), max_new_tokens=args.max_new_tokens, limit=args.limit)
    if args.json:
        print_json({"out_dir": str(result.out_dir), "rows": result.rows, "metrics": result.metrics})
        return EXIT_OK
    for n, row in enumerate(result.rows, start=1):
        print(f"--- row {n}")
        print(textwrap.indent(f"prompt:    {row.get('prompt', '').strip()}", "  "))
        print(textwrap.indent(f"expected:  {row.get('label', '').strip()}", "  "))
        print(textwrap.indent(f"generated: {row.get('predict', '').strip()}", "  "))
    print("metrics: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, (int, float)) else f"{k} {v}"
                                  for k, v in result.metrics.items()))
    if note := result.empty_note():
        print(f"note: {note}")
    print(f"saved in {result.out_dir} (generated_predictions.jsonl, predict_results.json)")
    return EXIT_OK


def cmd_merge(args) -> int:
    from tui.after.merge import merge_run

    result = merge_run(Path(args.run_dir), Path(args.out) if args.out else None)
    if args.json:
        print_json({"out_dir": str(result.out_dir), "size_bytes": result.size_bytes, "serve": result.serve})
        return EXIT_OK
    print(f"Merged model: {result.out_dir} ({_human_size(result.size_bytes)})")
    print("Serve it with one of:")
    for command in result.serve:
        print(f"  {command}")
    return EXIT_OK


def add_after_parsers(sub) -> None:
    p = sub.add_parser("try", help="generate with the trained model (or the base) through LLaMA-Factory",
                       description="Answers prompts with the run's adapter (or --checkpoint N, or --base, or both "
                       "with --compare) through LLaMA-Factory's own inference path and the run's template.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--prompt", metavar="TEXT", help="one prompt")
    p.add_argument("--prompts", metavar="FILE", help="a file of prompts: one per line, or JSONL with prompt/instruction")
    p.add_argument("--checkpoint", type=int, metavar="N", help="use checkpoint-N instead of the final adapter")
    p.add_argument("--base", action="store_true", help="the base model alone, without the adapter")
    p.add_argument("--compare", action="store_true", help="the base model and the adapter, one after the other")
    p.add_argument("--max-new-tokens", type=int, metavar="N", help="default: infer.yaml's, else LLaMA-Factory's (1024)")
    p.add_argument("--temperature", type=float, metavar="T", help="0 for greedy; default: infer.yaml's, else 0.95")
    p.add_argument("--top-p", type=float, metavar="P", help="default: infer.yaml's, else 0.7")
    p.add_argument("--json", action="store_true", help="print [{variant, prompt, answer}] as JSON")
    p.set_defaults(func=cmd_try)

    p = sub.add_parser("eval", help="generate on the run's test split and score it (LLaMA-Factory's predict path)",
                       description="Runs do_predict with predict_with_generate on the bundle's test split; rows and "
                       "metrics are saved in RUN_DIR/eval/.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--max-new-tokens", type=int, default=256, metavar="N", help="per answer (256)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N rows of the test split")
    p.add_argument("--show", action="store_true", help="print the saved results of an earlier eval, run nothing")
    p.add_argument("--json", action="store_true", help="print {out_dir, rows, metrics} as JSON")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("merge", help="merge the LoRA adapter into the full-precision base (llamafactory-cli export)")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", metavar="DIR", help="where the merged model goes (default: export.yaml's export_dir)")
    p.add_argument("--json", action="store_true", help="print {out_dir, size_bytes, serve} as JSON")
    p.set_defaults(func=cmd_merge)
