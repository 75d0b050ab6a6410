"""Fan-out: the same function gives the same results here and on Ray; bad addresses fail fast."""

from __future__ import annotations

import socket
import time

import pytest

from shoplm.errors import InputError, ShoplmError
from shoplm.fanout import chunked, map_chunks, resolve_ray_address


def _square_sum(chunk: list[int]) -> int:
    return sum(x * x for x in chunk)


def test_chunks_cover_the_items_in_order() -> None:
    items = list(range(11))
    for n in (1, 2, 3, 11, 50):
        parts = chunked(items, n)
        assert [x for part in parts for x in part] == items and all(parts) and len(parts) == min(n, 11)
    with pytest.raises(InputError):
        chunked(items, 0)


def test_the_flags_choose_the_address() -> None:
    assert resolve_ray_address(False, None, "") is None
    assert resolve_ray_address(True, None, "") == "local"
    assert resolve_ray_address(True, "10.0.0.1:6379", "ray://x:1") == "10.0.0.1:6379"


def test_an_unreachable_ray_address_is_refused_within_ten_seconds() -> None:
    with socket.socket() as probe:  # a free port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(ShoplmError, match="cannot reach Ray"):
        map_chunks(_square_sum, [[1]], ray_address=f"ray://127.0.0.1:{port}")
    assert time.monotonic() - started < 10
    with pytest.raises(InputError, match="HOST:PORT"):
        map_chunks(_square_sum, [[1]], ray_address="nonsense")


def test_ray_gives_the_local_results() -> None:
    import ray  # the scale extra, which `make venv` installs

    chunks = chunked(list(range(40)), 4)
    try:
        assert map_chunks(_square_sum, chunks, ray_address="local") == map_chunks(_square_sum, chunks)
    finally:
        ray.shutdown()
