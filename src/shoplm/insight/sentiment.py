"""Review sentiment, Chinese and English: polarity, P(positive) and a 1-5 star rating estimate per review.

:class:`ReviewSentiment` is a thin layer over the shared text classifier
(:class:`shoplm.lm.classify.TextClassifier`: frozen multilingual-e5-small embeddings plus character
n-grams, one calibrated logistic-regression head) trained on positive/negative reviews. On top of
the classifier's calibrated ``p_positive`` it adds:

- a **rating estimate**: the expected star rating given ``p_positive``. Without rated reviews it is
  the straight line ``1 + 4 * p_positive``. Given reviews *with* star ratings at fit time
  (``rated_texts``, ``ratings``), it is an isotonic (monotone non-decreasing) regression of the
  stars on their ``p_positive``, clipped to 1..5: the mean rating of reviews that scored like
  this one. The classifier never sees the ratings;
- a **polarity** read off the rating estimate: ``negative`` under ``neutral_low`` (2.5 stars),
  ``positive`` from ``neutral_high`` (3.5 stars) on, ``neutral`` between (a review that mixes
  praise and complaints, or says little, lands there);
- **defined results for bad input** (:func:`prepare_review`), never an exception:

  ======================  =====================================================================
  input                   result
  ======================  =====================================================================
  empty / whitespace      ``skipped="empty"``, no polarity
  not Chinese or English  ``skipped="unsupported_language"`` (Japanese kana, Hangul, Cyrillic,
                          Arabic ..., or Latin text whose function words are French, German,
                          Spanish, Italian, Portuguese or Dutch rather than English)
  HTML                    tags removed, entities decoded, then scored (``html_stripped=True``);
                          a text that is only markup is ``"empty"``
  emoji                   kept and scored with the text (the encoder knows them); a text of only
                          emoji, digits or punctuation is scored too (``language=None``)
  longer than max_chars   cut to the first ``max_chars`` characters (default 1,000: the opening
                          of a review carries its verdict, and encoding cost grows with length),
                          then scored (``truncated=True``)
  ======================  =====================================================================

Example:
    >>> model = ReviewSentiment(ngram_features=0).fit(
    ...     ["very good", "质量很好", "terrible", "太差了"], [1, 1, 0, 0])
    >>> model.predict(["   "])[0].skipped
    'empty'
    >>> model.predict(["Très bon produit, je recommande"])[0].skipped
    'unsupported_language'
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from shoplm.errors import InputError
from shoplm.estimator import Estimator

if TYPE_CHECKING:
    from shoplm.config import Settings
    from shoplm.lm import TextEncoder
    from shoplm.lm.classify import TextClassifier

__all__ = [
    "MAX_CHARS",
    "POLARITIES",
    "PreparedReview",
    "ReviewSentiment",
    "SentimentResult",
    "default_sentiment_path",
    "detect_language",
    "load_default_sentiment",
    "prepare_review",
]

POLARITIES = ("positive", "neutral", "negative")
#: default cut of a review's text, in characters (see the module docstring)
MAX_CHARS = 1000
SKIP_EMPTY = "empty"
SKIP_LANGUAGE = "unsupported_language"

_TAG = re.compile(r"<\s*/?\s*[A-Za-z][^<>]*>|<!--.*?-->|<!DOCTYPE[^>]*>", re.DOTALL | re.IGNORECASE)
_WORD = re.compile(r"[a-zà-ÿ']+")
# Function words that tell English from the other Latin-script languages shoppers write reviews in.
# Words that are also English ("a", "in", "die", "de" in names ...) are left out of the others.
_ENGLISH = frozenset({
    "the", "and", "is", "it", "this", "was", "are", "not", "but", "very", "with", "for", "of", "to", "my",
    "you", "i", "they", "have", "has", "had", "would", "too", "so", "good", "great", "bad", "love", "works",
    "product", "quality", "price", "will", "be",
})  # fmt: skip
_OTHER_LATIN = frozenset({
    # French
    "le", "la", "les", "des", "est", "et", "très", "pas", "une", "un", "pour", "avec", "ce", "cette", "je",
    "il", "elle", "sont", "du", "au", "bien",
    # German
    "der", "das", "und", "ist", "nicht", "sehr", "mit", "ein", "eine", "ich", "es", "für", "auf", "gut",
    "zu", "den", "dem", "sie", "wir",
    # Spanish, Portuguese, Italian
    "el", "los", "las", "muy", "pero", "con", "para", "una", "por", "que", "lo", "del", "bueno", "buena",
    "producto", "calidad", "não", "muito", "bom", "um", "uma", "com", "é", "della", "che", "è", "molto",
    "non", "sono", "gli", "questo",
    # Dutch
    "het", "een", "niet", "zeer", "goed", "en", "ik", "van",
}) - _ENGLISH  # fmt: skip


class _TextOnly(HTMLParser):
    """Collects the text of an HTML fragment, leaving out scripts and styles."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("br", "p", "div", "li", "tr"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def detect_language(text: str) -> str | None:
    """``"zh"``, ``"en"``, ``"other"``, or None when the text has no letters (emoji, digits, punctuation).

    Counts scripts: any Han character (when Han outweighs Latin letters a third) is Chinese unless
    Japanese kana or Hangul are mixed in; mostly-ASCII Latin text is English unless its function
    words are those of another European language. Cheap (one pass over the characters), and
    deliberately conservative: "other" only when the evidence says so.

    Example:
        >>> detect_language("iPhone很好用"), detect_language("works great"), detect_language("とても良い")
        ('zh', 'en', 'other')
        >>> detect_language("Sehr gut, danke"), detect_language("👍👍 100%")
        ('other', None)
    """
    han = kana = hangul = ascii_letters = other = 0
    for char in text:
        code = ord(char)
        if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF:
            han += 1
        elif 0x3040 <= code <= 0x30FF:
            kana += 1
        elif 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F:
            hangul += 1
        elif char.isascii() and char.isalpha():
            ascii_letters += 1
        elif char.isalpha():
            other += 1
    letters = han + kana + hangul + ascii_letters + other
    if letters == 0:
        return None
    if kana or hangul:
        # Japanese writes Han with kana; Korean may mix in Han (hanja). A stray symbol is not enough.
        return "other" if (kana + hangul) >= max(2, 0.1 * (han + kana + hangul)) else ("zh" if han else "other")
    if han and 3 * han >= ascii_letters:  # a Chinese character carries about a word; a word ~ 5 letters
        return "zh"
    if ascii_letters + other and ascii_letters >= 0.8 * (ascii_letters + other + han):
        words = _WORD.findall(text.lower())
        english = sum(w in _ENGLISH for w in words)
        foreign = sum(w in _OTHER_LATIN for w in words)
        return "other" if foreign >= 2 and foreign > english else "en"
    return "other"


@dataclass(frozen=True)
class PreparedReview:
    """A review text made ready for scoring (see :func:`prepare_review`)."""

    text: str
    language: str | None
    skipped: str | None
    truncated: bool
    html_stripped: bool


def prepare_review(text: object, max_chars: int = MAX_CHARS) -> PreparedReview:
    """Strip HTML, cut to ``max_chars``, detect the language and say whether the review is scored.

    Never raises: None and non-strings count as text (None as empty).

    Example:
        >>> prepare_review("<p>Great <b>value</b> &amp; fast</p>").text
        'Great value & fast'
        >>> prepare_review("好" * 5000).truncated, len(prepare_review("好" * 5000).text)
        (True, 1000)
    """
    raw = "" if text is None or (isinstance(text, float) and text != text) else str(text)
    raw = raw.replace("\x00", " ")
    stripped = False
    if _TAG.search(raw):
        parser = _TextOnly()
        try:
            parser.feed(raw)
            parser.close()
            raw = "".join(parser.parts)
        except Exception:  # malformed markup: fall back to dropping anything tag-shaped
            raw = html.unescape(_TAG.sub(" ", raw))
        raw = re.sub(r"[ \t\r\n]+", " ", raw)
        stripped = True
    elif "&" in raw and ";" in raw:
        raw = html.unescape(raw)
    clean = raw.strip()
    # Invisible format characters (zero-width space, BOM) alone are an empty review too.
    if not clean or all(unicodedata.category(c) in ("Cf", "Zs", "Cc") for c in clean):
        return PreparedReview("", None, SKIP_EMPTY, False, stripped)
    truncated = len(clean) > max_chars
    clean = clean[:max_chars]
    language = detect_language(clean)
    skipped = SKIP_LANGUAGE if language == "other" else None
    return PreparedReview(clean, language, skipped, truncated, stripped)


@dataclass(frozen=True)
class SentimentResult:
    """One review's sentiment.

    ``polarity``, ``p_positive`` and ``rating`` are None when the review was ``skipped``
    (``"empty"`` or ``"unsupported_language"``). ``truncated``: only the first ``max_chars``
    characters were read; ``html_stripped``: markup was removed before scoring.

    Example:
        >>> SentimentResult("positive", 0.97, 4.8, None, "en").to_dict()["rating"]
        4.8
    """

    polarity: str | None
    p_positive: float | None
    rating: float | None
    skipped: str | None = None
    language: str | None = None
    truncated: bool = False
    html_stripped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _binary_labels(labels: Sequence[object]) -> list[int]:
    positive = {"1", "positive", "pos", "true", "yes"}
    negative = {"0", "negative", "neg", "false", "no", "-1"}
    out = []
    for i, label in enumerate(labels):
        key = str(label).strip().lower()
        if key in positive:
            out.append(1)
        elif key in negative:
            out.append(0)
        else:
            raise InputError(f"label {i} is {label!r}: review sentiment learns from 1/0 or positive/negative")
    return out


class ReviewSentiment(Estimator):
    """Reviews -> polarity, calibrated P(positive) and an expected 1-5 rating (see the module docstring).

    Hyperparameters:
        encoder: the sentence encoder of the classifier (``"e5-onnx"``: multilingual-e5-small).
        ngram_features: character n-gram TF-IDF vocabulary size of the classifier (0: embeddings only).
        l2: the head's L2 penalty (None: chosen by 5-fold cross-validation on the training texts).
        max_chars: reviews are cut to this many characters before scoring.
        neutral_low, neutral_high: rating estimates in ``[neutral_low, neutral_high)`` are ``neutral``.
        seed: fold assignment.

    Example:
        >>> model = ReviewSentiment(ngram_features=0).fit(["great", "很好", "awful", "很差"], [1, 1, 0, 0])
        >>> sorted(model.predict(["great, really great"])[0].to_dict())[:3]
        ['html_stripped', 'language', 'p_positive']
    """

    _version_modules = ("scipy", "sklearn")

    def __init__(
        self,
        encoder: str = "e5-onnx",
        ngram_features: int = 50_000,
        l2: float | None = None,
        max_chars: int = MAX_CHARS,
        neutral_low: float = 2.5,
        neutral_high: float = 3.5,
        seed: int = 0,
    ) -> None:
        self.encoder = encoder
        self.ngram_features = ngram_features
        self.l2 = l2
        self.max_chars = max_chars
        self.neutral_low = neutral_low
        self.neutral_high = neutral_high
        self.seed = seed
        self._use: tuple[Any, int | None, TextEncoder | None] = (None, None, None)

    def _new_classifier(self) -> TextClassifier:
        from shoplm.lm.classify import TextClassifier

        # No out-of-domain reference set: reviews are scored whatever they talk about, and the
        # shipped model stays small (the reference would be 768 bytes per training text).
        return TextClassifier(
            encoder=self.encoder,
            ngram_features=self.ngram_features,
            l2=self.l2,
            ood_quantile=0.0,
            max_chars=self.max_chars,
            seed=self.seed,
        )

    def use(
        self,
        cache_dir: str | Path | Settings | None = None,
        *,
        threads: int | None = None,
        encoder: TextEncoder | None = None,
    ) -> Self:
        """Embedding cache, encoder threads or a ready encoder (see :meth:`TextClassifier.use`); returns ``self``.

        Example:
            >>> ReviewSentiment().use("/tmp/shoplm-cache", threads=1).max_chars
            1000
        """
        self._use = (cache_dir, threads, encoder)
        if hasattr(self, "classifier_"):
            self.classifier_.use(cache_dir, threads=threads, encoder=encoder)
        return self

    # -- learning ------------------------------------------------------------------------
    def fit(
        self,
        texts: Sequence[object],
        labels: Sequence[object],
        *,
        rated_texts: Sequence[object] | None = None,
        ratings: Sequence[float] | None = None,
        progress: bool = False,
    ) -> Self:
        """Learn polarity from labelled reviews and, optionally, the rating mapping from rated ones.

        Args:
            texts: review texts (Chinese and/or English).
            labels: 1/0, ``"positive"``/``"negative"`` (or ``pos``/``neg``, true/false) per text.
            rated_texts: reviews with a known star rating (may overlap ``texts``).
            ratings: their ratings, 1..5.
            progress: show the encoder's progress bar.

        Returns:
            ``self``.

        Raises:
            InputError: labels that are not binary, fewer than two classes, or ratings outside 1..5.
        """
        texts, labels = list(texts), list(labels)
        if len(texts) != len(labels):
            raise InputError(f"{len(texts)} texts but {len(labels)} labels")
        prepared = [prepare_review(t, self.max_chars) for t in texts]
        keep = [i for i, p in enumerate(prepared) if p.skipped is None]
        y = _binary_labels([labels[i] for i in keep])
        classifier = self._new_classifier()
        cache_dir, threads, encoder = self._use
        classifier.use(cache_dir, threads=threads, encoder=encoder)
        classifier.fit([prepared[i].text for i in keep], y, progress=progress)
        self.classifier_ = classifier
        self.n_train_ = len(keep)
        self.rating_x_ = np.array([0.0, 1.0], dtype=np.float32)  # the straight line 1 + 4p
        self.rating_y_ = np.array([1.0, 5.0], dtype=np.float32)
        self.n_rated_ = 0
        if rated_texts is not None or ratings is not None:
            self.fit_ratings(rated_texts or [], ratings or [])
        return self

    def fit_ratings(self, texts: Sequence[object], ratings: Sequence[float]) -> Self:
        """Fit the rating estimate on reviews with star ratings (isotonic in ``p_positive``); returns ``self``.

        Reviews that are skipped (empty, other languages) or have no rating are left out; with
        fewer than 10 left the straight line ``1 + 4p`` stays.

        Example:
            >>> model.fit_ratings(["great", "bad", ...], [5, 1, ...])  # doctest: +SKIP
        """
        from sklearn.isotonic import IsotonicRegression

        self.check_fitted()
        texts, ratings = list(texts), list(ratings)
        if len(texts) != len(ratings):
            raise InputError(f"{len(texts)} rated texts but {len(ratings)} ratings")
        values = np.array([np.nan if r is None else float(r) for r in ratings], dtype=np.float64)
        known = ~np.isnan(values)
        if known.any() and (values[known].min() < 1 or values[known].max() > 5):
            raise InputError("ratings must lie in 1..5", field="rating")
        p = self._p_positive([t for t, k in zip(texts, known, strict=True) if k])
        scored = ~np.isnan(p)
        if int(scored.sum()) < 10:
            return self
        iso = IsotonicRegression(y_min=1.0, y_max=5.0, increasing=True, out_of_bounds="clip")
        iso.fit(p[scored], values[known][scored])
        self.rating_x_ = np.asarray(iso.X_thresholds_, dtype=np.float32)
        self.rating_y_ = np.asarray(iso.y_thresholds_, dtype=np.float32)
        self.n_rated_ = int(scored.sum())
        return self

    # -- prediction ----------------------------------------------------------------------
    def _p_positive(self, texts: Sequence[object]) -> np.ndarray:
        """P(positive) per text; NaN for texts that are skipped."""
        prepared = [prepare_review(t, self.max_chars) for t in texts]
        out = np.full(len(prepared), np.nan)
        rows = [i for i, p in enumerate(prepared) if p.skipped is None]
        if rows:
            proba = self.classifier_.predict_proba([prepared[i].text for i in rows])
            column = self.classifier_.labels.index(1)
            out[rows] = proba[:, column]
        return out

    def rating_for(self, p_positive: np.ndarray | float) -> np.ndarray:
        """The expected 1-5 rating of reviews with this ``p_positive`` (the fitted mapping).

        Example:
            >>> float(model.rating_for(0.5))  # without rated reviews: 1 + 4 * 0.5  # doctest: +SKIP
            3.0
        """
        self.check_fitted()
        return np.interp(np.asarray(p_positive, dtype=np.float64), self.rating_x_, self.rating_y_)

    def polarity_for(self, rating: float) -> str:
        """``negative`` under ``neutral_low``, ``positive`` from ``neutral_high``, else ``neutral``."""
        if rating < self.neutral_low:
            return "negative"
        return "positive" if rating >= self.neutral_high else "neutral"

    def predict(self, texts: Sequence[object]) -> list[SentimentResult]:
        """One :class:`SentimentResult` per text, in order; bad input gets a defined result, not an error.

        Args:
            texts: review texts (a list; a single string is refused to avoid scoring its characters).

        Returns:
            The results, ``skipped`` set for empty and unsupported-language texts.

        Example:
            >>> model.predict(["<b>Love it</b> 😍"])[0].html_stripped  # doctest: +SKIP
            True
        """
        self.check_fitted()
        if isinstance(texts, str | bytes):
            raise TypeError("pass a list of texts; wrap a single text in a list: [text]")
        prepared = [prepare_review(t, self.max_chars) for t in texts]
        rows = [i for i, p in enumerate(prepared) if p.skipped is None]
        p_pos = np.full(len(prepared), np.nan)
        if rows:
            proba = self.classifier_.predict_proba([prepared[i].text for i in rows])
            p_pos[rows] = proba[:, self.classifier_.labels.index(1)]
        ratings = self.rating_for(np.nan_to_num(p_pos))
        out = []
        for i, item in enumerate(prepared):
            if item.skipped is not None:
                out.append(
                    SentimentResult(None, None, None, item.skipped, item.language, item.truncated, item.html_stripped)
                )
                continue
            rating = round(float(ratings[i]), 3)
            out.append(
                SentimentResult(
                    self.polarity_for(rating),
                    round(float(p_pos[i]), 4),
                    rating,
                    None,
                    item.language,
                    item.truncated,
                    item.html_stripped,
                )
            )
        return out

    @property
    def model_version(self) -> str:
        """A short id of the fitted state (head, calibration, rating mapping): what stored scores are keyed by.

        Equal for a model and its saved-and-loaded copy; different after any refit that changed it.
        """
        self.check_fitted()
        digest = hashlib.sha256()
        clf = self.classifier_
        for name in sorted(clf.params_):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(clf.params_[name], dtype=np.float32).tobytes())
        digest.update(np.float64(clf.temperature_).tobytes())
        digest.update(self.rating_x_.tobytes() + self.rating_y_.tobytes())
        digest.update(f"{self.max_chars}:{self.neutral_low}:{self.neutral_high}:{clf.encoder_model_id_}".encode())
        return "sentiment-" + digest.hexdigest()[:12]

    # -- persistence ---------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        clf_arrays, clf_state = self.classifier_._get_state()
        arrays = {f"clf.{name}": value for name, value in clf_arrays.items()}
        arrays["rating_x"] = self.rating_x_
        arrays["rating_y"] = self.rating_y_
        state = {"classifier": clf_state, "n_train": self.n_train_, "n_rated": self.n_rated_}
        return arrays, state

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        classifier = self._new_classifier()
        classifier._set_state(
            {name.removeprefix("clf."): v for name, v in arrays.items() if name.startswith("clf.")},
            state["classifier"],
        )
        cache_dir, threads, encoder = self._use
        classifier.use(cache_dir, threads=threads, encoder=encoder)
        self.classifier_ = classifier
        self.rating_x_ = np.asarray(arrays["rating_x"], dtype=np.float32)
        self.rating_y_ = np.asarray(arrays["rating_y"], dtype=np.float32)
        self.n_train_ = int(state["n_train"])
        self.n_rated_ = int(state["n_rated"])


def default_sentiment_path() -> Path:
    """The review-sentiment model shipped in the package (``shoplm/insight/data/sentiment``).

    Trained once by ``benchmarks/sentiment/train_default.py`` (see benchmarks/sentiment/README.md).
    """
    return Path(str(resources.files("shoplm.insight").joinpath("data/sentiment")))


def load_default_sentiment(path: str | Path | None = None) -> ReviewSentiment:
    """The shipped model (or the one at ``path``).

    Raises:
        ModelFileError: the directory holds no saved model.

    Example:
        >>> load_default_sentiment().model_version.startswith("sentiment-")  # doctest: +SKIP
        True
    """
    return ReviewSentiment.load(path or default_sentiment_path())
