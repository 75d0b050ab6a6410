"""The batch stages of shoplm.app.batch on their local path (the Ray path runs the same functions:
see tests/test_analytics_jobs.py, which starts Ray once for the suite's fan-out tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shoplm.app.batch import FannedOutEncoder, prepare_interactions
from shoplm.app.jobs import encode_reviews
from shoplm.config import EncoderSettings, Settings
from shoplm.errors import InputError
from shoplm.interactions import Interactions
from shoplm.lm import load_encoder
from shoplm.store import Store


def _events(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in rng.integers(0, 37, n)],
            "item_id": np.where(rng.random(n) < 0.1, "", [f"i{i}" for i in rng.integers(0, 50, n)]),
            "event_type": rng.choice(["view", "search", "add_to_cart", "purchase"], n),
            "ts_ms": rng.integers(0, 40, n),  # many ties: the order within a tie must survive chunking
        }
    )


@pytest.mark.parametrize("n_tasks", [1, 3, 8, 100])
def test_interactions_built_in_chunks_of_users_are_those_built_in_one_piece(n_tasks: int) -> None:
    events = _events(2_000, seed=n_tasks)
    whole = Interactions.from_frame(events)
    chunked = prepare_interactions(events, n_tasks=n_tasks)
    for name in ("user_id", "item_id", "ts_ms", "weight"):
        assert np.array_equal(getattr(chunked, name), getattr(whole, name)), name
    assert chunked.sequences() == whole.sequences()


def test_preparing_interactions_refuses_bad_input() -> None:
    with pytest.raises(InputError, match="n_tasks"):
        prepare_interactions(_events(10, 0), n_tasks=0)
    with pytest.raises(InputError, match="user_id"):
        prepare_interactions(pd.DataFrame({"item_id": ["a"], "ts_ms": [1]}))
    assert len(prepare_interactions(_events(0, 0))) == 0


def test_encoding_in_chunks_gives_the_encoders_vectors() -> None:
    texts = ["red summer dress", "USB-C laptop charger", "wooden puzzle for kids", "红色连衣裙", "garden hose 20 m"]
    fanned = FannedOutEncoder(EncoderSettings(), chunk_size=2)
    plain = load_encoder(EncoderSettings(), cache=False, threads=1)
    assert fanned.model_id == plain.model_id and fanned.dim == plain.dim
    vectors = fanned.encode(texts, mode="query")
    assert vectors.shape == (5, plain.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, plain.encode(texts, mode="query"), atol=1e-5)
    assert fanned.encode([]).shape == (0, plain.dim)
    with pytest.raises(InputError, match="chunk_size"):
        FannedOutEncoder(EncoderSettings(), chunk_size=0)


def test_review_texts_are_encoded_into_the_data_directory(tmp_path: Path) -> None:
    from shoplm.demo.generator import DemoSizes, generate_demo_store
    from shoplm.ingest.pipeline import ingest

    settings = Settings(data_dir=tmp_path / "data")
    manifest = generate_demo_store(
        tmp_path / "source", seed=5, sizes=DemoSizes(n_items=20, n_users=50, n_events=500, n_categories=5)
    )
    with Store.open(settings.database_url) as store:
        with pytest.raises(InputError, match="no review"):
            encode_reviews(store, settings)
        for kind in ("items", "users", "reviews"):
            ingest(kind, manifest.files[kind], store=store, settings=settings)
        reviews = store.frame("reviews", ["review_id", "text"], order_by=["review_id"])
        done = encode_reviews(store, settings)
    with np.load(done["path"], allow_pickle=False) as saved:
        ids, vectors = saved["review_ids"], saved["vectors"]
    kept = reviews[reviews["text"].str.strip() != ""]
    assert done["count"] == len(kept) == len(ids) > 0 and ids.tolist() == kept["review_id"].tolist()
    expected = load_encoder(settings, cache=False).encode(kept["text"].tolist())
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    assert done["path"].name.startswith("reviews-") and done["ran_on"] == "local"

    from typer.testing import CliRunner

    from shoplm.cli.main import app

    runner = CliRunner()
    shown = runner.invoke(app, ["encode", "--reviews", "--data-dir", str(settings.data_dir)])
    assert shown.exit_code == 0, shown.output
    assert f"encoded {len(kept):,} reviews" in shown.output and "encoded 20 items" in shown.output
    refused = runner.invoke(app, ["encode", "--ray-address", "nonsense", "--data-dir", str(settings.data_dir)])
    assert refused.exit_code == 2 and "HOST:PORT" in refused.output
