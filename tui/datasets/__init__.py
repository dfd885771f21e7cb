"""Stage 3, datasets: formats (dataset_info specs), reading, the row checker, repeats, parallel workers,
the report with its length statistics, and cleaning. `validate.validate_paths` is the entry point."""
