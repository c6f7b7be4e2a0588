"""Role mapping from the access file, and the role checks the core and the pages rely on."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_core.errors import ConfigError, PermissionDenied
from mlops_core.identity import Actor
from mlops_core.people.access import (
    PAGE_ROLES,
    AccessConfig,
    actor_from_oidc,
    allowed_pages,
    holds_role,
    load_access,
    page_refusal,
    require_role,
    roles_for,
)

ACCESS_TOML = """
groups_claim = "roles_claim"

[roles]
viewer = ["*"]
requester = ["Alice@Example.com", "bob"]
approver = ["carol@example.com"]

[groups]
"mlops-approvers" = ["approver"]
"mlops-admins" = ["admin"]
"""
READ_PAGES = [page for page, roles in PAGE_ROLES.items() if roles == ("viewer",)]


@pytest.fixture
def access(tmp_path: Path) -> AccessConfig:
    path = tmp_path / "access.toml"
    path.write_text(ACCESS_TOML, encoding="utf-8")
    return load_access(path)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "access.toml"
    path.write_text(text, encoding="utf-8")
    return path


def actor(*roles: str, username: str = "someone") -> Actor:
    return Actor(username=username, roles=frozenset(roles))


def test_missing_access_file_grants_nothing(tmp_path: Path) -> None:
    access = load_access(tmp_path / "absent.toml")
    assert roles_for("bob", "bob@example.com", ["mlops-admins"], (), access) == frozenset()
    assert roles_for("bob", None, (), {"approver"}, access) == {"approver"}


def test_lists_match_username_or_email_case_insensitively(access: AccessConfig) -> None:
    assert roles_for("alice", "alice@example.com", (), (), access) == {"viewer", "requester"}
    assert roles_for("BOB", None, (), (), access) == {"viewer", "requester"}
    assert roles_for("carol", "Carol@Example.COM", (), (), access) == {"viewer", "approver"}


def test_wildcard_grants_everyone_signed_in(access: AccessConfig) -> None:
    assert roles_for("stranger", None, (), (), access) == {"viewer"}


def test_local_roles_and_list_roles_combine(access: AccessConfig) -> None:
    assert roles_for("bob", None, (), {"admin"}, access) == {"viewer", "requester", "admin"}


def test_groups_claim_maps_to_roles(access: AccessConfig) -> None:
    info = {
        "sub": "123",
        "email": "dave@example.com",
        "email_verified": True,
        "name": "Dave",
        "roles_claim": ["mlops-approvers", "unrelated"],
    }
    dave = actor_from_oidc(info, access)
    assert dave.roles == {"viewer", "approver"}
    assert dave.email == "dave@example.com"
    assert dave.label == "dave@example.com"
    assert dave.display_name == "Dave"
    assert dave.auth_method == "oidc"


def test_groups_claim_may_be_a_single_string(access: AccessConfig) -> None:
    info = {"sub": "1", "preferred_username": "Erin", "roles_claim": "mlops-admins"}
    erin = actor_from_oidc(info, access)
    assert erin.username == "erin"
    assert erin.roles == {"viewer", "admin"}


def test_unverified_email_matches_no_list(access: AccessConfig) -> None:
    info = {"sub": "abc", "email": "carol@example.com", "email_verified": False}
    impostor = actor_from_oidc(info, access)
    assert impostor.email is None
    assert impostor.username == "abc"
    assert "approver" not in impostor.roles


def test_a_username_that_looks_like_an_email_gets_no_email_roles(access: AccessConfig) -> None:
    # Anyone may pick this preferred_username at many providers; it is not carol's e-mail.
    forged = actor_from_oidc({"sub": "x1", "preferred_username": "Carol@Example.com"}, access)
    assert forged.username == "carol@example.com" and forged.email is None
    assert forged.roles == {"viewer"}
    assert roles_for("carol@example.com", None, (), (), access) == {"viewer"}
    # The same e-mail from the verified email claim does count.
    carol = actor_from_oidc({"sub": "x2", "email": "carol@example.com"}, access)
    assert carol.roles == {"viewer", "approver"}
    # A plain username still matches plain entries, never e-mail ones.
    bob = actor_from_oidc({"sub": "x3", "preferred_username": "bob"}, access)
    assert bob.roles == {"viewer", "requester"}


@pytest.mark.parametrize("verified", [False, "false", "False", None, "no"])
def test_only_a_verified_email_counts(access: AccessConfig, verified: object) -> None:
    info = {"sub": "x", "email": "carol@example.com", "email_verified": verified}
    assert actor_from_oidc(info, access).roles == {"viewer"}
    assert actor_from_oidc({**info, "email_verified": "true"}, access).roles == {
        "viewer",
        "approver",
    }


def test_the_username_claim_is_configurable(tmp_path: Path) -> None:
    access = load_access(write(tmp_path, 'username_claim = "upn"\n[roles]\nadmin = ["dave"]\n'))
    info = {"sub": "s", "upn": "Dave", "preferred_username": "mallory"}
    assert actor_from_oidc(info, access).username == "dave"
    assert actor_from_oidc(info, access).roles == {"admin"}
    by_email = load_access(write(tmp_path, 'username_claim = "email"\n'))
    unverified = {"sub": "s9", "email": "dave@example.com", "email_verified": False}
    assert actor_from_oidc(unverified, by_email).username == "s9"


def test_oidc_without_any_id_is_refused(access: AccessConfig) -> None:
    with pytest.raises(PermissionDenied, match="no user id"):
        actor_from_oidc({"name": "Nobody"}, access)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[roles\nviewer = 1", "not valid TOML"),
        ('[roles]\naprover = ["bob"]', "unknown role 'aprover'"),
        ('[roles]\nviewer = "bob"', "roles.viewer must be a list of strings"),
        ("[roles]\nviewer = [1]", "roles.viewer must be a list of strings"),
        ('[groups]\nops = ["root"]', "groups.'ops' names unknown role 'root'"),
        ('[groups]\nops = "admin"', "groups.ops must be a list of strings"),
        ('roles = ["viewer"]', "roles must be a table"),
        ("groups_claim = 3", "groups_claim must be a non-empty string"),
        ('username_claim = ""', "username_claim must be a non-empty string"),
        ('[role]\nviewer = ["*"]', "unknown key 'role'"),
    ],
)
def test_invalid_access_file_names_key_and_problem(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as raised:
        load_access(path)
    assert str(path) in str(raised.value)


def test_require_role_refuses_missing_role() -> None:
    viewer = Actor(username="vic", roles=frozenset({"viewer"}), email="vic@example.com")
    with pytest.raises(PermissionDenied) as raised:
        require_role(viewer, "approver", "approve promotion request 7")
    assert str(raised.value) == (
        "vic@example.com may not approve promotion request 7: needs the approver role."
    )
    with pytest.raises(PermissionDenied, match="needs the approver role"):
        require_role(actor("requester"), "approver", "approve promotion request 7")
    with pytest.raises(PermissionDenied, match="needs the requester role"):
        require_role(actor("approver"), "requester", "request a promotion")


def test_require_role_refuses_nobody() -> None:
    with pytest.raises(PermissionDenied, match="Not signed in"):
        require_role(None, "viewer", "read the audit log")


def test_admin_implies_every_role() -> None:
    admin = actor("admin")
    for role in ("viewer", "requester", "approver", "admin"):
        require_role(admin, role, "act")


def test_every_role_may_read_but_no_role_may_not() -> None:
    for role in ("viewer", "requester", "approver", "admin"):
        assert holds_role(actor(role), "viewer")
    assert not holds_role(actor(), "viewer")


def test_unknown_role_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        require_role(actor("admin"), "superuser", "act")


@pytest.mark.parametrize(
    ("roles", "approvals"),
    [
        ((), None),
        (("viewer",), False),
        (("requester",), True),
        (("approver",), True),
        (("admin",), True),
    ],
)
def test_allowed_pages_per_role(roles: tuple[str, ...], approvals: bool | None) -> None:
    pages = allowed_pages(actor(*roles))
    if approvals is None:
        assert pages == []
        return
    assert set(READ_PAGES) <= set(pages)
    assert ("approvals" in pages) is approvals


def test_allowed_pages_for_nobody_is_empty() -> None:
    assert allowed_pages(None) == []


def test_page_refusal_names_the_roles_needed() -> None:
    viewer = actor("viewer", username="vic")
    assert page_refusal(viewer, "approvals") == (
        "vic may not open the approvals page: needs the requester or approver role."
    )
    assert page_refusal(viewer, "audit") is None
