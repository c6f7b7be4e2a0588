"""Who is acting: the identity every core action takes and checks."""

from __future__ import annotations

from dataclasses import dataclass, field

ROLES = ("viewer", "requester", "approver", "admin")


@dataclass(frozen=True)
class Actor:
    """A signed-in person (or CI job) and the roles configuration grants them.

    `auth_method` says how the identity was established ("local", "oidc", "cli"), so the
    audit log can tell a browser sign-in from a pipeline acting on someone's behalf.
    """

    username: str
    roles: frozenset[str] = field(default_factory=frozenset)
    email: str | None = None
    display_name: str | None = None
    auth_method: str = "local"

    @property
    def label(self) -> str:
        return self.email or self.username

    def has_role(self, role: str) -> bool:
        # An admin may do everything the other roles may.
        return role in self.roles or "admin" in self.roles
