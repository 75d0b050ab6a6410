"""TextSimilarityRecommender: content similarity, cold-start items, search, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from shoplm.errors import InputError
from shoplm.recommend import Interactions, TextSimilarityRecommender
from tests.estimator_contract import EstimatorContract
from tests.recommend.two_groups import GROUP_A, GROUP_B, group_share, two_groups

DIM = 16


def group_embeddings(seed: int = 0) -> tuple[list[str], np.ndarray]:
    """A items cluster around one direction, B items around an orthogonal one (unit rows)."""
    rng = np.random.default_rng(seed)
    centers = np.eye(DIM)[[0, 1]] * 6.0
    ids = GROUP_A + GROUP_B
    vectors = np.concatenate([centers[0] + rng.normal(size=(10, DIM)), centers[1] + rng.normal(size=(10, DIM))])
    return ids, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def model() -> TextSimilarityRecommender:
    ids, vectors = group_embeddings()
    return TextSimilarityRecommender().fit(item_ids=ids, embeddings=vectors)


class TestTextSimilarityContract(EstimatorContract):
    def make_estimator(self) -> TextSimilarityRecommender:
        return TextSimilarityRecommender(recency_decay=0.5)

    def fit_estimator(self, estimator: TextSimilarityRecommender) -> TextSimilarityRecommender:
        ids, vectors = group_embeddings()
        estimator.fit(two_groups(3), item_ids=ids, embeddings=vectors)
        return estimator.add_items(["new"], vectors[:1] + vectors[10:11])

    def probe(self, estimator: TextSimilarityRecommender) -> np.ndarray:
        return np.concatenate([estimator.score([]), estimator.score(["a1", "b2", "new"])])


def test_history_from_group_a_ranks_a_items_first(model: TextSimilarityRecommender) -> None:
    assert group_share(model.recommend(["a1", "a2"], k=8, exclude_seen=True), "a") == 1.0
    assert group_share(model.recommend(["b5"], k=9, exclude_seen=True), "b") == 1.0
    assert group_share(model.similar("a3", 9), "a") == 1.0
    assert "a3" not in dict(model.similar("a3", 19))


def test_newest_history_item_counts_most(model: TextSimilarityRecommender) -> None:
    steep = TextSimilarityRecommender(recency_decay=0.3).fit(item_ids=model.item_ids_, embeddings=model.embeddings_)
    assert group_share(steep.recommend(["a1", "b3"], k=5, exclude_seen=True), "b") == 1.0
    assert group_share(steep.recommend(["b3", "a1"], k=5, exclude_seen=True), "a") == 1.0
    flat = TextSimilarityRecommender(recency_decay=1.0).fit(item_ids=model.item_ids_, embeddings=model.embeddings_)
    np.testing.assert_allclose(flat.score(["a1", "b3"]), flat.score(["b3", "a1"]), atol=1e-6)


def test_added_item_is_recommendable_at_once() -> None:
    ids, vectors = group_embeddings()
    model = TextSimilarityRecommender().fit(item_ids=ids, embeddings=vectors)
    fresh = vectors[GROUP_A.index("a4")] + 0.01 * np.ones(DIM)  # a near twin of a4
    model.add_items(["a-new"], (fresh / np.linalg.norm(fresh))[None, :])
    assert len(model.item_ids_) == 21 and len(model.score([])) == 21
    assert model.similar("a4", 1)[0][0] == "a-new"
    assert "a-new" in dict(model.recommend(["a4"], k=3))
    assert model.recommend(["a-new"], k=1, exclude_seen=True)[0][0] == "a4"
    # Re-adding a known id replaces its embedding instead of duplicating it.
    model.add_items(["a-new"], vectors[GROUP_B.index("b0") + 10][None, :])
    assert len(model.item_ids_) == 21
    assert model.similar("b0", 1)[0][0] == "a-new"


def test_search_by_query_vector(model: TextSimilarityRecommender) -> None:
    query = np.zeros(DIM)
    query[1] = 2.0  # the B direction, not normalized on purpose
    assert group_share(model.search(query, k=5), "b") == 1.0
    with pytest.raises(InputError, match="dimensions"):
        model.search(np.ones(DIM + 1))
    with pytest.raises(InputError, match="non-zero"):
        model.search(np.zeros(DIM))


def test_cold_start_uses_popularity_if_given_else_zeros() -> None:
    ids, vectors = group_embeddings()
    plain = TextSimilarityRecommender().fit(item_ids=ids, embeddings=vectors)
    np.testing.assert_array_equal(plain.score([]), np.zeros(20))
    np.testing.assert_array_equal(plain.score(["unknown"]), np.zeros(20))
    data = Interactions.from_arrays(["u1", "u2", "u3", "u4"], ["b2", "b2", "a1", "not-in-catalog"])
    popular = TextSimilarityRecommender().fit(data, item_ids=ids, embeddings=vectors)
    assert popular.recommend([], k=2) == [("b2", 1.0), ("a1", 0.5)]
    np.testing.assert_allclose(popular.score(["unknown", "a1"]), popular.score(["a1"]))
    assert popular.similar("unknown") == []


def test_bad_input_is_refused_early() -> None:
    ids, vectors = group_embeddings()
    with pytest.raises(InputError, match="rows"):
        TextSimilarityRecommender().fit(item_ids=ids[:-1], embeddings=vectors)
    with pytest.raises(InputError, match="2-D"):
        TextSimilarityRecommender().fit(item_ids=ids, embeddings=vectors[:, 0])
    broken = vectors.copy()
    broken[3, 2] = np.nan
    with pytest.raises(InputError, match="NaN"):
        TextSimilarityRecommender().fit(item_ids=ids, embeddings=broken)
    with pytest.raises(InputError, match="duplicate"):
        TextSimilarityRecommender().fit(item_ids=["x", "x"], embeddings=vectors[:2])
    with pytest.raises(InputError, match="empty"):
        TextSimilarityRecommender().fit(item_ids=[], embeddings=np.zeros((0, DIM)))
    model = TextSimilarityRecommender().fit(item_ids=ids, embeddings=vectors)
    with pytest.raises(InputError, match="dimensions"):
        model.add_items(["z"], np.ones((1, DIM + 2)))
    with pytest.raises(InputError, match="no interactions"):
        TextSimilarityRecommender().fit(Interactions.from_arrays([], []), item_ids=ids, embeddings=vectors)
