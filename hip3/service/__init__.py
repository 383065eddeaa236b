"""Service: startup and the root nursery, CLI, config, keys, journal, logs, demo."""
