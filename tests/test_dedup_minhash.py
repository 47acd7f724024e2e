"""MinHash signatures and LSH bands on real text: planted near-duplicates group, distinct pages do not."""

from __future__ import annotations

import random

import numpy as np
import pytest

from crawlmix.dedup.minhash import (
    PRESETS,
    MinHashConfig,
    band_keys,
    candidate_groups,
    fuzzy_groups,
    group_members,
    minhash_signatures,
)
from tests.sample_pages import sample_documents


def _pages(limit: int = 120) -> list[str]:
    return [d.text for d in sample_documents(files=2) if len(d.text.split()) > 300][:limit]


def _edit(text: str, rng: random.Random) -> str:
    """About 2% of the words replaced and a footer added: Jaccard of 5-gram shingles near 0.85."""
    tokens = text.split()
    for _ in range(max(1, len(tokens) // 50)):
        tokens[rng.randrange(len(tokens))] = "changed"
    return " ".join(tokens) + "\nCopyright 2024 Example Corp. All rights reserved."


def test_signatures_are_seeded_and_estimate_jaccard():
    pages = _pages(20)
    config = MinHashConfig(bands=32, rows=8)
    first, again = minhash_signatures(pages, config), minhash_signatures(pages, config)
    assert first.shape == (20, 256) and first.dtype == np.uint32 and (first == again).all()
    assert not (minhash_signatures(pages, MinHashConfig(bands=32, rows=8, seed=2)) == first).all()
    rewrapped = pages[0].replace(" ", "\n").upper()  # same words: identical signature
    assert (minhash_signatures([rewrapped], config)[0] == first[0]).all()
    edited = minhash_signatures([_edit(pages[0], random.Random(0))], config)[0]
    agreement = float((edited == first[0]).mean())  # estimates the shingle Jaccard similarity
    assert 0.6 < agreement < 0.98
    assert float((first[1] == first[2]).mean()) < 0.2  # different pages


def test_planted_near_duplicates_share_a_bucket_and_distinct_pages_do_not():
    pages = _pages()
    rng = random.Random(0)
    copies = [_edit(p, rng) for p in pages[:40]]
    config = PRESETS["fineweb"]
    groups = candidate_groups(band_keys(minhash_signatures(pages + copies, config), config))
    found = sum(groups[len(pages) + i] == groups[i] for i in range(40))
    assert found >= 38, found  # recall >= 0.95 on ~0.85 Jaccard copies
    members = group_members(groups)
    wrong = [m for m in members.values() if len([i for i in m if i < len(pages)]) > 1]
    assert len(wrong) <= 1, wrong  # distinct pages (same site templates) stay apart


def test_short_and_empty_texts_and_config_checks():
    config = MinHashConfig(bands=4, rows=2)
    sig = minhash_signatures(["two words", "two words", "", "", "three little words"], config)
    groups = candidate_groups(band_keys(sig, config))
    assert groups[0] == groups[1] and groups[2] == groups[3] and groups[4] not in (groups[0], groups[2])
    assert minhash_signatures([], config).shape == (0, 8)
    with pytest.raises(ValueError):
        MinHashConfig(bands=0)
    assert PRESETS["fineweb"].num_perm == 112 and PRESETS["nemo"].num_perm == 260
    assert round(PRESETS["fineweb"].match_probability(0.8), 2) == 0.92


def test_verification_keeps_pages_that_share_only_boilerplate_apart():
    """Twenty pages wrapped in the same long header and footer: bands alone group some of them;
    checking the signature agreement keeps them apart while a planted copy still joins."""
    real = _pages(22)
    header, footer = " ".join(real[20].split()[:120]), " ".join(real[21].split()[:120])
    pages = [f"{header}\n{' '.join(body.split()[:150])}\n{footer}" for body in real[:20]]  # Jaccard about 0.45
    copy = _edit(pages[0], random.Random(1))
    config = MinHashConfig(bands=20, rows=4)  # loose bands: many candidates
    signatures = minhash_signatures(pages + [copy], config)
    keys = band_keys(signatures, config)
    unverified = candidate_groups(keys)
    verified = fuzzy_groups(pages + [copy], config)
    assert len(group_members(unverified)) >= 1 and len(set(unverified[:20])) < 20
    assert len(set(verified[:20])) == 20 and verified[20] == verified[0]
