"""A throwaway PostgreSQL database for tests that need the real server.

    with fresh_pg_url() as url:
        db.upgrade(url)
        ...

The server comes from MLOPS_TEST_PG_URL. Each call creates a database with a unique name
and drops it afterwards, so test modules running at the same time never share tables.
When the server cannot be reached the test is skipped, except on CI (CI=true), where a
missing database must fail the build instead of silently testing less.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from mlops_core.stores.db import get_engine

DEFAULT_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required on CI: {reason}")
    pytest.skip(f"PostgreSQL not reachable: {reason}")


@contextmanager
def fresh_pg_url() -> Iterator[str]:
    """Yield the URL of a new, empty database on the test server; drop it on exit."""
    server_url = make_url(os.environ.get("MLOPS_TEST_PG_URL") or DEFAULT_PG_URL)
    admin = create_engine(
        server_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    name = f"mlops_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        _unavailable(str(exc.orig).strip())
    url = server_url.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        # The panel caches one engine per URL; close its pooled connections before dropping.
        get_engine(url).dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
