"""Runtime: wires adapters and core (agent loop)."""
