"""sft-tui: a terminal assistant for fine-tuning language models with LLaMA-Factory."""

__version__ = "0.1.0"
