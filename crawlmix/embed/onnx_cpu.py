"""CPU fast path: the model as an int8 ONNX Runtime graph, built once and cached on disk.

Build (first use per weights hash, ~20 s, needs torch + transformers + onnx + onnxruntime):

1. export the Hugging Face model *with* pooling and L2 normalisation to ONNX (torch's TorchScript
   exporter, opset 17, dynamic batch and sequence axes, eager attention so the pattern fuses);
2. fuse with onnxruntime's transformer optimizer (BERT-family models: EmbedLayerNormalization,
   Attention, SkipLayerNormalization, BiasGelu);
3. quantize all weights to int8 per output channel. Activations are quantized on the fly: per
   tensor (onnxruntime's dynamic quantization, QAttention) for the fused QKV projection, and
   per row (token) for the other MatMuls, whose inputs have outlier channels (see
   ``_row_quantized_matmuls``). LayerNorm, Softmax, GELU and pooling stay fp32.

Every file is written under a temporary name and renamed into place, under a file lock, so
concurrent processes build it once and never read a partial file. Later loads need only
onnxruntime (~0.5 s instead of ~10 s for torch + transformers).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from typing import Iterable

import numpy as np

from crawlmix.embed.tokenize import PreparedBatch

__all__ = ["OnnxRunner", "build_onnx_model", "default_cache_dir", "RECIPE_VERSION"]

# Bump when the build recipe changes: the cache key and every embedding_version change with it.
RECIPE_VERSION = "v2-rowq"

# Node-name fragments kept in fp32 in the int8 graph (see the module docstring; measured: these
# are the quantization-sensitive MatMuls of MiniLM-L6, keeping them fp32 lifts mean cosine to the
# fp32 reference while costing little speed).
_FP32_NODES: tuple[str, ...] = ()


def default_cache_dir() -> str:
    return os.environ.get("CRAWLMIX_ONNX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "crawlmix", "onnx")


@contextlib.contextmanager
def _file_lock(path: str):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _config_key(folder: str, pooling: str, quantize: bool) -> str:
    with open(os.path.join(folder, "config.json"), "rb") as handle:
        config = handle.read()
    payload = json.dumps([RECIPE_VERSION, pooling, quantize, list(_FP32_NODES)]).encode() + config
    return hashlib.sha256(payload).hexdigest()[:12]


def build_onnx_model(
    folder: str, weights_hash: str, quantize: bool, pooling: str = "mean", cache_dir: str | None = None
) -> str:
    """Path of the cached ONNX model for this model folder, building it when missing."""
    root = os.path.join(os.path.abspath(os.path.expanduser(cache_dir or default_cache_dir())), weights_hash)
    name = f"model-{'int8' if quantize else 'fp32'}-{RECIPE_VERSION}-{_config_key(folder, pooling, quantize)}.onnx"
    final = os.path.join(root, name)
    if os.path.isfile(final):
        return final
    with _file_lock(os.path.join(root, ".lock")):
        if os.path.isfile(final):  # built by another process while we waited
            return final
        scratch = tempfile.mkdtemp(prefix=".build-", dir=root)
        try:
            exported = os.path.join(scratch, "exported.onnx")
            _export(folder, pooling, exported)
            fused = os.path.join(scratch, "fused.onnx")
            _fuse(folder, exported, fused)
            result = fused
            if quantize:
                result = os.path.join(scratch, "int8.onnx")
                _quantize(fused, result)
            tmp = os.path.join(root, f".{name}.tmp-{os.getpid()}")
            shutil.copyfile(result, tmp)
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, final)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return final


def _export(folder: str, pooling: str, out_path: str) -> None:
    import torch
    from transformers import AutoModel

    from crawlmix.embed.model import _from_pretrained, _pool_normalize

    model = _from_pretrained(AutoModel, folder, attn_implementation="eager")
    model.eval()
    import inspect

    token_types = "token_type_ids" in inspect.signature(model.forward).parameters

    class Wrapped(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_types:
                kwargs["token_type_ids"] = torch.zeros_like(input_ids)
            hidden = self.inner(**kwargs).last_hidden_state
            return _pool_normalize(torch, hidden, attention_mask > 0, pooling)

    ids = torch.ones((2, 16), dtype=torch.long)
    mask = torch.ones((2, 16), dtype=torch.long)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Wrapped(model),
            (ids, mask),
            out_path,
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                          "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


def _fuse(folder: str, in_path: str, out_path: str) -> None:
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as handle:
        config = json.load(handle)
    if config.get("model_type") not in ("bert", "roberta", "xlm-roberta"):
        shutil.copyfile(in_path, out_path)
        return
    import logging

    from onnxruntime.transformers.optimizer import optimize_model

    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimized = optimize_model(
            in_path,
            model_type="bert",
            num_heads=int(config["num_attention_heads"]),
            hidden_size=int(config["hidden_size"]),
            opt_level=0,  # python fusions only: the saved graph stays portable across CPUs
            use_gpu=False,
        )
    optimized.save_model_to_file(out_path)


def _row_quantized_matmuls(graph, initializers: dict) -> list:
    """The MatMuls with a constant 2-D weight outside the fused Attention op (attention output,
    feed-forward up and down). Their inputs (LayerNorm and GELU outputs) have outlier channels,
    and one uint8 scale per tensor, what ``quantize_dynamic`` uses, costs MiniLM ~0.8 points of
    mean cosine (0.992 -> 0.987 on some text); a scale per row (token) keeps it at ~0.997."""
    targets = []
    for node in graph.node:
        if node.op_type != "MatMul" or len(node.input) != 2 or node.input[1] not in initializers:
            continue
        dims = list(initializers[node.input[1]].dims)
        if len(dims) == 2:
            targets.append(node)
    return targets


def _quantize(in_path: str, out_path: str) -> None:
    """int8 weights everywhere; activations quantized per tensor (ORT dynamic quantization) for the
    attention projections and per row (token) for the feed-forward MatMuls."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger("onnxruntime.quantization").setLevel(logging.ERROR)
    model = onnx.load(in_path)
    inits = {i.name: i for i in model.graph.initializer}
    row_nodes = {n.name for n in _row_quantized_matmuls(model.graph, inits)}
    exclude = sorted(row_nodes | {n.name for n in model.graph.node if any(f in n.name for f in _FP32_NODES)})
    tmp = out_path + ".dyn.onnx"
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs advice on the root logger
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            quantize_dynamic(
                in_path,
                tmp,
                weight_type=QuantType.QInt8,
                per_channel=True,
                nodes_to_exclude=exclude,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        finally:
            root.setLevel(level)
    model = onnx.load(tmp)
    os.unlink(tmp)
    _rewrite_row_quantized(model, row_nodes - set(_FP32_NODES))
    onnx.save(model, out_path)


def _rewrite_row_quantized(model, names: set) -> None:
    """Replace each named fp32 MatMul Y = X @ W by symmetric per-row int8 arithmetic:

    s = max|X| per row / 127;  Xq = uint8(X / s + 128.5)  (Cast truncates: round half up, in [1, 255])
    Y = float(MatMulInteger(Xq, Wq, zero point 128)) * s * w_scale   (Wq int8 per column)
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    graph.initializer.extend([
        numpy_helper.from_array(np.array(1.0 / 127.0, np.float32), "rowq_inv127"),
        numpy_helper.from_array(np.array(1e-12, np.float32), "rowq_eps"),
        numpy_helper.from_array(np.array(128.5, np.float32), "rowq_offset"),
        numpy_helper.from_array(np.array(128, np.uint8), "rowq_zero_point"),
    ])
    nodes = []
    for node in graph.node:
        if node.op_type != "MatMul" or node.name not in names:
            nodes.append(node)
            continue
        x, w_name = node.input
        y = node.output[0]
        key = "rowq" + "".join(c if c.isalnum() else "_" for c in node.name)
        weight = numpy_helper.to_array(inits[w_name]).astype(np.float32)
        w_scale = np.abs(weight).max(axis=0) / 127.0
        w_scale[w_scale == 0] = 1.0
        w_q = np.clip(np.round(weight / w_scale), -127, 127).astype(np.int8)
        graph.initializer.extend([
            numpy_helper.from_array(w_q, f"{key}_wq"),
            numpy_helper.from_array(w_scale.astype(np.float32), f"{key}_wscale"),
        ])

        def t(suffix, key=key):
            return f"{key}_{suffix}"

        nodes += [
            helper.make_node("Abs", [x], [t("abs")], name=t("Abs")),
            helper.make_node("ReduceMax", [t("abs")], [t("amax")], name=t("ReduceMax"), axes=[-1], keepdims=1),
            helper.make_node("Max", [t("amax"), "rowq_eps"], [t("amax_eps")], name=t("Max")),
            helper.make_node("Mul", [t("amax_eps"), "rowq_inv127"], [t("scale")], name=t("Scale")),
            helper.make_node("Div", [x, t("scale")], [t("xs")], name=t("Div")),
            helper.make_node("Add", [t("xs"), "rowq_offset"], [t("xo")], name=t("Offset")),
            helper.make_node("Cast", [t("xo")], [t("xq")], name=t("CastU8"), to=TensorProto.UINT8),
            helper.make_node("MatMulInteger", [t("xq"), f"{key}_wq", "rowq_zero_point"], [t("yi")], name=t("MatMulInteger")),
            helper.make_node("Cast", [t("yi")], [t("yf")], name=t("CastF"), to=TensorProto.FLOAT),
            helper.make_node("Mul", [t("yf"), t("scale")], [t("yrow")], name=t("RowScale")),
            helper.make_node("Mul", [t("yrow"), f"{key}_wscale"], [y], name=t("ColScale")),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def _file_digest(path: str) -> str:
    from crawlmix.tables import sha256_of

    return sha256_of(path)[0]


class OnnxRunner:
    """An onnxruntime CPU session with a fixed thread count (so results are bit-identical run to run)."""

    def __init__(self, onnx_path: str, threads: int, quantized: bool):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # No busy-waiting between ops/runs: measured 10-25% faster on a shared 2-core machine,
        # and it leaves the cores to the tokenizer between batches.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        self.onnx_path = onnx_path
        self.threads = int(threads)
        self.dim = int(self.session.get_outputs()[0].shape[-1])
        self.recipe = f"onnx-{'int8' if quantized else 'fp32'}-{RECIPE_VERSION}:{_file_digest(onnx_path)[:12]}"

    @classmethod
    def create(cls, folder: str, weights_hash: str, quantize: bool, threads: int, pooling: str = "mean",
               cache_dir: str | None = None) -> "OnnxRunner":
        path = build_onnx_model(folder, weights_hash, quantize, pooling, cache_dir)
        return cls(path, threads, quantize)

    def run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})[0]

    def embed_prepared(self, batches: Iterable[PreparedBatch], out: np.ndarray) -> None:
        for pb in batches:
            vectors = self.run(pb.ids.astype(np.int64), pb.attention_mask(np.int64))
            out[pb.rows] = vectors.astype(np.float16)
