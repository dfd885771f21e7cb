"""What every stage shares: where the data folders are, JSON Schema checks, atomic writes, profiles."""
