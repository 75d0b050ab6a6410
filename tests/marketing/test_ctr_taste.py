"""The users' title taste to date: tokens, the strictly-earlier ridge, and the learned title embedding."""

from __future__ import annotations

import numpy as np
import torch

from shoplm.marketing.ctr_taste import fit_title_embedding, taste_to_date, title_matrix, title_tokens, user_folds

torch.set_num_threads(1)


def test_title_tokens_split_latin_words_and_chinese_bigrams() -> None:
    assert title_tokens("Acme Yoga-Mat 瑜伽垫") == ["acme", "yoga", "mat", "瑜", "伽", "垫", "瑜伽", "伽垫"]
    assert title_tokens("") == []


def test_taste_uses_only_strictly_earlier_impressions_of_the_same_user() -> None:
    z = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    users = np.array(["a", "a", "a", "b"])
    ts = np.array([1, 2, 2, 3])
    residual = np.array([0.9, 0.9, -0.1, 0.9])
    score, taste = taste_to_date(users, ts, z, residual, ridge=1.0)
    # First impression: nothing before it. Both rows at ts=2 see only the click at ts=1 (0.9 / (1 + 1)).
    np.testing.assert_allclose(score, [0.0, 0.45, 0.45, 0.0])
    np.testing.assert_allclose(taste[1], [0.45, 0.0])
    assert (taste[3] == 0).all()  # user b's first impression: user a's clicks do not count


def test_learned_title_embedding_ranks_the_liked_words_first() -> None:
    titles = ["red shoe", "red hat", "blue shoe", "blue hat"] * 5
    x = title_matrix(titles)
    rng = np.random.default_rng(0)
    n_users, n = 40, 4000
    users = rng.integers(0, n_users, n)
    rows = rng.integers(0, len(titles), n)
    likes_red = users % 2 == 0  # half the users click red titles, half blue ones
    is_red = np.array(["red" in t for t in titles])[rows]
    clicked = rng.random(n) < np.where(likes_red == is_red, 0.6, 0.05)
    z = fit_title_embedding(x, rows, users, np.zeros(n, dtype=np.int64), clicked, dims=2, epochs=100)
    score, _ = taste_to_date(users, np.arange(n), z[rows], clicked - clicked.mean(), ridge=1.0)
    late = np.arange(n) > n // 2
    assert score[late & (likes_red == is_red)].mean() > score[late & (likes_red != is_red)].mean() + 0.1
    assert set(user_folds(np.array(["u1", "u2", "u3", "u4"]))) <= {0, 1}
