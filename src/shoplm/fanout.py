"""Fan-out of independent work (per SKU, per user) here or on Ray, through one code path.

A job splits its work into chunks and calls :func:`map_chunks` with a plain function. Without
Ray the chunks run one after another in this process; with ``ray_address`` (``"local"`` for a
Ray started here, or a cluster's address) each chunk is a Ray task running the *same*
function, and the results come back in chunk order. So a job's result does not depend on where
it ran, and the tests of the local path cover the Ray path's logic.

Ray is optional (``pip install 'shoplm[scale]'``) and imported only when asked for. An address
that cannot be reached is refused within ``connect_timeout`` seconds with a clear message,
never a hang.

Example:
    >>> map_chunks(sum, [[1, 2], [3], [4, 5, 6]])
    [3, 3, 15]
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from shoplm.errors import InputError, ShoplmError

T = TypeVar("T")
R = TypeVar("R")

#: ``--ray`` on the command line means this address: a Ray instance started in this process.
LOCAL = "local"


def chunked(items: Sequence[T], n_chunks: int) -> list[list[T]]:
    """``items`` in at most ``n_chunks`` contiguous chunks of near-equal size (none empty).

    Example:
        >>> chunked([1, 2, 3, 4, 5], 2)
        [[1, 2, 3], [4, 5]]
    """
    if n_chunks < 1:
        raise InputError(f"n_chunks must be at least 1, not {n_chunks}")
    n = min(n_chunks, len(items))
    if n == 0:
        return []
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for index in range(n):
        stop = start + size + (1 if index < extra else 0)
        out.append(list(items[start:stop]))
        start = stop
    return out


def resolve_ray_address(ray: bool, ray_address: str | None, configured: str = "") -> str | None:
    """The Ray address a command runs on: ``--ray-address`` wins, then ``--ray``, then the setting.

    Example:
        >>> resolve_ray_address(False, None), resolve_ray_address(True, None), resolve_ray_address(False, None, "ray://h:10001")
        (None, 'local', 'ray://h:10001')
    """
    if ray_address:
        return ray_address
    if ray:
        return LOCAL
    return configured or None


def map_chunks(
    function: Callable[[T], R],
    chunks: Sequence[T],
    *,
    ray_address: str | None = None,
    connect_timeout: float = 10.0,
    num_cpus: float = 1.0,
    shared: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[R]:
    """``[function(chunk) for chunk in chunks]``, here or as Ray tasks.

    Args:
        function: a module-level function (Ray ships it to the workers by reference).
        chunks: the work, one item per task.
        ray_address: None to run here; ``"local"`` or a Ray address to run on Ray.
        connect_timeout: seconds to wait for a Ray cluster before giving up.
        num_cpus: CPUs each Ray task reserves.
        shared: what every chunk needs (a model, a catalog): with it, each call is
            ``function(shared, chunk)``, and Ray ships it to the object store once, not per task.
        progress: called with (chunks done, chunks in all) as chunks finish.

    Returns:
        The results in chunk order.

    Raises:
        ShoplmError: Ray is not installed, or the cluster cannot be reached in time.
    """
    call: Callable[..., R] = function
    head: tuple[Any, ...] = () if shared is None else (shared,)
    if not ray_address:
        results = []
        for chunk in chunks:
            results.append(call(*head, chunk))
            if progress is not None:
                progress(len(results), len(chunks))
        return results
    ray = connect_ray(ray_address, connect_timeout=connect_timeout)
    remote = ray.remote(num_cpus=num_cpus)(function)
    if shared is not None:
        head = (ray.put(shared),)  # a top-level ObjectRef argument: each task receives the object
    pending = [remote.remote(*head, chunk) for chunk in chunks]
    if progress is not None:
        waiting = list(pending)
        while waiting:
            _done, waiting = ray.wait(waiting, num_returns=1)
            progress(len(chunks) - len(waiting), len(chunks))
    return list(ray.get(pending))


def connect_ray(address: str, *, connect_timeout: float = 10.0) -> Any:
    """The ``ray`` module, initialised for ``address`` (``"local"``: a Ray started here)."""
    try:
        import ray
    except ImportError as exc:
        raise ShoplmError("Ray is not installed: pip install 'shoplm[scale]' (or run without --ray)") from exc
    if ray.is_initialized():
        return ray
    if address == LOCAL:
        # Workers on this machine see the driver's import path, so a function defined in a
        # benchmark script's folder (or a test module) runs there as it does here.
        path = os.pathsep.join(p for p in sys.path if p)
        runtime_env = {"env_vars": {"PYTHONPATH": path}}
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, runtime_env=runtime_env)
        return ray
    _check_reachable(address, connect_timeout)
    failure: list[BaseException] = []

    def connect() -> None:
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)

    # ray.init may wait a long time for a cluster that accepts TCP but never answers as Ray.
    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(connect_timeout)
    if worker.is_alive():
        raise ShoplmError(f"Ray at {address!r} did not answer within {connect_timeout:.0f} s")
    if failure:
        raise ShoplmError(f"cannot connect to Ray at {address!r}: {failure[0]}") from failure[0]
    return ray


def _check_reachable(address: str, timeout: float) -> None:
    """Fail fast when nothing listens at the address's host and port."""
    target = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"Ray address {address!r} is not HOST:PORT (or ray://HOST:PORT, or 'local')")
    try:
        with socket.create_connection((host, int(port)), timeout=min(timeout, 5.0)):
            pass
    except OSError as exc:
        raise ShoplmError(f"cannot reach Ray at {address!r}: {exc.strerror or exc}") from exc
