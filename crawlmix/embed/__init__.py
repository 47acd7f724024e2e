"""Text embeddings for crawlmix: pure Python (no Dagster), CPU fast path and CUDA path.

Typical use::

    from crawlmix.embed import EmbedderSpec, load_model, embed_texts, embed_parquet_resumable

    model = load_model(EmbedderSpec(device="auto"))        # once per process (cached)
    vectors = embed_texts(model, ["some text", "more"])   # float16 [2, 384], unit rows
    stats = embed_parquet_resumable(model, "shard.parquet", "work/", "shard.npy", "shard.ids.parquet")

Importing this package is cheap (numpy only); torch, transformers and onnxruntime are imported
when a model is loaded.
"""

from crawlmix.embed.chunks import ParquetTextSource, TextSource, embed_parquet_resumable, embed_shard_resumable
from crawlmix.embed.device import DeviceError, cpu_threads, resolve_device
from crawlmix.embed.model import (
    DEFAULT_MODEL,
    EmbedConfigError,
    EmbedderSpec,
    LoadedModel,
    clear_model_cache,
    load_model,
    model_cache_info,
    model_fingerprint,
    model_path,
)
from crawlmix.embed.pipeline import embed_batches, embed_texts, shutdown_workers

__all__ = [
    "DEFAULT_MODEL",
    "DeviceError",
    "EmbedConfigError",
    "EmbedderSpec",
    "LoadedModel",
    "ParquetTextSource",
    "TextSource",
    "clear_model_cache",
    "cpu_threads",
    "embed_batches",
    "embed_parquet_resumable",
    "embed_shard_resumable",
    "embed_texts",
    "load_model",
    "model_cache_info",
    "model_fingerprint",
    "model_path",
    "resolve_device",
    "shutdown_workers",
]
