"""Stores: where the panel reads and writes, and nothing else.

The MLflow tracking server and registry (`registry`), the panel's own database with its
migrations (`db`), its append-only audit log (`audit`) with the digests of the evidence the
panel stores (`evidence_digests`), and current production data (`sources`, `model_data`).
Modules here import only the top-level `mlops_core` modules (config, policy, errors,
identity) and each other; never evidence, governance, people, commands, demo, ui or
streamlit.
"""
