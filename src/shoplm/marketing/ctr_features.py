"""Features for click-through-rate models: user, item and context fields, plus the item's text vector.

Every training feature of an impression is computed from what was known *before* it (strictly
earlier timestamps: the other items of the same request do not count), so nothing leaks from the
future or from the impression's own request:

- user: past events (all, and in the item's category, and their share), past impressions,
  clicks and smoothed CTR (all, and in the item's category);
- item: category, brand, price band (tercile within its category), language, log price,
  popularity to date (events, purchases, impressions), CTR to date smoothed towards the global rate;
- context: scene, position, hour of day;
- text (optional): the first components of the item's LM vector (e5, reduced by PCA on the
  catalog), and cosines between the item's vector and the user's vectors to date: the mean of the
  items they clicked, of those shown and passed over, of those in their events, and the
  clicked-minus-passed direction;
- taste (with text, when the catalog has titles): the user's taste for titles to date, from a ridge
  regression of their past click residuals on a title embedding learned from all users' clicks
  (:mod:`shoplm.marketing.ctr_taste`), dotted with the candidate's title.

:class:`CtrFeaturizer` learns the catalog codes and the end-of-log state of every user and item,
so :meth:`CtrFeaturizer.request_features` builds the same columns for a live request from arrays
alone (the serving path).

Example:
    >>> import pandas as pd
    >>> items = pd.DataFrame({"item_id": ["a", "b"], "category": ["X", "Y"], "brand": ["p", "q"],
    ...                       "price": [10.0, 20.0], "language": ["en", "zh"]})
    >>> imps = pd.DataFrame({"request_id": ["r1", "r1", "r2", "r2"], "position": [0, 1, 0, 1],
    ...     "user_id": ["u"] * 4, "item_id": ["a", "b", "a", "b"], "ts_ms": [1, 1, 2, 2],
    ...     "scene": ["home"] * 4, "clicked": [True, False, False, False]})
    >>> f = CtrFeaturizer(text_dims=0).fit(imps, None, items)
    >>> X = f.log_features(imps, None)
    >>> X["user_clicks"].tolist()  # clicks before each impression: none in request r1, one in r2
    [0.0, 0.0, 0.6931471805599453, 0.6931471805599453]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from shoplm.errors import InputError
from shoplm.estimator import Estimator
from shoplm.marketing import ctr_taste

CATEGORICAL = ("category", "brand", "price_band", "language", "scene", "position", "hour", "creative")
BASE_NUMERIC = (
    "log_price",
    "user_events",
    "user_cat_events",
    "user_cat_share",
    "user_impressions",
    "user_clicks",
    "user_ctr",
    "user_cat_impressions",
    "user_cat_clicks",
    "user_cat_ctr",
    "item_events",
    "item_purchases",
    "item_impressions",
    "item_clicks",
    "item_ctr",
    "item_creative_ctr",
)
TEXT_COSINES = ("text_click_cos", "text_skip_cos", "text_event_cos", "text_pref")
TASTE = ("text_taste", "text_taste_cos")
MAX_POSITION = 15  # positions beyond share one code
MAX_CREATIVES = 16  # ad-copy variant codes 1..16 (0: unknown or beyond)
SMOOTHING = 20.0  # pseudo-impressions at the global CTR in every smoothed CTR
_SCENES = ("home", "search", "item_detail", "cart")


def _codes(values: pd.Series, vocabulary: Sequence[str]) -> np.ndarray:
    """1-based codes of ``values`` in ``vocabulary``; 0 for unknown values."""
    index = pd.Index(list(vocabulary))
    return (index.get_indexer(values.astype(str).to_numpy()) + 1).astype(np.int64)


def _sums_before(
    log_keys: np.ndarray, log_ts: np.ndarray, log_values: np.ndarray, keys: np.ndarray, ts: np.ndarray
) -> np.ndarray:
    """For each query (key, ts): the sum of ``log_values`` over log rows of that key with a strictly earlier ts.

    Vectorised: the log sorted by (key, time rank) with cumulative sums, and two binary searches per query.
    """
    values = log_values.reshape(len(log_values), -1).astype(np.float64)
    _, time_rank = np.unique(np.r_[log_ts, ts], return_inverse=True)
    shift = np.int64(len(time_rank) + 1)
    log_comb = log_keys.astype(np.int64) * shift + time_rank[: len(log_ts)]
    order = np.argsort(log_comb, kind="stable")
    log_comb = log_comb[order]
    csum = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values[order], axis=0)])
    query = keys.astype(np.int64) * shift
    start = np.searchsorted(log_comb, query, side="left")
    end = np.searchsorted(log_comb, query + time_rank[len(log_ts) :], side="left")
    out = csum[end] - csum[start]
    return out[:, 0] if log_values.ndim == 1 else out


def _creative_codes(impressions: pd.DataFrame) -> np.ndarray:
    """1-based ad-copy variant codes of logged impressions (0: unknown, or beyond ``MAX_CREATIVES``)."""
    if "creative" not in impressions.columns:
        return np.zeros(len(impressions), dtype=np.int64)
    raw = pd.to_numeric(impressions["creative"], errors="coerce").to_numpy(dtype=np.float64)
    ok = np.isfinite(raw) & (raw >= 0) & (raw < MAX_CREATIVES)
    return np.where(ok, np.nan_to_num(raw) + 1, 0).astype(np.int64)


def _smoothed(clicks: np.ndarray, shown: np.ndarray, prior: float) -> np.ndarray:
    return (clicks + SMOOTHING * prior) / (shown + SMOOTHING)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


class CtrFeaturizer(Estimator):
    """Turns impression logs (and live requests) into the CTR models' feature table.

    Args:
        text_dims: item-vector components used as features (0: no text features at all).
        profile_dims: components kept for the user text profiles (cosines).
        taste_dims: size of the learned title embedding for the users' taste (0: no taste features;
            taste needs text features and catalog titles).
        taste_ridge: ridge penalty of each user's taste to date (chosen on the CTR bench's validation).
    """

    def __init__(
        self, text_dims: int = 16, profile_dims: int = 32, taste_dims: int = 16, taste_ridge: float = 3.0
    ) -> None:
        self.text_dims = text_dims
        self.profile_dims = profile_dims
        self.taste_dims = taste_dims
        self.taste_ridge = taste_ridge

    @property
    def uses_text(self) -> bool:
        return self.text_dims > 0

    @property
    def uses_taste(self) -> bool:
        return getattr(self, "item_taste_", np.zeros((0, 0, 0))).size > 0

    # -- fitting -----------------------------------------------------------------------
    def fit(
        self,
        impressions: pd.DataFrame,
        events: pd.DataFrame | None,
        items: pd.DataFrame,
        item_vectors: np.ndarray | None = None,
    ) -> Self:
        """Learn the catalog codes, the text projection and every user's and item's state at the end of the log.

        Args:
            impressions: ``request_id, position, user_id, item_id, ts_ms, scene, clicked``.
            events: ``user_id, item_id, event_type, ts_ms`` (or None).
            items: the catalog: ``item_id, category, brand, price, language``.
            item_vectors: one LM vector per catalog row (required when ``text_dims`` > 0).
        """
        if self.uses_text and (item_vectors is None or len(item_vectors) != len(items)):
            raise InputError("text features need one item vector per catalog row")
        if impressions.empty:
            raise InputError("no impressions to learn from: ingest an impressions file first")
        self._item_lookup = self._user_lookup = None
        self.item_ids_ = items["item_id"].astype(str).to_numpy()
        self.categories_ = sorted(items["category"].fillna("").astype(str).unique())
        self.brands_ = sorted(items["brand"].fillna("").astype(str).unique())
        self.languages_ = sorted(items["language"].fillna("").astype(str).unique())
        cat = _codes(items["category"].fillna(""), self.categories_)
        price = pd.to_numeric(items["price"], errors="coerce").to_numpy(dtype=np.float64)
        # Price band = tercile of the price within the category (0: unknown price).
        pct = pd.Series(price).groupby(cat).rank(pct=True).to_numpy()
        band = np.where(np.isfinite(price), np.minimum((pct * 3 - 1e-9).astype(np.int64), 2) + 1, 0)
        self.item_static_ = np.column_stack(
            [
                cat,
                _codes(items["brand"].fillna(""), self.brands_),
                band,
                _codes(items["language"].fillna(""), self.languages_),
                np.log1p(np.nan_to_num(price, nan=0.0)),
            ]
        ).astype(np.float64)
        if self.uses_text:
            from sklearn.decomposition import PCA

            vectors = np.asarray(item_vectors, dtype=np.float64)
            dims = min(self.profile_dims, vectors.shape[1], len(vectors))
            pca = PCA(n_components=dims, random_state=0).fit(vectors)
            self.item_text_ = pca.transform(vectors).astype(np.float32)
        else:
            self.item_text_ = np.zeros((len(items), 0), dtype=np.float32)
        self.global_ctr_ = float(impressions["clicked"].astype(bool).mean())
        # End-of-log state, for serving: everything in the log counts.
        self.user_ids_ = np.unique(
            np.r_[
                impressions["user_id"].astype(str).to_numpy(), [] if events is None else events["user_id"].astype(str)
            ]
        )
        end = np.int64(np.iinfo(np.int64).max // 4)
        n_users, n_cats = len(self.user_ids_), len(self.categories_) + 1
        users = np.repeat(self.user_ids_, n_cats)
        cats = np.tile(np.arange(n_cats), n_users)
        state = self._raw(impressions, events, users, cats, np.full(len(users), end))
        self.user_state_ = np.column_stack([state[k] for k in _USER_CAT_STATE]).astype(np.float32)
        self.user_profiles_ = (
            state["profiles"].reshape(n_users, n_cats, -1)[:, 0, :].astype(np.float32)
            if self.uses_text
            else np.zeros((n_users, 0), dtype=np.float32)
        )
        item_state = self._item_raw(
            impressions, events, np.arange(len(self.item_ids_)), np.full(len(self.item_ids_), end)
        )
        self.item_state_ = np.column_stack([item_state[k] for k in _ITEM_STATE]).astype(np.float64)
        self._fit_taste(impressions, items)
        return self

    def _fit_taste(self, impressions: pd.DataFrame, items: pd.DataFrame) -> None:
        """The cross-fitted title embeddings (one per user half), position CTRs and end-of-log tastes."""
        dims = self.taste_dims if self.uses_text and "title" in items.columns else 0
        self.item_taste_ = np.zeros((2, len(self.item_ids_), dims), dtype=np.float32)
        self.position_ctr_ = np.full(MAX_POSITION + 1, self.global_ctr_)
        self.user_taste_ = np.zeros((len(self.user_ids_), dims), dtype=np.float32)
        if dims == 0:
            return
        rows = self._item_index(impressions["item_id"].to_numpy())
        known = rows >= 0
        user_ids = impressions["user_id"].astype(str).to_numpy()
        position = np.minimum(impressions["position"].to_numpy(dtype=np.int64), MAX_POSITION)
        clicked = impressions["clicked"].to_numpy(dtype=np.float64)
        by_position = pd.Series(clicked).groupby(position).mean()
        self.position_ctr_[by_position.index.to_numpy()] = by_position.to_numpy()
        titles = ctr_taste.title_matrix(items["title"].fillna("").astype(str).tolist())
        folds = ctr_taste.user_folds(user_ids)
        for fold in (0, 1):
            mask = known & (folds == fold)
            if mask.sum() == 0:
                continue
            codes = np.unique(user_ids[mask], return_inverse=True)[1]
            self.item_taste_[fold] = ctr_taste.fit_title_embedding(
                titles, rows[mask], codes, position[mask], clicked[mask], dims=dims
            )
        # End-of-log taste of every user: one query row per user after the whole log.
        end = np.int64(np.iinfo(np.int64).max // 4)
        queries = pd.DataFrame({"user_id": self.user_ids_, "item_id": "", "ts_ms": end, "position": 0, "clicked": 0})
        log = pd.concat([impressions[list(queries.columns)], queries], ignore_index=True)
        _, taste = self._taste_to_date(log)
        self.user_taste_ = taste[len(impressions) :].astype(np.float32)

    def _taste_to_date(self, impressions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(item title embedding, user taste to date) of each impression: the other user half's embedding."""
        user_ids = impressions["user_id"].astype(str).to_numpy()
        rows = self._item_index(impressions["item_id"].to_numpy())
        z = self.item_taste_[1 - ctr_taste.user_folds(user_ids), np.maximum(rows, 0)] * (rows >= 0)[:, None]
        position = np.minimum(impressions["position"].to_numpy(dtype=np.int64), MAX_POSITION)
        residual = impressions["clicked"].to_numpy(dtype=np.float64) - self.position_ctr_[position]
        ts = impressions["ts_ms"].to_numpy(dtype=np.int64)
        _, taste = ctr_taste.taste_to_date(user_ids, ts, z, residual, self.taste_ridge)
        return z, taste

    # -- features --------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        """Columns of the feature table, categorical first."""
        text = [f"emb_{i}" for i in range(min(self.text_dims, self.item_text_.shape[1]))] if self.uses_text else []
        taste = TASTE if self.uses_taste else ()
        return [*CATEGORICAL, *BASE_NUMERIC, *(TEXT_COSINES if self.uses_text else ()), *taste, *text]

    @property
    def cardinalities(self) -> dict[str, int]:
        """Number of codes of each categorical column (code 0 = unknown)."""
        self.check_fitted()
        return {
            "category": len(self.categories_) + 1,
            "brand": len(self.brands_) + 1,
            "price_band": 4,
            "language": len(self.languages_) + 1,
            "scene": len(_SCENES) + 1,
            "position": MAX_POSITION + 1,
            "hour": 24,
            "creative": MAX_CREATIVES + 1,
        }

    def _item_index(self, item_ids: np.ndarray) -> np.ndarray:
        if getattr(self, "_item_lookup", None) is None:
            self._item_lookup = pd.Index(self.item_ids_)
        return self._item_lookup.get_indexer(np.asarray(item_ids, dtype=str))

    def item_rows(self, item_ids: Sequence[str]) -> np.ndarray:
        """Catalog row of each item id; -1 for items the featurizer does not know."""
        self.check_fitted()
        return self._item_index(np.asarray(item_ids, dtype=str))

    def _user_index(self, user_ids: np.ndarray) -> np.ndarray:
        if getattr(self, "_user_lookup", None) is None:
            self._user_lookup = pd.Index(self.user_ids_)
        return self._user_lookup.get_indexer(np.asarray(user_ids, dtype=str))

    def _raw(
        self,
        impressions: pd.DataFrame,
        events: pd.DataFrame | None,
        users: np.ndarray,
        cats: np.ndarray,
        ts: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """User-side sums before ``ts`` for (user id, category code) queries."""
        n_cats = len(self.categories_) + 1
        imp_user_ids = impressions["user_id"].astype(str).to_numpy()
        ev_user_ids = np.zeros(0, dtype=str) if events is None else events["user_id"].astype(str).to_numpy()
        vocabulary = np.unique(np.r_[imp_user_ids, ev_user_ids, np.asarray(users, dtype=str)])
        imp_users = np.searchsorted(vocabulary, imp_user_ids)
        q_users = np.searchsorted(vocabulary, np.asarray(users, dtype=str))
        imp_items = self._item_index(impressions["item_id"].to_numpy())
        imp_cats = np.where(imp_items >= 0, self.item_static_[np.maximum(imp_items, 0), 0], 0).astype(np.int64)
        imp_ts = impressions["ts_ms"].to_numpy(dtype=np.int64)
        clicked = impressions["clicked"].to_numpy(dtype=np.float64)
        ones = np.ones(len(impressions))
        out: dict[str, np.ndarray] = {}
        both = np.column_stack([ones, clicked])
        sums = _sums_before(imp_users, imp_ts, both, q_users, ts)
        out["user_impressions"], out["user_clicks"] = sums[:, 0], sums[:, 1]
        sums = _sums_before(imp_users * n_cats + imp_cats, imp_ts, both, q_users * n_cats + cats, ts)
        out["user_cat_impressions"], out["user_cat_clicks"] = sums[:, 0], sums[:, 1]
        if events is not None and len(events):
            ev_users = np.searchsorted(vocabulary, ev_user_ids)
            ev_items = self._item_index(events["item_id"].fillna("").to_numpy())
            ev_cats = np.where(ev_items >= 0, self.item_static_[np.maximum(ev_items, 0), 0], 0).astype(np.int64)
            ev_ts = events["ts_ms"].to_numpy(dtype=np.int64)
            ev_ones = np.ones(len(events))
            out["user_events"] = _sums_before(ev_users, ev_ts, ev_ones, q_users, ts)
            out["user_cat_events"] = _sums_before(
                ev_users * n_cats + ev_cats, ev_ts, ev_ones, q_users * n_cats + cats, ts
            )
        else:
            out["user_events"] = out["user_cat_events"] = np.zeros(len(users))
        if self.uses_text:
            text = self.item_text_[np.maximum(imp_items, 0)] * (imp_items >= 0)[:, None]
            stacked = np.hstack(
                [text * clicked[:, None], text * (1 - clicked)[:, None], np.column_stack([1 - clicked])]
            )
            prof = _sums_before(imp_users, imp_ts, stacked, q_users, ts)
            d = text.shape[1]
            if events is not None and len(events):
                ev_text = self.item_text_[np.maximum(ev_items, 0)] * (ev_items >= 0)[:, None]
                ev_prof = _sums_before(ev_users, ev_ts, ev_text, q_users, ts)
            else:
                ev_prof = np.zeros((len(users), d))
            out["profiles"] = np.hstack([prof[:, : 2 * d], ev_prof])
        return out

    def _item_raw(
        self,
        impressions: pd.DataFrame,
        events: pd.DataFrame | None,
        rows: np.ndarray,
        ts: np.ndarray,
        creatives: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Item-side sums before ``ts`` for catalog rows (-1: unknown item, all zero)."""
        imp_items = self._item_index(impressions["item_id"].to_numpy())
        imp_ts = impressions["ts_ms"].to_numpy(dtype=np.int64)
        both = np.column_stack([np.ones(len(impressions)), impressions["clicked"].to_numpy(dtype=np.float64)])
        sums = _sums_before(imp_items, imp_ts, both, np.maximum(rows, 0), ts)
        out = {"item_impressions": sums[:, 0], "item_clicks": sums[:, 1]}
        if creatives is not None:
            # The same item with the same ad-copy variant, to date (code 0: variant unknown).
            logged = _creative_codes(impressions)
            key = lambda r, c: r.astype(np.int64) * (MAX_CREATIVES + 1) + c  # noqa: E731
            sums = _sums_before(key(imp_items, logged), imp_ts, both, key(np.maximum(rows, 0), creatives), ts)
            out["item_creative_impressions"], out["item_creative_clicks"] = sums[:, 0], sums[:, 1]
        if events is not None and len(events):
            ev_items = self._item_index(events["item_id"].fillna("").to_numpy())
            ev = np.column_stack(
                [np.ones(len(events)), (events["event_type"] == "purchase").to_numpy(dtype=np.float64)]
            )
            sums = _sums_before(ev_items, events["ts_ms"].to_numpy(dtype=np.int64), ev, np.maximum(rows, 0), ts)
            out["item_events"], out["item_purchases"] = sums[:, 0], sums[:, 1]
        else:
            out["item_events"] = out["item_purchases"] = np.zeros(len(rows))
        for key in out:
            out[key][rows < 0] = 0.0
        return out

    def _assemble(
        self,
        rows: np.ndarray,
        scene: np.ndarray,
        position: np.ndarray,
        hour: np.ndarray,
        user: dict[str, np.ndarray],
        item: dict[str, np.ndarray],
        profiles: np.ndarray | None,
        creative: np.ndarray,
        taste: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        static = self.item_static_[np.maximum(rows, 0)] * (rows >= 0)[:, None]
        g = self.global_ctr_
        cols: dict[str, np.ndarray] = {
            "category": static[:, 0],
            "brand": static[:, 1],
            "price_band": static[:, 2],
            "language": static[:, 3],
            "scene": scene.astype(np.float64),
            "position": np.minimum(position, MAX_POSITION).astype(np.float64),
            "hour": hour.astype(np.float64),
            "log_price": static[:, 4],
            "user_events": np.log1p(user["user_events"]),
            "user_cat_events": np.log1p(user["user_cat_events"]),
            "user_cat_share": (user["user_cat_events"] + 1.0) / (user["user_events"] + len(self.categories_)),
            "user_impressions": np.log1p(user["user_impressions"]),
            "user_clicks": np.log1p(user["user_clicks"]),
            "user_ctr": _smoothed(user["user_clicks"], user["user_impressions"], g),
            "user_cat_impressions": np.log1p(user["user_cat_impressions"]),
            "user_cat_clicks": np.log1p(user["user_cat_clicks"]),
            "user_cat_ctr": _smoothed(user["user_cat_clicks"], user["user_cat_impressions"], g),
            "item_events": np.log1p(item["item_events"]),
            "item_purchases": np.log1p(item["item_purchases"]),
            "item_impressions": np.log1p(item["item_impressions"]),
            "item_clicks": np.log1p(item["item_clicks"]),
            "item_ctr": _smoothed(item["item_clicks"], item["item_impressions"], g),
            "creative": creative.astype(np.float64),
        }
        item_ctr = cols["item_ctr"]
        if "item_creative_clicks" in item:
            cols["item_creative_ctr"] = (item["item_creative_clicks"] + SMOOTHING * item_ctr) / (
                item["item_creative_impressions"] + SMOOTHING
            )
        else:
            cols["item_creative_ctr"] = item_ctr
        if self.uses_text and profiles is not None:
            d = self.item_text_.shape[1]
            text = self.item_text_[np.maximum(rows, 0)].astype(np.float64) * (rows >= 0)[:, None]
            unit = _unit(text)
            clicked, skipped, seen = profiles[:, :d], profiles[:, d : 2 * d], profiles[:, 2 * d :]
            n_clicks = np.maximum(user["user_clicks"], 1.0)[:, None]
            n_skips = np.maximum(user["user_impressions"] - user["user_clicks"], 1.0)[:, None]
            cols["text_click_cos"] = np.einsum("ij,ij->i", _unit(clicked), unit)
            cols["text_skip_cos"] = np.einsum("ij,ij->i", _unit(skipped), unit)
            cols["text_event_cos"] = np.einsum("ij,ij->i", _unit(seen), unit)
            cols["text_pref"] = np.einsum("ij,ij->i", clicked / n_clicks - skipped / n_skips, unit)
            for i in range(min(self.text_dims, d)):
                cols[f"emb_{i}"] = text[:, i]
        if self.uses_taste and taste is not None:
            z, w = taste
            cols["text_taste"] = np.einsum("ij,ij->i", w, z)
            cols["text_taste_cos"] = np.einsum("ij,ij->i", _unit(w), _unit(z))
        return np.column_stack([cols[name] for name in self.feature_names])

    def log_features(self, impressions: pd.DataFrame, events: pd.DataFrame | None) -> pd.DataFrame:
        """The feature table of logged impressions, each from what was known before it (no leakage).

        Args:
            impressions: the log to describe (and learn the to-date state from), any order.
            events: behaviour events (``user_id, item_id, event_type, ts_ms``), or None.

        Returns:
            One row per impression, in the input's order, columns :attr:`feature_names`.
        """
        self.check_fitted()
        rows = self._item_index(impressions["item_id"].to_numpy())
        users = impressions["user_id"].astype(str).to_numpy()
        cats = np.where(rows >= 0, self.item_static_[np.maximum(rows, 0), 0], 0).astype(np.int64)
        ts = impressions["ts_ms"].to_numpy(dtype=np.int64)
        user = self._raw(impressions, events, users, cats, ts)
        creatives = _creative_codes(impressions)
        item = self._item_raw(impressions, events, rows, ts, creatives)
        hour = (ts // 3_600_000) % 24
        scene = _codes(impressions["scene"].fillna(""), _SCENES)
        position = impressions["position"].to_numpy(dtype=np.int64)
        taste = self._taste_to_date(impressions) if self.uses_taste else None
        matrix = self._assemble(rows, scene, position, hour, user, item, user.get("profiles"), creatives, taste)
        return pd.DataFrame(matrix, columns=self.feature_names, index=impressions.index)

    def request_features(
        self,
        user_id: str,
        item_ids: Sequence[str],
        *,
        scene: str = "home",
        positions: Sequence[int] | None = None,
        hour: int = 12,
    ) -> np.ndarray:
        """Features of one live request from the end-of-log state: the serving path (arrays only).

        Returns a matrix (rows: candidates, columns: :attr:`feature_names`), not a DataFrame: building
        one would cost more than the model. The ad-copy variant is unknown here (code 0).

        Args:
            user_id: the (pseudonymous) user; unknown users get the features of a new user.
            item_ids: the candidates; unknown items get the features of an unseen item.
            scene: home, search, item_detail (others: unknown).
            positions: the slot of each candidate (default 0, 1, 2, ...).
            hour: hour of day (UTC).
        """
        self.check_fitted()
        n = len(item_ids)
        rows = self._item_index(np.asarray(item_ids, dtype=str))
        u = int(self._user_index(np.array([user_id]))[0])
        cats = np.where(rows >= 0, self.item_static_[np.maximum(rows, 0), 0], 0).astype(np.int64)
        n_cats = len(self.categories_) + 1
        if u >= 0:
            state = self.user_state_[u * n_cats + cats].astype(np.float64)
            profile = np.repeat(self.user_profiles_[u : u + 1].astype(np.float64), n, axis=0)
        else:
            state = np.zeros((n, len(_USER_CAT_STATE)))
            profile = np.zeros((n, self.user_profiles_.shape[1]))
        user = {k: state[:, j] for j, k in enumerate(_USER_CAT_STATE)}
        item_state = self.item_state_[np.maximum(rows, 0)] * (rows >= 0)[:, None]
        item = {k: item_state[:, j] for j, k in enumerate(_ITEM_STATE)}
        pos = np.arange(n) if positions is None else np.asarray(positions, dtype=np.int64)
        scene_code = np.full(n, _SCENES.index(scene) + 1 if scene in _SCENES else 0)
        taste = None
        if self.uses_taste:
            fold = int(ctr_taste.user_folds(np.array([user_id]))[0])  # the other half's embedding
            z = self.item_taste_[1 - fold, np.maximum(rows, 0)] * (rows >= 0)[:, None]
            w = self.user_taste_[u] if u >= 0 else np.zeros(z.shape[1], dtype=np.float32)
            taste = (z, np.broadcast_to(w, z.shape))
        return self._assemble(rows, scene_code, pos, np.full(n, hour), user, item, profile, np.zeros(n), taste)

    # -- persistence ---------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {
            "item_ids": self.item_ids_,
            "user_ids": self.user_ids_,
            "item_static": self.item_static_,
            "item_text": self.item_text_,
            "user_state": self.user_state_,
            "user_profiles": self.user_profiles_,
            "item_state": self.item_state_,
            "item_taste": self.item_taste_,
            "user_taste": self.user_taste_,
            "position_ctr": self.position_ctr_,
        }
        state = {
            "categories": self.categories_,
            "brands": self.brands_,
            "languages": self.languages_,
            "global_ctr": self.global_ctr_,
        }
        return {k: v for k, v in arrays.items() if v.size}, state

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self._item_lookup = self._user_lookup = None
        self.item_ids_ = arrays["item_ids"].astype(str)
        self.user_ids_ = arrays["user_ids"].astype(str)
        self.item_static_ = arrays["item_static"]
        self.item_text_ = arrays.get("item_text", np.zeros((len(self.item_ids_), 0), dtype=np.float32))
        self.user_state_ = arrays["user_state"]
        self.user_profiles_ = arrays.get("user_profiles", np.zeros((len(self.user_ids_), 0), dtype=np.float32))
        self.item_state_ = arrays["item_state"]
        self.item_taste_ = arrays.get("item_taste", np.zeros((2, len(self.item_ids_), 0), dtype=np.float32))
        self.user_taste_ = arrays.get("user_taste", np.zeros((len(self.user_ids_), 0), dtype=np.float32))
        self.position_ctr_ = arrays.get("position_ctr", np.full(MAX_POSITION + 1, float(state["global_ctr"])))
        self.categories_ = list(state["categories"])
        self.brands_ = list(state["brands"])
        self.languages_ = list(state["languages"])
        self.global_ctr_ = float(state["global_ctr"])


_USER_CAT_STATE = (
    "user_events",
    "user_cat_events",
    "user_impressions",
    "user_clicks",
    "user_cat_impressions",
    "user_cat_clicks",
)
_ITEM_STATE = ("item_events", "item_purchases", "item_impressions", "item_clicks")
