"""A throwaway PostgreSQL database for tests that need the real server.

    with fresh_pg_url() as url:
        db.upgrade(url)
        ...

The server comes from MLOPS_TEST_PG_URL. Each call creates a database with a unique name
and drops it afterwards, so test modules running at the same time never share tables.
When the server cannot be reached the test is skipped, except on CI (CI=true), where a
missing database must fail the build instead of silently testing less.
`temporary_roles` does the same for login roles.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

from mlops_core.stores.db import get_engine

DEFAULT_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
ROLE_PASSWORD = "role-test-password"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required on CI: {reason}")
    pytest.skip(f"PostgreSQL not reachable: {reason}")


def _server() -> URL:
    return make_url(os.environ.get("MLOPS_TEST_PG_URL") or DEFAULT_PG_URL)


def _admin() -> Engine:
    return create_engine(
        _server(), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )


@contextmanager
def fresh_pg_url() -> Iterator[str]:
    """Yield the URL of a new, empty database on the test server; drop it on exit."""
    admin = _admin()
    name = f"mlops_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        _unavailable(str(exc.orig).strip())
    url = _server().set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        # The panel caches one engine per URL; close its pooled connections before dropping.
        get_engine(url).dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def temporary_roles(*prefixes: str) -> Iterator[list[str]]:
    """Login roles (password ROLE_PASSWORD) with unique names, dropped on exit.

    Roles belong to the whole server, not to one database, so tests running at the same
    time must never share a name. Drop the databases they own before leaving this block.
    """
    suffix = uuid.uuid4().hex[:10]
    names = [f"{prefix}_{suffix}" for prefix in prefixes]
    admin = _admin()
    try:
        with admin.connect() as connection:
            for name in names:
                connection.execute(text(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{ROLE_PASSWORD}'"))
    except OperationalError as exc:
        admin.dispose()
        _unavailable(str(exc.orig).strip())
    try:
        yield names
    finally:
        with admin.connect() as connection:
            for name in names:
                connection.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
        admin.dispose()
