"""Behaviour checks of a model version (robustness, determinism, latency), run in a
sandboxed subprocess and stored as evidence the gates read."""
