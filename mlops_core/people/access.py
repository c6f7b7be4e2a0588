"""Who may do what: roles from configuration, and the one place the core checks them.

The access file (TOML, optional) grants roles on top of those a local account carries:

    username_claim = "preferred_username"    # OIDC claim holding the username
    groups_claim = "groups"                  # OIDC claim holding the user's groups

    [roles]
    viewer = ["*"]                           # "*" = everyone who signed in
    requester = ["alice@example.com", "bob"] # e-mails or usernames
    approver = ["carol@example.com"]
    admin = ["dave@example.com"]

    [groups]
    "mlops-approvers" = ["approver"]         # OIDC group -> roles

An entry with an @ is an e-mail: it matches only the account's e-mail, which for single
sign-on is the `email` claim the provider has verified. Any other entry matches only the
username. So a username claim the person may choose (`preferred_username` often is) can
never pass for someone's e-mail.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_core.errors import ConfigError, PermissionDenied
from mlops_core.identity import ROLES, Actor

EVERYONE = "*"
DEFAULT_GROUPS_CLAIM = "groups"
DEFAULT_USERNAME_CLAIM = "preferred_username"
_ACCESS_KEYS = ("username_claim", "groups_claim", "roles", "groups")

# Which roles open each page (any one of them; admin opens everything). Reading is the
# floor of every role, so the read-only pages need "viewer", which any role satisfies.
PAGE_ROLES: Mapping[str, tuple[str, ...]] = {
    "overview": ("viewer",),
    "experiments": ("viewer",),
    "models": ("viewer",),
    "data_profiles": ("viewer",),
    "drift": ("viewer",),
    "quality": ("viewer",),
    "fairness": ("viewer",),
    "audit": ("viewer",),
    "rollouts": ("viewer",),
    "approvals": ("requester", "approver"),
    "users": ("admin",),
    "system": ("approver",),
}


@dataclass(frozen=True)
class AccessConfig:
    """Role grants from the access file; the empty default grants nothing."""

    # role -> lower-cased usernames / e-mails, or EVERYONE
    members: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # OIDC group -> roles
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    groups_claim: str = DEFAULT_GROUPS_CLAIM
    username_claim: str = DEFAULT_USERNAME_CLAIM


def _string_list(value: Any, key: str, path: Path) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"access file {path}: {key} must be a list of strings.")
    return value


def _check_roles(roles: Iterable[str], key: str, path: Path) -> frozenset[str]:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ConfigError(
            f"access file {path}: {key} names unknown role {unknown[0]!r}; "
            f"roles are {', '.join(ROLES)}."
        )
    return frozenset(roles)


def _table(data: Mapping[str, Any], key: str, path: Path) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"access file {path}: {key} must be a table ([{key}]).")
    return value


def _claim_name(data: Mapping[str, Any], key: str, default: str, path: Path) -> str:
    claim = data.get(key, default)
    if not isinstance(claim, str) or not claim:
        raise ConfigError(f"access file {path}: {key} must be a non-empty string.")
    return claim


def load_access(path: Path) -> AccessConfig:
    """Read the access file; a missing file grants no roles beyond the local accounts'."""
    if not path.is_file():
        return AccessConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"access file {path} is not valid TOML: {exc}.") from None
    unknown = sorted(set(data) - set(_ACCESS_KEYS))
    if unknown:
        raise ConfigError(
            f"access file {path}: unknown key {unknown[0]!r}; expected {', '.join(_ACCESS_KEYS)}."
        )
    claims = {
        key: _claim_name(data, key, default, path)
        for key, default in (
            ("groups_claim", DEFAULT_GROUPS_CLAIM),
            ("username_claim", DEFAULT_USERNAME_CLAIM),
        )
    }
    roles_table = _table(data, "roles", path)
    _check_roles(roles_table, "[roles]", path)
    members = {
        role: frozenset(m.strip().lower() for m in _string_list(value, f"roles.{role}", path))
        for role, value in roles_table.items()
    }
    groups = {
        group: _check_roles(_string_list(value, f"groups.{group}", path), f"groups.{group!r}", path)
        for group, value in _table(data, "groups", path).items()
    }
    return AccessConfig(members=members, groups=groups, **claims)


def roles_for(
    username: str,
    email: str | None,
    groups: Iterable[str],
    local_roles: Iterable[str],
    access: AccessConfig,
) -> frozenset[str]:
    """All roles a person holds: their local account's, list membership and group mapping.

    List entries with an @ match the e-mail only, the others the username only.
    """
    # A username that looks like an e-mail is not one: only `email` is vouched for.
    names = set() if "@" in username else {username.lower()}
    if email:
        names.add(email.lower())
    roles = set(local_roles)
    roles.update(
        role for role, members in access.members.items() if EVERYONE in members or names & members
    )
    for group in groups:
        roles.update(access.groups.get(group, ()))
    return frozenset(roles)


def _claim_values(value: Any) -> list[str]:
    # Providers send a list, a single string, or nothing when the user is in no group.
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    return []


def _verified_email(user_info: Mapping[str, Any]) -> str | None:
    # An e-mail the provider has not verified could be anyone's; it must not match an entry
    # in the role lists, nor stand for the person in the audit log. Without the claim the
    # e-mail is taken as sent (grant by group where a provider does not vouch for e-mails);
    # some providers send the flag as a string.
    email = user_info.get("email")
    verified = user_info.get("email_verified", True)
    if not email or str(verified).lower() != "true":
        return None
    return str(email).lower()


def _username(user_info: Mapping[str, Any], claim: str, email: str | None) -> str:
    """The configured username claim, else the verified e-mail, else the subject."""
    value = email if claim == "email" else user_info.get(claim)
    chosen = value or email or user_info.get("sub")
    return str(chosen).strip().lower() if chosen else ""


def actor_from_oidc(user_info: Mapping[str, Any], access: AccessConfig) -> Actor:
    """Build the actor from the identity token's claims (as `st.user` exposes them).

    Roles come only from the configured claims: username entries from the username claim,
    e-mail entries from the verified `email` claim, groups from the groups claim.
    """
    email = _verified_email(user_info)
    username = _username(user_info, access.username_claim, email)
    if not username:
        raise PermissionDenied(
            f"The identity provider sent no user id (no {access.username_claim}, verified "
            "e-mail or sub claim)."
        )
    groups = _claim_values(user_info.get(access.groups_claim))
    name = user_info.get("name")
    return Actor(
        username=username,
        roles=roles_for(username, email, groups, (), access),
        email=email,
        display_name=str(name) if name else None,
        auth_method="oidc",
    )


def implied_roles(roles: Iterable[str]) -> frozenset[str]:
    """Every role the holder of `roles` may act as: admin implies all, any role viewer."""
    held = frozenset(roles) & set(ROLES)
    if "admin" in held:
        return frozenset(ROLES)
    return held | {"viewer"} if held else held


def holds_role(actor: Actor, role: str) -> bool:
    """Whether the actor may act as `role`: admin implies all, any role implies viewer."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    return role in implied_roles(actor.roles)


def _needs(roles: Iterable[str]) -> str:
    return f"needs the {' or '.join(roles)} role"


def require_role(actor: Actor | None, role: str, action: str) -> None:
    """Refuse the action unless the actor holds the role; every core action calls this."""
    if actor is None:
        raise PermissionDenied(f"Not signed in: sign in to {action}.")
    if not holds_role(actor, role):
        raise PermissionDenied(f"{actor.label} may not {action}: {_needs([role])}.")


# Roles that may write evidence (a drift check, a fairness report) to MLflow: any above viewer.
EVIDENCE_WRITERS = ("requester", "approver")


def writes_evidence(actor: Actor | None) -> bool:
    return actor is not None and any(holds_role(actor, role) for role in EVIDENCE_WRITERS)


def require_evidence_writer(actor: Actor | None, action: str) -> None:
    """Refuse a write to MLflow or the panel database by a viewer (or nobody)."""
    if actor is None:
        raise PermissionDenied(f"Not signed in: sign in to {action}.")
    if not writes_evidence(actor):
        raise PermissionDenied(f"{actor.label} may not {action}: {_needs(EVIDENCE_WRITERS)}.")


def runs_model_code(actor: Actor | None) -> bool:
    """Whether the actor may have the panel's machine run a model's code (its behaviour
    checks, in a sandbox): approvers and admins. Logging the report still needs an evidence
    writer; a requester runs `check --log` where the model's code may run, such as CI."""
    return actor is not None and holds_role(actor, "approver")


def page_refusal(actor: Actor | None, page: str) -> str | None:
    """Why the actor may not open the page, or None when they may."""
    roles = PAGE_ROLES[page]
    if actor is None:
        return f"Not signed in: sign in to open the {page} page."
    if any(holds_role(actor, role) for role in roles):
        return None
    return f"{actor.label} may not open the {page} page: {_needs(roles)}."


def allowed_pages(actor: Actor | None) -> list[str]:
    """The pages the actor may open, in navigation order."""
    return [page for page in PAGE_ROLES if page_refusal(actor, page) is None]
