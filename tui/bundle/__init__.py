"""Stage 5, the bundle: a plan rendered into a run directory (spec.py, render.py), written atomically
with a manifest (write.py), and checked by LLaMA-Factory's own parser (check.py)."""
