"""Streamlit side of the panel: thin rendering over `mlops_core`, which holds the rules."""
