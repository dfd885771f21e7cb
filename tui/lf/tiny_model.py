"""Build a tiny Qwen2-architecture model and tokenizer on disk, with no hub access.

Used by `sft-tui demo` and by the tests. Run it as a script with the training environment's
python (``python tui/lf/tiny_model.py OUT_DIR``), never import it: the process that imports torch
and transformers is a short-lived child, never the TUI process (tests assert that). It imports
nothing from sft-tui, so it works in a training environment that does not have sft-tui.

The tokenizer is a byte-level BPE trained on a small built-in corpus with the special tokens
LLaMA-Factory's ``qwen`` template needs (``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# Small, but covering chat-template words and the sample data's vocabulary, so that
# tokenized rows are short and training on them is quick.
CORPUS = [
    "system user assistant You are a helpful assistant.",
    "Translate the sentence into French. Write a function that adds two numbers.",
    "def add(a, b):\n    return a + b\n",
    "The quick brown fox jumps over the lazy dog. Hello world!",
    "Explain what a register is in Chisel. A Reg holds state between clock cycles.",
    "Summarise the text. Answer the question. Give an example.",
    "0123456789 ()[]{}<>:;,.!?'\"-_=+*/\\|@#$%^&~`",
] * 20

TINY_CONFIG = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
    tie_word_embeddings=True,
)


def build_tokenizer(out_dir: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        model_max_length=512,
    )
    fast.save_pretrained(out_dir)
    return fast


def build(out_dir: Path) -> None:
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(out_dir)
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
        **TINY_CONFIG,
    )
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id, max_new_tokens=16
    )
    model.save_pretrained(out_dir)
    (out_dir / "TINY_MODEL.json").write_text(json.dumps({"built_by": __file__, **TINY_CONFIG}))


if __name__ == "__main__":
    build(Path(sys.argv[1]))
