"""Core library of the MLOps control panel: everything the UI, the CLI and CI jobs share.

Nothing in this package imports streamlit.
"""
