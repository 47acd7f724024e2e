"""Model spec validation, loading once, and the embedding contract (CPU)."""

import os
import random

import numpy as np
import pytest

from crawlmix.embed import (
    DEFAULT_MODEL,
    EmbedConfigError,
    EmbedderSpec,
    embed_batches,
    embed_texts,
    load_model,
    model_cache_info,
    model_fingerprint,
    model_path,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

FAST = EmbedderSpec(device="cpu", cpu_backend="onnx", threads=2)
TORCH = EmbedderSpec(device="cpu", cpu_backend="torch", threads=2)

_WORDS = (
    "the crawl snapshot holds pages about gardening cooking football markets weather code music travel "
    "history science health finance recipes python compilers rivers mountains elections opera tennis"
).split()


def make_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        k = rng.choice([3, 8, 20, 40, 80]) if i % 40 else 300  # a few long enough to truncate
        texts.append(f"doc {i}: " + " ".join(rng.choice(_WORDS) for _ in range(k)))
    return texts


@pytest.fixture(scope="module")
def texts():
    return make_texts(80)


@pytest.fixture(scope="module")
def fast():
    pytest.importorskip("onnxruntime")
    return load_model(FAST)


@pytest.fixture(scope="module")
def reference():
    return load_model(TORCH)


def test_model_path_is_local_only(tmp_path):
    folder = model_path(DEFAULT_MODEL)
    assert os.path.isfile(os.path.join(folder, "tokenizer.json"))
    assert model_path(folder) == folder
    with pytest.raises(EmbedConfigError, match="not an existing local folder"):
        model_path(str(tmp_path / "missing"))
    with pytest.raises(EmbedConfigError, match="unknown bundled model"):
        model_path("bundled:no-such-model")
    with pytest.raises(EmbedConfigError):
        model_path("sentence-transformers/all-MiniLM-L6-v2")  # a hub name is never downloaded


def test_fingerprint_is_stable():
    folder = model_path(DEFAULT_MODEL)
    first = model_fingerprint(folder)
    assert len(first) == 64 and first == model_fingerprint(folder)


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_half_dtypes_are_cuda_only(dtype):
    with pytest.raises(EmbedConfigError, match="only supported on CUDA"):
        load_model(EmbedderSpec(device="cpu", dtype=dtype))


@pytest.mark.parametrize(
    "spec",
    [EmbedderSpec(device="cpu", dtype="int4"), EmbedderSpec(device="cpu", cpu_backend="tensorrt"),
     EmbedderSpec(device="cpu", batch_size=0), EmbedderSpec(device="cpu", max_tokens=4)],
)
def test_bad_settings(spec):
    with pytest.raises(EmbedConfigError):
        load_model(spec)


def test_loaded_once_per_spec(fast):
    before = model_cache_info()
    again = load_model(EmbedderSpec(device="cpu", cpu_backend="onnx", threads=2))
    after = model_cache_info()
    assert again is fast
    assert after["loads"] == before["loads"] and after["hits"] == before["hits"] + 1
    assert fast.dim == 384 and fast.dtype == "fp32" and fast.backend == "onnx-int8"
    versions = fast.versions()
    assert versions["weights_hash"] == model_fingerprint(model_path(DEFAULT_MODEL))
    assert versions["model_id"] == "sentence-transformers/all-MiniLM-L6-v2"


@pytest.mark.parametrize("which", ["fast", "reference"])
def test_unit_norm_float16_in_order(request, texts, which):
    model = request.getfixturevalue(which)
    vectors = embed_texts(model, texts)
    assert vectors.dtype == np.float16 and vectors.shape == (len(texts), 384)
    norms = np.linalg.norm(vectors.astype(np.float32), axis=1)
    assert np.allclose(norms, 1.0, atol=2e-3)
    # bucketing reorders batches, never the output: each row equals that text embedded alone
    alone = np.concatenate([embed_texts(model, [t]) for t in texts[:24]]).astype(np.float32)
    cos = (alone * vectors[:24].astype(np.float32)).sum(1)
    # (int8: the QKV projection's activation scale is per batch, so batch mates move a vector a little)
    assert cos.min() > (0.9999 if which == "reference" else 0.98)
    assert cos.mean() > (0.9999 if which == "reference" else 0.99)
    sims = alone @ vectors[:24].astype(np.float32).T
    assert (sims.argmax(axis=1) == np.arange(24)).all()


def test_fast_path_matches_torch_path(fast, reference, texts):
    a = embed_texts(fast, texts).astype(np.float32)
    b = embed_texts(reference, texts).astype(np.float32)
    cos = (a * b).sum(1)
    assert cos.mean() >= 0.99, cos.mean()
    assert cos.min() >= 0.97


@pytest.mark.parametrize("which", ["fast", "reference"])
def test_cpu_results_are_bit_identical_run_to_run(request, texts, which):
    model = request.getfixturevalue(which)
    assert embed_texts(model, texts).tobytes() == embed_texts(model, texts).tobytes()


def test_empty_input(fast):
    assert embed_texts(fast, []).shape == (0, 384)
    assert [v.shape for v in embed_batches(fast, [[], ["x"], []])] == [(0, 384), (1, 384), (0, 384)]


def test_streaming_and_worker_processes_give_the_same_bytes(fast, texts, monkeypatch):
    """The worker-process tokenization (the CUDA feeding path) runs on CPU too and forms the same
    windows and batches as the inline path."""
    with_workers = load_model(EmbedderSpec(device="cpu", cpu_backend="onnx", threads=2, tokenize_workers=2))
    assert with_workers.tokenize_workers == 2 and fast.tokenize_workers == 0
    for model in (fast, with_workers):
        monkeypatch.setattr(model, "window_docs", 16)
    parts = [texts[:30], [], texts[30:33], texts[33:50]]
    inline = list(embed_batches(fast, iter(parts)))
    pooled = list(embed_batches(with_workers, iter(parts)))
    assert [len(p) for p in pooled] == [len(p) for p in parts]
    for a, b in zip(inline, pooled):
        assert a.tobytes() == b.tobytes()
    whole = embed_texts(with_workers, texts[:40])  # more than one window -> workers
    assert whole.tobytes() == embed_texts(fast, texts[:40]).tobytes()


def test_torch_runner_pipelined_loop_on_cpu(reference, texts, monkeypatch):
    """The CUDA loop (staging, async copy-back with bounded pending batches) runs on CPU."""
    monkeypatch.setattr(reference.runner, "max_pending", 1)
    monkeypatch.setattr(reference, "token_budget", 256)
    out = embed_texts(reference, texts[:30])
    assert np.allclose(np.linalg.norm(out.astype(np.float32), axis=1), 1.0, atol=2e-3)
