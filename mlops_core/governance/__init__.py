"""Governance: the promotion policy applied, gates, the promotion workflow and its record.

Gates turn evidence into pass / fail / not evaluated; `promotion` is the four-eyes state
machine that moves MLflow aliases; `decision_record` renders what was decided on what
evidence; `overview` sums up each model for the Overview page and the CLI. Modules here
may import evidence, people, stores and the top-level modules; never commands, demo, ui
or streamlit.
"""
