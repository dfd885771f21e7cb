"""Scripts run by the training environment's python, by path, in a subprocess: never imported by the
sft-tui process (they import torch, transformers, llamafactory)."""
