"""PII redaction in exported mixture text: planted PII goes, look-alikes stay, counts on the card."""

from __future__ import annotations

from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest

from crawlmix.mixture import build_mixture, parse_mixture_spec
from crawlmix.mixture.pii import redact_pii, redact_texts
from crawlmix.mixture_steps import build_pool, write_mixture
from crawlmix.storage import LocalStorage
from tests.test_mixture_pool import VERSION, write_dedup, write_shard

PLANTED = [
    ("Write to jane.doe@example.com for access.", "Write to <EMAIL> for access.", {"email": 1}),
    ("Contact: ADMIN+lists@mail.example.org.", "Contact: <EMAIL>.", {"email": 1}),
    ("Our host 84.21.130.7 answered, then 203.0.113.9 (documentation range) did not.",
     "Our host <IP_ADDRESS> answered, then 203.0.113.9 (documentation range) did not.", {"ip_address": 1}),
    ("Served from 2001:4860:4860::8888 over IPv6.", "Served from <IP_ADDRESS> over IPv6.", {"ip_address": 1}),
    ("Call +49 30 1234567 or (212) 555-0199 during office hours.",
     "Call <PHONE> or <PHONE> during office hours.", {"phone": 2}),
    ("Support: +1-800-555-0199, mail help@example.net, host 93.184.216.34",
     "Support: <PHONE>, mail <EMAIL>, host <IP_ADDRESS>", {"phone": 1, "email": 1, "ip_address": 1}),
]
LOOK_ALIKES = [
    "Upgrade to version 1.2.3.4 or v2.0.0.1; the 1.2.3.4.5 build and release 2.4.58 are older.",
    "Bind to 127.0.0.1, 10.0.0.1, 192.168.1.20, ::1 or fe80::1 on the local network.",
    "Released 2024-01-02 at 12:30:45, ISBN 978-3-16-148410-0, see std::vector<int> in C++.",
    "npm install left-pad@1.3.0; git clone git@github.com:owner/repo.git; ssh root@localhost",
    "int id = 2125550199; long total = 1234567890; if (a@b) return x;",
    "Section 4.2.1 of RFC 2616, port 8080, 3.14159 and 10.5 percent.",
    # seen on the bundled sample's pages: section numbers, resolvers, multicast, time stamps
    "6.2.5.1.  Vcs-Browser and 15.2.1.1 Contour Groups; see Seksjon 6.1.2.3 and SQLite Release 3.8.11.1.",
    "Resolvers 8.8.8.8 and 1.1.1.1; mDNS uses 224.0.0.251; fd::7 and 2000:: are not hosts.",
    '[Thu Jun 18 09:12:31.123456 2009] [core:alert]; SQLITE_SOURCE_ID: "2015-07-29 20:00:57 cf5"',
]


@pytest.mark.parametrize("text, expected, counts", PLANTED)
def test_planted_pii_is_replaced_by_stable_placeholders(text, expected, counts):
    redacted, found = redact_pii(text)
    assert redacted == expected and dict(found) == counts


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_look_alikes_stay(text):
    assert redact_pii(text) == (text, {})


def test_totals_count_documents_with_any_pii_and_leave_missing_text_alone():
    texts = [p[0] for p in PLANTED] + LOOK_ALIKES + [None]
    redacted, totals = redact_texts(texts)
    assert redacted[-1] is None and redacted[len(PLANTED):-1] == LOOK_ALIKES
    assert totals == {"email": 3, "ip_address": 3, "phone": 3, "documents": len(PLANTED)}


@pytest.mark.parametrize("redact", [True, False])
def test_exported_documents_are_redacted_and_the_card_counts_what_was_replaced(tmp_path, redact):
    store = LocalStorage(str(tmp_path / "storage"))
    texts = [p[0] for p in PLANTED] + LOOK_ALIKES
    write_shard(store, "s1", "000", [(f"d{i}", i % 2, len(t), t) for i, t in enumerate(texts)])
    write_dedup(store, "s1", [])
    pool = build_pool(store, [("s1", "000")], SimpleNamespace(version=VERSION))
    spec = parse_mixture_spec({"name": "all", "policy": "weighted", "size": {"documents": len(texts)},
                               "formats": ["parquet", "jsonl.gz"], "redact_pii": redact})
    centroids = SimpleNamespace(version=VERSION, tree=SimpleNamespace(levels=2, config=SimpleNamespace(ks=[2, 2])),
                                names=[{}, {0: "0_a", 1: "1_b"}])
    written = write_mixture(store, spec, build_mixture(pool, spec), centroids,
                            {"model_id": "m", "weights_hash": "w", "embedding_version": "e"})
    exported = pq.read_table(tmp_path / "storage" / written.doc_keys[0]).to_pandas().set_index("doc_id")["text"]
    card = (tmp_path / "storage" / written.card_key).read_text()
    if redact:
        assert {exported[f"d{i}"] for i in range(len(PLANTED))} == {p[1] for p in PLANTED}
        assert written.pii_redacted == {"email": 3, "ip_address": 3, "phone": 3, "documents": len(PLANTED)}
        assert "3 e-mail addresses, 3 public IP addresses, 3 phone numbers, in 6 documents" in card
    else:
        assert exported["d0"] == PLANTED[0][0] and written.pii_redacted == {}
        assert "not redacted (`redact_pii: false`)" in card
    assert {exported[f"d{len(PLANTED) + i}"] for i in range(len(LOOK_ALIKES))} == set(LOOK_ALIKES)
