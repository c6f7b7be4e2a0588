"""People: accounts, sign-in, roles and what each role may do.

Accounts in the panel database (`accounts`, importing the old `users_file` once), password
hashes (`passwords`), password sign-in with back-off (`auth`), sign-in sessions
(`sessions`), access tokens for the CLI (`tokens`), role grants and the checks every core
action calls (`access`), and audited account management (`user_admin`). Modules here may
import stores and the top-level modules; never evidence, governance, commands, demo, ui or
streamlit.
"""
