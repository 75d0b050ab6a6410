"""``shoplm serve`` with several worker processes: one per core by default, each with its own socket.

uvicorn's supervisor starts the workers and replaces one that dies. Each worker listens on its
own socket bound with ``SO_REUSEPORT``, so the kernel spreads new connections evenly over the
workers. (With one socket shared by all workers, the worker that wakes first accepts a whole
burst of connections, and keep-alive clients then keep all the load on it: measured 19 of 20
connections on one of two workers.) A worker gets SIGTERM when the server process dies
(:func:`shoplm.serve.app.stop_with_parent`), so no worker outlives its server.

Example:
    >>> run_workers(settings, workers=2)   # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil
import socket
from typing import Any

from shoplm.config import Settings
from shoplm.errors import ShoplmError
from shoplm.serve.metrics import MULTIPROC_ENV

APP = "shoplm.serve.app:create_app_from_env"


class _Worker:
    """The target of a worker process: its own ``SO_REUSEPORT`` socket, then uvicorn's server."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def __call__(self, sockets: list[socket.socket] | None = None) -> None:
        import uvicorn

        sock = listening_socket(self.config.host, self.config.port, reuse_port=True)
        uvicorn.Server(self.config).run(sockets=[sock])


def listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A TCP socket bound to ``host:port`` (IPv6 when the host has a colon)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def check_port(host: str, port: int) -> None:
    """Refuse a port another program (or another shoplm server) listens on, before starting workers."""
    try:
        listening_socket(host, port, reuse_port=False).close()
    except OSError as exc:
        raise ShoplmError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def run_workers(settings: Settings, *, workers: int, log_level: str = "info") -> None:
    """Start ``workers`` worker processes under uvicorn's supervisor and serve until stopped.

    Args:
        settings: the shop's settings (``--data-dir``, ``--host`` and ``--port`` already applied).
        workers: how many worker processes.
        log_level: uvicorn's log level.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from shoplm.store import Store

    check_port(settings.server.host, settings.server.port)
    # Done once here, not by every worker at the same time: the key file, the tables.
    _ = settings.hmac_key
    Store.open(settings.database_url).close()
    # The workers build their settings from the environment: pass on what the command line set.
    os.environ["SHOPLM_DATA_DIR"] = str(settings.data_dir)
    os.environ["SHOPLM_SERVER__HOST"] = settings.server.host
    os.environ["SHOPLM_SERVER__PORT"] = str(settings.server.port)
    metrics_dir = settings.data_dir / "run" / f"metrics-{os.getpid()}"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(metrics_dir)
    config = uvicorn.Config(
        APP,
        factory=True,
        host=settings.server.host,
        port=settings.server.port,
        workers=workers,
        log_level=log_level,
        access_log=False,  # /metrics counts requests; a log line each would cost more than a recommendation
        timeout_graceful_shutdown=5,
        loop="uvloop",
        http="httptools",
    )
    try:
        Multiprocess(config, target=_Worker(config), sockets=[]).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
