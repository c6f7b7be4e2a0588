"""Commands: `python -m mlops_core`, one module per command group, each with `register`.

`cli` builds the parser from the groups and turns core errors into one line and an exit
code; `output` prints tables and JSON; `token_auth` authenticates the commands that change
state. Commands may import anything in `mlops_core`; nothing in `mlops_core` imports them,
and they never import ui or streamlit.
"""
