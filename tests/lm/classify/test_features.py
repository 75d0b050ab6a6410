"""Character n-gram TF-IDF: pinyin n-grams make pinyin-typed and character-typed Chinese meet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from shoplm.lm.classify import TextClassifier
from shoplm.lm.classify.features import CharNgramTfidf, pinyin_of
from tests.assistant.synthetic import TRAIN_LABELS, TRAIN_TEXTS


def test_pinyin_of_reads_only_the_chinese_characters() -> None:
    assert pinyin_of("我要退货 O0001234 please") == "wo yao tui huo"
    assert pinyin_of("退货? 还是退款") == "tui huo hai shi tui kuan"
    assert pinyin_of("refund please 🙏") == ""


def _cosine(tfidf: CharNgramTfidf, a: str, b: str) -> float:
    x = tfidf.transform([a, b])
    return float(x[0].multiply(x[1]).sum())


def test_pinyin_typed_message_shares_ngrams_with_its_characters() -> None:
    corpus = ["我要退货", "退货怎么弄", "我要退款", "快递到哪了", "tui huo", "kuai di"]
    plain = CharNgramTfidf(max_n=3, min_df=1).fit(corpus)
    spoken = CharNgramTfidf(max_n=3, min_df=1, pinyin=True).fit(corpus)
    # Without pinyin, "tui huo" and 退货 share only the padding space; with it, whole syllables.
    assert _cosine(spoken, "tui huo", "我要退货") > _cosine(plain, "tui huo", "我要退货") + 0.2
    # ... and more with the right characters than with the wrong ones.
    assert _cosine(spoken, "tui huo", "我要退货") > _cosine(spoken, "tui huo", "快递到哪了")


def test_models_saved_before_pinyin_ngrams_load_without_them(tmp_path: Path, embedding_cache: Path) -> None:
    clf = TextClassifier(ngram_features=500, ngram_pinyin=False, calibration_folds=2, max_iter=50)
    clf.use(embedding_cache, threads=1).fit(TRAIN_TEXTS, TRAIN_LABELS)
    path = clf.save(tmp_path / "old")
    meta_path = next(p for p in path.iterdir() if p.suffix == ".json")
    meta = json.loads(meta_path.read_text())
    # What an older shoplm wrote: no flag in the params or the state.
    meta["params"].pop("ngram_pinyin")
    meta["state"].pop("ngram_pinyin")
    meta_path.write_text(json.dumps(meta))
    loaded = TextClassifier.load(path).use(embedding_cache, threads=1)
    assert loaded.ngram_pinyin is False
    np.testing.assert_allclose(loaded.predict_proba(TRAIN_TEXTS), clf.predict_proba(TRAIN_TEXTS), atol=1e-6)
