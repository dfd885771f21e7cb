"""The run history: what each run planned and measured (SQLite in the user data dir), and the calibration
the planner reads from it."""
