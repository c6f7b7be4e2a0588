"""People: accounts, sign-in, roles and what each role may do.

Local accounts and rate-limited sign-in (`auth`), role grants and the checks every core
action calls (`access`), and audited account management (`user_admin`). Modules here may
import stores and the top-level modules; never evidence, governance, commands, demo, ui or
streamlit.
"""
