"""The sync agent: its steps (agent), the allowlist snapshot, the service loop and its status."""
