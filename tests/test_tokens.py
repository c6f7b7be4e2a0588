"""Personal access tokens: made after a password sign-in, stored hashed, scoped, expiring,
revocable and audited; on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from mlops_core.config import Settings
from mlops_core.errors import InvalidInput, NotFound, PermissionDenied
from mlops_core.identity import Actor
from mlops_core.people.access import holds_role
from mlops_core.people.accounts import create_demo_accounts
from mlops_core.people.auth import authenticate
from mlops_core.people.tokens import (
    authenticate_token,
    create_token,
    list_tokens,
    revoke_token,
)
from mlops_core.people.user_admin import disable_user, manage_user, remove_user
from mlops_core.stores import audit, db
from mlops_core.stores.db import utcnow
from tests.conftest import settings_for


@pytest.fixture
def settings(tmp_path: Path, panel_db_url: str) -> Settings:
    """The demo accounts and a service account `ci`, on SQLite or PostgreSQL."""
    settings = dataclasses.replace(settings_for(tmp_path), db_url=panel_db_url)
    db.upgrade(settings.db_url)
    create_demo_accounts(settings)
    manage_user(settings, signed_in(settings, "admin"), "ci", None, ["requester"], service=True)
    return settings


def signed_in(settings: Settings, name: str) -> Actor:
    return authenticate(settings, name, f"{name}-demo")


def demo_token(settings: Settings, name: str, **options: object) -> str:
    """A fresh access token of a demo account, as its owner makes one."""
    return create_token(settings, signed_in(settings, name), f"{name} test", **options).secret


def test_a_token_is_shown_once_and_stored_only_as_its_hash(settings: Settings) -> None:
    approver = signed_in(settings, "approver")
    new = create_token(settings, approver, " laptop ")
    assert new.secret.startswith("mlp_") and len(new.secret) == 47
    assert (new.info.name, new.info.owner, new.info.scopes) == ("laptop", "approver", ("approver",))
    assert new.info.expires_at - new.info.created_at == timedelta(days=90)
    with db.session_factory(settings.db_url)() as session:
        row = session.scalars(select(db.AccessToken)).one()
        stored = [str(getattr(row, c.key)) for c in db.AccessToken.__table__.columns]
    assert row.token_hash == hashlib.sha256(new.secret.encode()).hexdigest()
    assert not any(new.secret[4:] in value for value in stored)
    event = audit.list_events(settings.db_url, audit.AuditFilter(action="token_created"))[0]
    assert (event.actor, event.actor_via) == ("approver", "local")
    assert event.details["owner"] == "approver" and new.secret not in str(event.details)

    actor = authenticate_token(settings, new.secret + "\n")
    assert (actor.username, actor.roles, actor.auth_method) == ("approver", {"approver"}, "token")
    assert list_tokens(settings, actor)[0].last_used_at is not None


def test_scopes_are_roles_the_owner_holds_then_and_now(settings: Settings) -> None:
    admin = signed_in(settings, "admin")
    narrow = create_token(settings, admin, "ci-debug", scopes=["requester"])
    actor = authenticate_token(settings, narrow.secret)
    assert actor.roles == {"requester"} and not holds_role(actor, "approver")
    with pytest.raises(PermissionDenied, match="does not hold the admin role"):
        create_token(settings, signed_in(settings, "approver"), "x", scopes=["admin"])
    with pytest.raises(InvalidInput, match="Unknown role 'root'"):
        create_token(settings, admin, "x", scopes=["root"])

    approver_token = create_token(settings, signed_in(settings, "approver"), "laptop")
    manage_user(settings, admin, "approver", None, ["viewer"])
    assert authenticate_token(settings, approver_token.secret).roles == frozenset()


def test_only_a_password_sign_in_makes_tokens(settings: Settings) -> None:
    token = create_token(settings, signed_in(settings, "admin"), "laptop")
    from_token = authenticate_token(settings, token.secret)
    with pytest.raises(PermissionDenied, match="An access token cannot make tokens"):
        create_token(settings, from_token, "another")
    # A single sign-on username may name a local account; it proves nothing about it.
    forged = Actor("admin", frozenset({"admin"}), auth_method="oidc")
    with pytest.raises(PermissionDenied, match="no local account to make access tokens for"):
        create_token(settings, forged, "mine")
    with pytest.raises(PermissionDenied, match="Not signed in"):
        create_token(settings, None, "mine")


def test_admins_make_the_tokens_of_service_accounts_only(settings: Settings) -> None:
    settings.access_file.write_text('[roles]\napprover = ["ci", "*"]\n', encoding="utf-8")
    admin = signed_in(settings, "admin")
    ci = create_token(settings, admin, "pipeline", owner="ci")
    assert (ci.info.owner, ci.info.created_by, ci.info.scopes) == ("ci", "admin", ("requester",))
    # The access file grants approver to everyone, but never to a service account.
    assert authenticate_token(settings, ci.secret).roles == {"requester"}
    with pytest.raises(PermissionDenied, match="enabled service accounts only"):
        create_token(settings, admin, "x", owner="approver")
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        create_token(settings, signed_in(settings, "approver"), "x", owner="ci")
    with pytest.raises(NotFound, match="no account 'ghost'"):
        create_token(settings, admin, "x", owner="ghost")


def test_tokens_expire(settings: Settings) -> None:
    approver = signed_in(settings, "approver")
    with pytest.raises(InvalidInput, match="1 to 90 days"):
        create_token(settings, approver, "x", days=91)
    with pytest.raises(InvalidInput, match="1 to 30 days"):
        create_token(dataclasses.replace(settings, token_max_days=30), approver, "x", days=31)
    token = create_token(settings, approver, "short", days=1)
    assert authenticate_token(settings, token.secret, now=utcnow() + timedelta(hours=23))
    with pytest.raises(PermissionDenied, match=r"#\d+ \(short\) expired on"):
        authenticate_token(settings, token.secret, now=utcnow() + timedelta(days=1, seconds=1))
    assert list_tokens(settings, approver)[0].status(utcnow() + timedelta(days=2)) == "expired"


def test_revoking_listing_and_unknown_tokens(settings: Settings) -> None:
    approver, admin = signed_in(settings, "approver"), signed_in(settings, "admin")
    mine = create_token(settings, approver, "laptop")
    create_token(settings, admin, "admin-laptop")
    assert [t.name for t in list_tokens(settings, approver)] == ["laptop"]
    assert [t.name for t in list_tokens(settings, admin, everyone=True)] == [
        "admin-laptop",
        "laptop",
    ]
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        list_tokens(settings, approver, everyone=True)
    requester = signed_in(settings, "requester")
    with pytest.raises(PermissionDenied, match="revoke access tokens of approver"):
        revoke_token(settings, requester, mine.info.id)

    revoked = revoke_token(settings, authenticate_token(settings, mine.secret), mine.info.id)
    assert revoked.status() == "revoked"
    with pytest.raises(PermissionDenied, match="was revoked on"):
        authenticate_token(settings, mine.secret)
    with pytest.raises(InvalidInput, match="already revoked"):
        revoke_token(settings, admin, mine.info.id)
    with pytest.raises(NotFound, match="no access token #999"):
        revoke_token(settings, admin, 999)
    with pytest.raises(PermissionDenied, match="Unknown access token"):
        authenticate_token(settings, "mlp_" + "x" * 43)
    with pytest.raises(PermissionDenied, match="not a panel access token"):
        authenticate_token(settings, "approver-demo")
    actions = [e.action for e in audit.list_events(settings.db_url)]
    assert actions.count("token_created") == 2 and actions.count("token_revoked") == 1


def test_removed_and_disabled_owners(settings: Settings) -> None:
    admin = signed_in(settings, "admin")
    requester = create_token(settings, signed_in(settings, "requester"), "laptop")
    approver = create_token(settings, signed_in(settings, "approver"), "laptop")

    disable_user(settings, admin, "approver")
    with pytest.raises(PermissionDenied, match="belongs to approver, whose account was"):
        authenticate_token(settings, approver.secret)
    disable_user(settings, admin, "approver", disabled=False)
    assert authenticate_token(settings, approver.secret).username == "approver"

    remove_user(settings, admin, "requester")
    manage_user(settings, admin, "requester", "a-new-password", ["requester"])
    # The account made again under the same name does not inherit the old token.
    with pytest.raises(PermissionDenied, match="was revoked on"):
        authenticate_token(settings, requester.secret)
    removal = audit.list_events(settings.db_url, audit.AuditFilter(action="account_removed"))
    assert removal[0].details["tokens_revoked"] == 1
