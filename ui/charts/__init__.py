"""Plotly figure builders: the core returns data (frames, results), these draw it.

Imported by pages and ui helpers only; they may import `mlops_core` but never streamlit.
"""
