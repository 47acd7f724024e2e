"""Mixture spec parsing and validation: every field's error names the spec and the field."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from crawlmix.mixture import (
    ClusterRef,
    MixtureSpecError,
    load_mixture_specs,
    parse_mixture_specs,
    validate_against_corpus,
)

GOOD = {
    "name": "mix-a",
    "scope": ["2024-10"],
    "filters": {"min_quality": 0.2, "drop_semantic_duplicates": True,
                "exclude_clusters": [{"level": 1, "id": 3}, "casino"]},
    "size": {"tokens": 1_000_000, "tokenizer": "approx"},
    "policy": "weighted",
    "options": {"weights": {0: 2.0, "science": 1.0}, "temperature": 0.7, "max_repeats": 3},
    "seed": 7,
    "formats": ["parquet", "jsonl.gz"],
}


def parse(**over):
    d = copy.deepcopy(GOOD)
    for k, v in over.items():
        if v is KeyError:
            d.pop(k)
        else:
            d[k] = v
    return parse_mixture_specs({"mixtures": [d]})[0]


def test_good_spec_roundtrip(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump({"mixtures": [GOOD, {**GOOD, "name": "b", "policy": "balanced", "options": {}}]}))
    a, b = load_mixture_specs(str(p))
    assert a.name == "mix-a" and a.size.unit == "tokens" and a.size.value == 1_000_000
    assert a.filters.exclude_clusters == (ClusterRef(1, 3), "casino")
    assert a.options["weights"] == {0: 2.0, "science": 1.0}
    assert b.options == {"within_leaf": "random"}
    assert parse_mixture_specs([a.to_dict()])[0] == a


@pytest.mark.parametrize(
    "over, field",
    [
        ({"name": "bad name!"}, "name"),
        ({"scope": 5}, "scope"),
        ({"scope": ["a", "a"]}, "scope"),
        ({"filters": {"min_quality": 1.5}}, "filters.min_quality"),
        ({"filters": {"min_quality": "high"}}, "filters.min_quality"),
        ({"filters": {"drop_semantic_duplicates": "yes"}}, "filters.drop_semantic_duplicates"),
        ({"filters": {"exclude_clusters": [{"level": 0, "id": 1}]}}, "filters.exclude_clusters[0].level"),
        ({"filters": {"exclude_clusters": [{"level": 1}]}}, "filters.exclude_clusters[0].id"),
        ({"filters": {"exclude_clusters": "x"}}, "filters.exclude_clusters"),
        ({"filters": {"typo": 1}}, "filters.typo"),
        ({"size": {"documents": 10, "tokens": 10}}, "size"),
        ({"size": {"documents": -1}}, "size.documents"),
        ({"size": {"documents": 10, "tokenizer": "approx"}}, "size.tokenizer"),
        ({"size": {"tokens": "many"}}, "size.tokens"),
        ({"size": KeyError}, "size"),
        ({"policy": "magic"}, "policy"),
        ({"policy": KeyError}, "policy"),
        ({"options": {"temperature": 0}}, "options.temperature"),
        ({"options": {"max_repeats": 0}}, "options.max_repeats"),
        ({"options": {"weights": {0: -1}}}, "options.weights[0]"),
        ({"options": {"within_leaf": "random"}}, "options.within_leaf"),  # not a weighted option
        ({"policy": "balanced", "options": {"within_leaf": "far"}}, "options.within_leaf"),
        ({"policy": "quality_topk", "options": {"shares_from": "x"}}, "options.shares_from"),
        ({"policy": "quality_topk", "options": {"gumbel_scale": -1}}, "options.gumbel_scale"),
        ({"policy": "search", "options": {"evaluator": {"type": "python"}}}, "options.evaluator.function"),
        ({"policy": "search", "options": {"evaluator": {"type": "command", "command": "ls -l"}}},
         "options.evaluator.command"),
        ({"policy": "search", "options": {"rounds": []}}, "options.rounds"),
        ({"policy": "search", "options": {"scale": 0}}, "options.scale"),
        ({"seed": -3}, "seed"),
        ({"seed": True}, "seed"),
        ({"formats": ["csv"]}, "formats[0]"),
        ({"formats": ["jsonl.gz"]}, "formats"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_field_errors_name_the_field(over, field):
    with pytest.raises(MixtureSpecError) as ei:
        parse(**over)
    msg = str(ei.value)
    assert "mix-a" in msg or "name" in field, msg
    assert f"{field}:" in msg, msg


def test_duplicate_names_and_top_level(tmp_path):
    with pytest.raises(MixtureSpecError, match="duplicate"):
        parse_mixture_specs([GOOD, GOOD])
    with pytest.raises(MixtureSpecError, match="unknown top-level"):
        parse_mixture_specs({"mixtures": [GOOD], "extra": 1})
    p = tmp_path / "empty.yaml"
    p.write_text("mixtures: []\n")
    with pytest.raises(MixtureSpecError, match="non-empty"):
        load_mixture_specs(str(p))


def test_validate_against_corpus():
    spec = parse()
    ids = [set(range(10)), {0, 1, 2}]
    kw = [{i: ["leafword"] for i in range(10)}, {0: ["science", "physics"], 1: ["casino", "poker"], 2: ["news"]}]
    validate_against_corpus(spec, {"2024-10", "2024-11"}, ids, kw)
    with pytest.raises(MixtureSpecError, match=r"scope: unknown snapshot"):
        validate_against_corpus(spec, {"2024-11"}, ids, kw)
    with pytest.raises(MixtureSpecError, match=r"exclude_clusters\[0\]: cluster id 3 does not exist at level 1"):
        validate_against_corpus(spec, {"2024-10"}, [set(range(3)), {0, 1, 2}], kw)
    with pytest.raises(MixtureSpecError, match=r"exclude_clusters\[1\]: keyword 'casino'"):
        validate_against_corpus(spec, {"2024-10"}, ids, [kw[0], {0: ["science"]}])
    with pytest.raises(MixtureSpecError, match=r"options.weights\[0\]: cluster id 0 does not exist at level 2"):
        validate_against_corpus(spec, {"2024-10"}, [set(range(10)), {1, 2}], kw)
    bad_level = parse(options={"level": 5})
    with pytest.raises(MixtureSpecError, match="options.level"):
        validate_against_corpus(bad_level, {"2024-10"}, ids, kw)


def test_relative_sizes_parse_resolve_and_round_trip():
    cap = parse(size={"tokens": 150_000, "at_most_fraction": 0.5}, options={"max_repeats": 2})
    assert cap.size.unit == "tokens" and cap.size.value == 150_000 and cap.size.at_most_fraction == 0.5
    assert cap.size.resolve(10_000_000) == 150_000  # a large pool: the amount
    assert cap.size.resolve(40_000) == 20_000  # a small pool: half of it
    frac = parse(policy="balanced", options={}, size={"documents_fraction": 0.25})
    assert frac.size.unit == "documents" and frac.size.value is None
    assert [frac.size.resolve(n) for n in (30, 200, 2)] == [8, 50, 1]  # rounded, never 0
    upsample = parse(size={"tokens_fraction": 1.5}, options={"max_repeats": 2})
    assert upsample.size.resolve(1000) == 1500
    for sp in (cap, frac, upsample):
        assert parse_mixture_specs([sp.to_dict()])[0] == sp
    assert "at most 0.5 of the filtered pool's tokens" in cap.size.describe()


@pytest.mark.parametrize(
    "over, field, words",
    [
        ({"size": {"documents_fraction": 0}}, "size.documents_fraction", "> 0.0"),
        ({"size": {"documents_fraction": "half"}}, "size.documents_fraction", "finite number"),
        ({"size": {"documents_fraction": 0.5, "tokens": 10}}, "size", "exactly one"),
        ({"size": {"documents_fraction": 0.5, "at_most_fraction": 0.5}}, "size.at_most_fraction", "not to a fraction"),
        ({"size": {"documents_fraction": 0.5, "tokenizer": "approx"}}, "size.tokenizer", "tokens size"),
        ({"size": {"at_most_fraction": 0.5}}, "size", "exactly one"),
        # above 1 means repeats: only as far as max_repeats allows (3 in GOOD)
        ({"size": {"tokens_fraction": 3.5}}, "size.tokens_fraction", "<= 3"),
        ({"size": {"documents": 10, "at_most_fraction": 4}}, "size.at_most_fraction", "<= 3"),
        ({"policy": "balanced", "options": {}, "size": {"documents_fraction": 1.2}}, "size.documents_fraction",
         "at most once"),
        ({"policy": "search", "options": {"max_share": 0}}, "options.max_share", "> 0.0"),
        ({"policy": "search", "options": {"max_share": 1.5}}, "options.max_share", "<= 1.0"),
    ],
)
def test_relative_size_and_max_share_errors(over, field, words):
    with pytest.raises(MixtureSpecError) as ei:
        parse(**over)
    msg = str(ei.value)
    assert f"{field}:" in msg and words in msg, msg


def test_search_max_share_defaults_and_is_stated():
    from crawlmix.mixture import DEFAULT_MAX_SHARE

    sp = parse(policy="search", options={"max_repeats": 3})
    assert sp.options["max_share"] == DEFAULT_MAX_SHARE == 0.35
    assert sp.to_dict()["options"]["max_share"] == 0.35  # in the card's spec line and the version hash
    assert parse(policy="search", options={"max_share": 1.0, "max_repeats": 3}).options["max_share"] == 1.0


def test_bundled_mixture_file_uses_sizes_that_fit_any_pool():
    import crawlmix

    specs = load_mixture_specs(str(Path(crawlmix.__file__).parent / "sample" / "mixtures.yaml"))
    assert {s.name for s in specs} == {"balanced-docs", "weighted-tokens", "quality-topk", "searched"}
    for sp in specs:
        assert sp.size.fraction is not None or sp.size.at_most_fraction is not None, sp.name
        assert sp.size.resolve(30) <= 30 * int(sp.options.get("max_repeats", 1))
