"""Who is acting: the identity every core action takes and checks."""

from __future__ import annotations

from dataclasses import dataclass, field

ROLES = ("viewer", "requester", "approver", "admin")


@dataclass(frozen=True)
class Actor:
    """A signed-in person (or CI job) and the roles configuration grants them.

    `auth_method` says how the identity was established ("local": a password, "oidc":
    single sign-on, "token": an access token, "cli": the bootstrap of an empty account
    store), so the audit log can tell a browser sign-in from a pipeline's token.
    """

    username: str
    roles: frozenset[str] = field(default_factory=frozenset)
    email: str | None = None
    display_name: str | None = None
    auth_method: str = "local"

    @property
    def label(self) -> str:
        return self.email or self.username
