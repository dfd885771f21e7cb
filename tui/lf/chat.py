"""Run by the training environment's python, not imported by sft-tui (like check_bundle.py):

    python -c "$(cat chat.py)" REQUEST_JSON

REQUEST_JSON: {"variants": [{"name": "fine-tuned", "args": {...ChatModel args...}}, ...],
               "prompts": ["...", ...], "generation": {"max_new_tokens": ..., "temperature": ..., ...}}

Generates through LLaMA-Factory's own inference path (ChatModel, the Hugging Face engine) with
the run's template, one variant after another (the base model alone, the trained adapter), and
prints one JSON line per answer: {"variant", "prompt", "answer"}; a line {"error": ...} when a
variant cannot load. Self-contained on purpose: it may run where sft-tui is not installed.
"""

import json
import sys


def main(request: dict) -> None:
    from llamafactory.chat import ChatModel

    generation = request.get("generation", {})
    for variant in request["variants"]:
        try:
            model = ChatModel(dict(variant["args"]))
        except Exception as err:  # noqa: BLE001 - reported to the user as one line
            print(json.dumps({"variant": variant["name"], "error": f"{type(err).__name__}: {err}"}), flush=True)
            continue
        for prompt in request["prompts"]:
            responses = model.chat([{"role": "user", "content": prompt}], **generation)
            answer = responses[0].response_text if responses else ""
            print(json.dumps({"variant": variant["name"], "prompt": prompt, "answer": answer}, ensure_ascii=False),
                  flush=True)
        del model


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
