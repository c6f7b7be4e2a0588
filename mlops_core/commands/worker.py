"""`worker`: run the scheduled jobs, deliver notifications and receive MLflow webhooks.

One long-running process beside the panel (several may run: each scheduled job still runs
once per slot). Stops cleanly on SIGTERM or Ctrl-C, after the running jobs finish.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading

from mlops_core.commands.catalog import help_of
from mlops_core.config import Settings
from mlops_core.errors import ConfigError
from mlops_core.notifications import load_notifications
from mlops_core.stores.db import migrate
from mlops_core.stores.outbox import EVENT_NAMES
from mlops_core.worker.jobs import JOBS
from mlops_core.worker.runner import Worker
from mlops_core.worker.server import make_server

PORT_ENV, HOST_ENV = "MLOPS_WORKER_PORT", "MLOPS_WORKER_HOST"
DEFAULT_PORT = 8502


def _port(value: str | None) -> int:
    if value is None:
        return DEFAULT_PORT
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ConfigError(f"{PORT_ENV} must be a port number (1-65535), not {value!r}.")
    return int(value)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("worker", help=help_of("worker"))
    parser.add_argument(
        "--port", type=int, help=f"HTTP port (default ${PORT_ENV}, else {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--host", help=f"address to listen on (default ${HOST_ENV}, else 127.0.0.1)"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("mlops_core").setLevel(logging.INFO)
    migrate(settings)
    # A broken notifications file stops the worker now, not at the first delivery.
    load_notifications(settings, EVENT_NAMES)
    worker = Worker(settings, JOBS)
    port = args.port if args.port is not None else _port(os.environ.get(PORT_ENV))
    host = args.host or os.environ.get(HOST_ENV) or "127.0.0.1"
    try:
        server = make_server(worker, host, port)
    except OSError as exc:
        raise ConfigError(f"The worker cannot listen on {host}:{port}: {exc.strerror}.") from None
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stopping.set())
    print(
        f"Worker {worker.name} on http://{host}:{server.server_address[1]} (jobs: "
        f"{', '.join(JOBS)})",
        flush=True,
    )
    worker.serve()
    server.shutdown()
    return 0
