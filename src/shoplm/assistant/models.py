"""Everything the assistant's dialogue policy reads, loaded once, explicitly, by :meth:`AssistantModels.load`.

The intent and sentiment classifiers (trained by ``shoplm train assistant``), the encoder
shared by both (behind :class:`RecentVectors`, so e5 runs once per message), the text
generator, the policy passages and the product linker over the catalog. Nothing here is
loaded or trained as a side effect of answering: a missing model is a
:class:`~shoplm.errors.ModelFileError` that names the command making it.

Example:
    >>> models = AssistantModels.load(settings, catalog=catalog)   # doctest: +SKIP
    >>> models.classifier.predict(["where is my order"])[0].label  # doctest: +SKIP
    'track_order'
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shoplm.assistant.emotion import NEGATIVE
from shoplm.assistant.entities import EntityExtractor
from shoplm.assistant.retrieval import PolicyIndex
from shoplm.assistant.training import default_model_path, default_sentiment_path
from shoplm.config import Settings
from shoplm.errors import ModelFileError
from shoplm.lm import TextEncoder, TextGenerator, load_encoder, load_generator
from shoplm.lm.encoder import Mode
from shoplm.lm.texts import item_texts

if TYPE_CHECKING:
    from shoplm.lm.classify.classifier import TextClassifier

log = logging.getLogger(__name__)

#: Catalogs up to this size are encoded on load when no item embeddings were written yet.
ENCODE_ON_LOAD_MAX_ITEMS = 5000
#: The catalog columns the assistant answers product questions from.
CATALOG_COLUMNS = ["item_id", "title", "description", "brand", "category", "price", "currency", "stock", "attributes"]


class RecentVectors(TextEncoder):
    """An encoder that remembers the vectors of the last ``size`` texts it was asked for.

    One turn embeds the customer's message for the intent model, the sentiment model, product
    linking and policy retrieval. With this in front of the encoder, e5 runs once per message
    even when the encoder has no on-disk cache, and the later lookups skip SQLite as well.
    Calls of more than ``max_batch`` texts (catalog encoding) pass straight through.

    Example:
        >>> from shoplm.lm import MiniLMEncoder
        >>> enc = RecentVectors(MiniLMEncoder())
        >>> first = enc.encode(["where is my order"], mode="query")
        >>> bool((enc.encode(["where is my order"], mode="query") == first).all())
        True
    """

    def __init__(self, encoder: TextEncoder, *, size: int = 64, max_batch: int = 8) -> None:
        self.inner = encoder
        self.model_id = encoder.model_id
        self.symmetric = encoder.symmetric
        self.batch_size = encoder.batch_size
        self.size = size
        self.max_batch = max_batch
        self._recent: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # one assistant may serve several threads

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(
        self,
        texts: Sequence[str],
        *,
        mode: Mode = "passage",
        batch_size: int | None = None,
        progress: bool = False,
    ) -> np.ndarray:
        texts = list(texts)
        if len(texts) > self.max_batch:
            return self.inner.encode(texts, mode=mode, batch_size=batch_size, progress=progress)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing: list[str] = []
        with self._lock:
            for i, text in enumerate(texts):
                vector = self._recent.get((mode, text))
                if vector is None:
                    if text not in missing:
                        missing.append(text)
                else:
                    self._recent.move_to_end((mode, text))
                    out[i] = vector
        if missing:
            vectors = self.inner.encode(missing, mode=mode, batch_size=batch_size, progress=progress)
            found = dict(zip(missing, vectors, strict=True))
            for i, text in enumerate(texts):
                if text in found:
                    out[i] = found[text]
            with self._lock:
                for text, vector in found.items():
                    self._recent[(mode, text)] = np.array(vector, dtype=np.float32)  # a copy the caller cannot change
                while len(self._recent) > self.size:
                    self._recent.popitem(last=False)
        return out


@dataclass
class AssistantModels:
    """The assistant's loaded parts.

    Attributes:
        encoder: the shared encoder, behind :class:`RecentVectors`.
        classifier: the intent model.
        sentiment: the sentiment model, or None (escalation then uses the anger lexicon alone).
        generator: the text generator that phrases grounded replies.
        policy_index: the shop's policy passages.
        extractor: entities and product links over the catalog.
        catalog: item id -> catalog row (title, price, stock, ...), for product answers.
    """

    encoder: RecentVectors
    classifier: TextClassifier
    sentiment: TextClassifier | None
    generator: TextGenerator
    policy_index: PolicyIndex
    extractor: EntityExtractor
    catalog: dict[str, dict[str, Any]]

    @classmethod
    def load(
        cls,
        settings: Settings,
        *,
        catalog: pd.DataFrame | None = None,
        item_ids: Sequence[str] | np.ndarray | None = None,
        item_vectors: np.ndarray | None = None,
        classifier: TextClassifier | None = None,
        model_path: str | Path | None = None,
        sentiment: TextClassifier | None = None,
        sentiment_path: str | Path | None = None,
        encoder: TextEncoder | None = None,
        generator: TextGenerator | None = None,
        policies_dir: str | Path | None = None,
        policy_index: PolicyIndex | None = None,
        product_threshold: float = 0.86,
    ) -> AssistantModels:
        """Load every part now; parts given ready are used as they are.

        Args:
            settings: where models, caches and policy documents are.
            catalog: the shop's items (columns of :data:`CATALOG_COLUMNS`); None: no products.
            item_ids, item_vectors: the items' text embeddings (``shoplm encode``); without them a
                catalog of up to :data:`ENCODE_ON_LOAD_MAX_ITEMS` items is encoded here.
            classifier, model_path: the intent model, or where it is saved
                (default ``models/assistant/intents``).
            sentiment, sentiment_path: the same for the sentiment model.
            encoder, generator: ready ones (default: from settings).
            policies_dir, policy_index: the policy documents (default ``data_dir/policies``, else the
                demo's ``data_dir/demo-source/policies``), or a ready index.
            product_threshold: the similarity at which a message names a catalog item.

        Returns:
            The loaded parts.

        Raises:
            ModelFileError: a model is not saved where it should be (the message names
                ``shoplm train assistant``).
        """
        from shoplm.lm.classify.classifier import TextClassifier

        base = encoder if encoder is not None else load_encoder(settings)
        vectors = RecentVectors(base)
        if classifier is None:
            classifier = TextClassifier.load(_saved(Path(model_path or default_model_path(settings)), "intent"))
        classifier.use(encoder=vectors)
        if sentiment is None:
            sentiment = TextClassifier.load(
                _saved(Path(sentiment_path or default_sentiment_path(settings)), "sentiment")
            )
        if NEGATIVE not in sentiment.labels:
            # Not a model `shoplm train assistant` made (it always has the class): say so once.
            log.error(
                "the sentiment model has no %r class (labels %s): escalation uses the anger lexicon only; "
                "retrain it with `shoplm train assistant --sentiment FILE --negative-label LABEL`",
                NEGATIVE,
                sentiment.labels,
            )
            sentiment = None
        else:
            sentiment.use(encoder=vectors)
        frame = catalog if catalog is not None else pd.DataFrame(columns=CATALOG_COLUMNS)
        return cls(
            encoder=vectors,
            classifier=classifier,
            sentiment=sentiment,
            generator=generator if generator is not None else load_generator(settings),
            policy_index=policy_index if policy_index is not None else _policy_index(settings, policies_dir, base),
            extractor=_extractor(frame, base, item_ids, item_vectors, product_threshold),
            catalog=_catalog_rows(frame),
        )


def _saved(path: Path, what: str) -> Path:
    if not (path / "meta.json").is_file():
        raise ModelFileError(
            f"no {what} model at {path}: run `shoplm train assistant` (it trains the intent and sentiment "
            "models from the shipped examples in seconds)"
        )
    return path


def _policy_index(settings: Settings, policies_dir: str | Path | None, encoder: TextEncoder) -> PolicyIndex:
    directory = Path(policies_dir) if policies_dir else None
    if directory is None:
        for candidate in (settings.data_dir / "policies", settings.data_dir / "demo-source/policies"):
            if candidate.is_dir():
                directory = candidate
                break
    if directory is None:
        log.warning("no policy documents found: policy questions go to a colleague")
        return PolicyIndex([], encoder)
    return PolicyIndex.from_directory(directory, encoder)


def _extractor(
    catalog: pd.DataFrame,
    encoder: TextEncoder,
    item_ids: Sequence[str] | np.ndarray | None,
    item_vectors: np.ndarray | None,
    threshold: float,
) -> EntityExtractor:
    ids: Sequence[str] | np.ndarray | None = item_ids
    vectors = item_vectors
    if (ids is None or vectors is None) and 0 < len(catalog) <= ENCODE_ON_LOAD_MAX_ITEMS:
        ids = catalog["item_id"].astype(str).tolist()
        vectors = encoder.encode(item_texts(catalog), mode="passage")
    titles = pd.DataFrame({"item_id": catalog["item_id"], "title": catalog["title"]})
    return EntityExtractor.from_catalog(titles, encoder, ids, vectors, threshold=threshold)


def _catalog_rows(catalog: pd.DataFrame) -> dict[str, dict[str, Any]]:
    columns = [c for c in CATALOG_COLUMNS if c in catalog.columns]
    return {str(r["item_id"]): r for r in catalog[columns].to_dict("records")}
