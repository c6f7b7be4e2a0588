"""Credentials never reach a screen, a log line or the audit log.

Tracking URIs and database URLs often carry a password or a token (`http://user:token@…`,
`postgresql://panel:secret@db/panel`, `?token=…`). Every message that may contain one goes
through `redact` before it is shown, printed or stored.
"""

from __future__ import annotations

import re

HIDDEN = "***"
# user:password@ or token@ right after a scheme's //.
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<userinfo>[^/@\s'\"]+)@")
# Query or fragment parameters whose value is a secret.
_SECRET_PARAMS = re.compile(
    r"(?P<key>[?&#;](?:[\w\-]*(?:token|secret|password|passwd|pwd|key|signature|sig|auth)"
    r"[\w\-]*)=)(?P<value>[^&#\s'\"]+)",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """`text` with the userinfo of every URL and every secret-looking parameter hidden."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{HIDDEN}@", text)
    return _SECRET_PARAMS.sub(lambda m: f"{m['key']}{HIDDEN}", text)
