"""Stage 2, models: a model named by profile, hub id or local directory, resolved to its architecture
(parameter counts, linear layers) and LLaMA-Factory chat template."""
