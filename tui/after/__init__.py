"""Stage 7, after training: try the model (chat.py), evaluate it on the test split (evaluate.py), merge
the adapter (merge.py), all in the run's training environment (run.py)."""
