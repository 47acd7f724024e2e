"""Benchmark decontamination: long shared n-grams with evaluation items keep documents out."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crawlmix.mixture import MixtureSpecError, build_mixture, parse_mixture_spec
from crawlmix.mixture.decontamination import build_index, item_texts
from crawlmix.ngrams import words
from crawlmix.mixture_steps import build_pool, eval_set_index, mark_contamination, write_mixture
from crawlmix.mixture.spec import EvalSet
from crawlmix.storage import LocalStorage
from tests.test_mixture_pool import VERSION, write_dedup, write_shard

EVALS = Path(__file__).resolve().parents[1] / "crawlmix" / "sample" / "evals" / "docs-qa.jsonl"
ITEMS = [json.loads(line) for line in EVALS.read_text().splitlines()]
POSTGRES = ITEMS[1]["context"]
UNRELATED = ("A good backup strategy starts with a clear idea of what has to be restored and how quickly, "
             "and a restore that was never tested is only a hope.")


def _index(n: int = 13):
    return build_index("docs-qa", item_texts(str(EVALS), ["question", "context"]), n, "v")


def test_verbatim_rewrapped_lowercased_and_embedded_copies_match():
    index = _index()
    assert index.items == 5 and index.unchecked_items == 1  # "What is SQL? A query language."
    rewrapped = textwrap.fill(POSTGRES, width=50)  # reflowed: a line break between words every ~8 words
    middle = POSTGRES.split(". ", 1)[1]
    for text in (POSTGRES, rewrapped, POSTGRES.lower(), POSTGRES.replace(", ", " , ").replace(".", " !"),
                 f"{UNRELATED}\n\n{middle}\n\nMore text after the copy.",
                 " ".join(words(POSTGRES)[10:23])):  # exactly 13 words of it
        assert index.contains_any(text), text[:60]


def test_near_misses_do_not_match():
    index = _index()
    tokens = words(POSTGRES)
    twelve = " ".join(tokens[10:22])
    every_twelfth_changed = " ".join("CHANGED" if i % 12 == 6 else t for i, t in enumerate(tokens))
    for text in (twelve, every_twelfth_changed, UNRELATED, "What is SQL? A query language.", ""):
        assert not index.contains_any(text), text[:60]
    assert _index(n=8).contains_any(twelve)  # a shorter n-gram catches it


def test_the_index_is_built_once_per_file_version_and_read_back(tmp_path, monkeypatch):
    store = LocalStorage(str(tmp_path / "storage"))
    evals = tmp_path / "qa.jsonl"
    evals.write_text(EVALS.read_text())
    spec_set = EvalSet("docs-qa", str(evals), ("question", "context"))
    first = eval_set_index(store, spec_set, 13)
    stored = sorted(p.name for p in (tmp_path / "storage" / "decontamination" / "docs-qa").iterdir())
    assert stored == sorted([f"{first.version}.json", f"{first.version}.json.sha256",
                             f"{first.version}.npy", f"{first.version}.npy.sha256"])
    import crawlmix.mixture_steps as steps

    monkeypatch.setattr(steps, "build_index", lambda *a, **k: pytest.fail("rebuilt an indexed version"))
    again = eval_set_index(store, spec_set, 13)
    assert again.version == first.version and (again.hashes == first.hashes).all() and again.items == 5
    monkeypatch.undo()
    evals.write_text(EVALS.read_text() + json.dumps({"question": "Q", "context": UNRELATED}) + "\n")
    assert eval_set_index(store, spec_set, 13).version != first.version  # a changed file is a new version


def test_parquet_sets_and_missing_fields(tmp_path):
    path = tmp_path / "eval.parquet"
    pq.write_table(pa.table({"text": [POSTGRES, "short"], "label": ["a", "b"]}), path)
    assert item_texts(str(path), ["text"]) == [POSTGRES, "short"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "x"}) + "\n")
    with pytest.raises(ValueError, match="line 1 has no field"):
        item_texts(str(bad), ["question", "context"])


def test_mixture_leaves_contaminated_documents_out_and_the_card_names_the_sets(tmp_path):
    store = LocalStorage(str(tmp_path / "storage"))
    pq.write_table(pa.table({"text": [UNRELATED]}), tmp_path / "other.parquet")
    texts = [POSTGRES, POSTGRES.lower(), f"{UNRELATED} {ITEMS[0]['context']}", UNRELATED,
             "What is SQL? A query language.", "Plain page about gardening and the soil of a garden."]
    write_shard(store, "s1", "000", [(f"d{i}", i % 2, 400, t) for i, t in enumerate(texts)])
    write_dedup(store, "s1", [])
    spec = parse_mixture_spec({
        "name": "clean", "policy": "weighted", "size": {"documents": 2},
        "decontamination": {"sets": [{"name": "docs-qa", "path": str(EVALS), "fields": ["question", "context"]},
                                     {"name": "other", "path": str(tmp_path / "other.parquet")}]}})
    pool = build_pool(store, [("s1", "000")], SimpleNamespace(version=VERSION))
    with pytest.raises(ValueError, match="mark_contamination"):
        build_mixture(pool, spec)
    pool, report = mark_contamination(store, pool, spec)
    assert dict(zip(pool["doc_id"], pool["contaminated_by"])) == {
        "d0": "docs-qa", "d1": "docs-qa", "d2": "docs-qa,other", "d3": "other", "d4": "", "d5": ""}
    assert [(r["name"], r["documents"], r["items"], r["unchecked_items"]) for r in report] == [
        ("docs-qa", 3, 5, 1), ("other", 2, 1, 0)]
    result = build_mixture(pool, spec)
    assert set(result.selection["doc_id"]) == {"d4", "d5"} and result.filtered_out["decontamination"] == 4
    centroids = SimpleNamespace(version=VERSION, tree=SimpleNamespace(levels=2, config=SimpleNamespace(ks=[2, 2])),
                                names=[{}, {0: "0_a", 1: "1_b"}])
    written = write_mixture(store, spec, result, centroids, {"model_id": "m"}, report)
    card = (tmp_path / "storage" / written.card_key).read_text()
    assert "## Benchmark decontamination" in card and "run of 13 words" in card
    assert "| docs-qa |" in card and "| 5 | 1 | 3 |" in card and "- decontamination: 4 documents removed" in card


def test_spec_paths_are_taken_from_the_spec_file_folder(tmp_path):
    from crawlmix.mixture import load_mixture_specs

    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / "qa.jsonl").write_text(EVALS.read_text())
    (tmp_path / "specs.yaml").write_text(
        "mixtures:\n  - name: m\n    policy: weighted\n    size: {documents: 3}\n"
        "    decontamination: {ngram: 10, sets: [{name: qa, path: evals/qa.jsonl, fields: [context]}]}\n")
    (spec,) = load_mixture_specs(str(tmp_path / "specs.yaml"))
    assert spec.decontamination.ngram == 10 and spec.decontamination.sets[0].path == str(tmp_path / "evals" / "qa.jsonl")
    assert parse_mixture_spec(spec.to_dict()) == spec  # the stored spec (absolute path) reads back the same
    with pytest.raises(MixtureSpecError, match="decontamination.sets\\[0\\].path"):
        parse_mixture_spec({"name": "m", "policy": "weighted", "size": {"documents": 3},
                            "decontamination": {"sets": [{"name": "qa", "path": "evals/qa.jsonl"}]}})
