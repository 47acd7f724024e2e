"""The mixture step over stored shards: assemble the scored pool, write a mixture version, publish it.

No Dagster here. A mixture version lives under `final_mixtures/<name>/` as `<version>.manifest.parquet`,
`<version>.docs-<i>.parquet` (+ `.jsonl.gz` on request) and `<version>.card.md`; `current.json`
names the published version and moves only when publication runs, after the gate has passed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from crawlmix.centroid_store import CentroidTree
from crawlmix.mixture import MixtureResult, MixtureSpec, duplicate_groups, edges_frame
from crawlmix.mixture.decontamination import EvalSetIndex, build_index, item_texts, set_version
from crawlmix.ngrams import WordHashes
from crawlmix.mixture.export import end_of_document_id, training_order, write_hf_dataset, write_megatron
from crawlmix.mixture.pii import PLACEHOLDERS, redact_texts
from crawlmix.mixture.tokens import TokenizerRef, count_tokens, encode, load_tokenizer, prefix_chars, resolve_tokenizer
from crawlmix.mixture.spec import EvalSet
from crawlmix.quality import all_rule_columns, rules_applied
from crawlmix.storage import Storage
from crawlmix.tables import (
    checked_write,
    open_npy,
    read_bytes_verified,
    read_table,
    table_file_metadata,
    write_bytes_checked,
    write_table,
)

DOCS_PER_FILE = 50_000
CHARS_PER_TOKEN = 4  # the approximate tokenizer: about four characters per token for English web text


def read_duplicate_edges(store: Storage, snapshots: Sequence[str]) -> pd.DataFrame:
    """Every dedup link (`doc_id, kept_doc_id, method`) of `snapshots`, and of the earlier snapshots
    their kept documents live in, followed until no new snapshot is named: a copy of a copy is
    still one group. Each snapshot in `snapshots` must have its dedup file (scoring needed it); an
    earlier snapshot without one contributes nothing."""
    frames, seen = [], set()
    todo = sorted(set(snapshots))
    required = set(todo)
    while todo:
        snapshot = todo.pop()
        if snapshot in seen:
            continue
        seen.add(snapshot)
        key = store.key("semantic_duplicates", snapshot, "all", "parquet")
        if snapshot not in required and not store.exists(key):
            continue
        if not store.exists(key):
            raise FileNotFoundError(f"no dedup output for snapshot {snapshot} ({store.uri(key)}): "
                                    "materialize semantic_duplicates for it first")
        table = read_table(store, key).to_pandas()
        frames.append(edges_frame(table))
        if "kept_snapshot" in table.columns:
            todo += sorted(set(table["kept_snapshot"].dropna().astype(str)) - seen)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ("doc_id", "kept_doc_id", "method")})
    return pd.concat(frames, ignore_index=True)


def build_pool(store: Storage, shards: Sequence[tuple[str, str]], centroids: CentroidTree) -> pd.DataFrame:
    """One row per scored document: ids, cluster path, distance, quality, language and its score,
    duplicate flag and group
    (from the dedup files: `duplicate_group`, and `duplicate_method` "exact" / "semantic" on the
    removed ones), approx tokens. Empty shards add nothing."""
    frames = []
    for snapshot, shard in shards:
        labels_key = store.key("cluster_labels", snapshot, shard, "parquet")
        version = table_file_metadata(store, labels_key).get("centroid_version")
        if version != centroids.version:
            raise ValueError(
                f"cluster_labels {snapshot}/{shard} were made with centroids {str(version)[:12]}, not the current "
                f"{centroids.version[:12]}: re-materialize cluster_labels, semantic_duplicates and quality_scores"
            )
        labels = read_table(store, labels_key).to_pandas()
        scores = read_table(store, store.key("quality_scores", snapshot, shard, "parquet"),
                            columns=["doc_id", "quality", "language", "language_score",
                                     "is_semantic_duplicate"]).to_pandas()
        chars = read_table(store, store.key("raw_corpus", snapshot, shard, "parquet"), columns=["n_chars"]).column("n_chars").to_numpy()
        if not (labels["doc_id"].to_numpy() == scores["doc_id"].to_numpy()).all():
            raise ValueError(f"{snapshot}/{shard}: quality_scores and cluster_labels are not row-aligned; re-materialize them")
        frame = labels.rename(columns={"leaf_distance": "distance"}).drop(columns=["centroid_version"])
        frame["quality"] = scores["quality"].to_numpy()
        frame["language"] = scores["language"].to_numpy()
        frame["language_score"] = scores["language_score"].to_numpy()
        frame["is_semantic_duplicate"] = scores["is_semantic_duplicate"].to_numpy()
        frame["n_tokens"] = np.maximum(1, np.ceil(chars / CHARS_PER_TOKEN)).astype(np.int64)
        frame.insert(1, "snapshot", snapshot)
        frame.insert(2, "shard", shard)
        frames.append(frame)
    if not frames:
        raise ValueError("no scored documents in the mixture's scope: materialize quality_scores first")
    pool = pd.concat(frames, ignore_index=True)
    edges = read_duplicate_edges(store, sorted({snapshot for snapshot, _ in shards}))
    pool["duplicate_group"], pool["duplicate_method"] = duplicate_groups(pool["doc_id"].tolist(), edges)
    return pool


def eval_set_index(store: Storage, spec_set: EvalSet, n: int) -> EvalSetIndex:
    """The set's n-gram index: read from storage when this version of the file was indexed before
    (`decontamination/<name>/<version>.npy` and `.json`), else built and stored."""
    version = set_version(spec_set.path, spec_set.fields, n)
    npy_key = store.key("decontamination", spec_set.name, version, "npy")
    info_key = store.key("decontamination", spec_set.name, version, "json")
    if store.exists(npy_key) and store.exists(info_key):
        info = json.loads(read_bytes_verified(store, info_key))
        with open_npy(store, npy_key) as hashes:
            return EvalSetIndex(spec_set.name, version, n, np.array(hashes), info["items"], info["unchecked_items"])
    index = build_index(spec_set.name, item_texts(spec_set.path, spec_set.fields), n, version)
    with checked_write(store, npy_key) as pending, open(pending.path, "wb") as handle:
        np.save(handle, index.hashes)
    write_bytes_checked(store, info_key, json.dumps({
        "name": index.name, "path": spec_set.path, "fields": list(spec_set.fields), "n": n,
        "items": index.items, "unchecked_items": index.unchecked_items, "ngrams": int(len(index.hashes)),
    }, sort_keys=True).encode())
    return index


def mark_contamination(store: Storage, pool: pd.DataFrame, spec: MixtureSpec) -> tuple[pd.DataFrame, list[dict]]:
    """The pool with `contaminated_by` (comma-separated names of the evaluation sets a document
    shares an n-gram with; "" for none) and one report row per set. Texts are read a shard at a
    time; without sets in the spec the pool is returned as it is."""
    sets = spec.decontamination.sets
    if not sets:
        return pool, []
    indexes = [eval_set_index(store, s, spec.decontamination.ngram) for s in sets]
    hits: dict[str, list[str]] = {}
    word_hashes = WordHashes()
    for (snapshot, shard), group in pool.groupby(["snapshot", "shard"], sort=True):
        raw = read_table(store, store.key("raw_corpus", snapshot, shard, "parquet"), columns=["doc_id", "text"])
        wanted = set(group["doc_id"])
        for doc_id, text in zip(raw.column("doc_id").to_pylist(), raw.column("text").to_pylist()):
            if doc_id not in wanted or not text:
                continue
            matched = [index.name for index in indexes if index.contains_any(text, word_hashes)]
            if matched:
                hits[doc_id] = matched
    pool = pool.assign(contaminated_by=[",".join(hits.get(d, ())) for d in pool["doc_id"]])
    report = [{"name": index.name, "path": s.path, "version": index.version, "items": index.items,
               "unchecked_items": index.unchecked_items, "ngrams": int(len(index.hashes)),
               "documents": sum(index.name in names for names in hits.values())}
              for s, index in zip(sets, indexes)]
    return pool, report


def mixture_version(spec: MixtureSpec, centroid_version: str, selection: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(spec.to_dict(), sort_keys=True, default=str).encode())
    digest.update(centroid_version.encode())
    used = selection["n_tokens_used"] if "n_tokens_used" in selection.columns else selection["repeats"] * 0
    digest.update("\n".join(f"{d}:{r}:{u}" for d, r, u in zip(selection["doc_id"], selection["repeats"], used)).encode())
    return digest.hexdigest()[:16]


@dataclass
class WrittenMixture:
    version: str
    manifest_key: str
    doc_keys: list[str]
    card_key: str
    composition: pd.DataFrame
    pii_redacted: dict  # kind -> replacements, and "documents" with any
    exports: dict = field(default_factory=dict)  # training formats: format -> counts and keys


def composition(selection: pd.DataFrame, centroids: CentroidTree) -> pd.DataFrame:
    top = centroids.tree.levels
    column = f"cluster_l{top}"
    weighted = selection.assign(docs=selection["repeats"], tokens=_tokens_used(selection) * selection["repeats"])
    table = weighted.groupby(column)[["docs", "tokens"]].sum().reset_index().rename(columns={column: "cluster_id"})
    table["name"] = [centroids.names[top - 1].get(int(c), str(c)) for c in table["cluster_id"]]
    table["share"] = table["tokens"] / max(int(table["tokens"].sum()), 1)
    table["doc_share"] = table["docs"] / max(int(table["docs"].sum()), 1)
    return table.sort_values("tokens", ascending=False).reset_index(drop=True)


def write_mixture(
    store: Storage,
    spec: MixtureSpec,
    result: MixtureResult,
    centroids: CentroidTree,
    provenance: dict,
    decontamination: Sequence[dict] = (),
) -> WrittenMixture:
    selection = result.selection.reset_index(drop=True)
    version = mixture_version(spec, centroids.version, selection)
    base = f"final_mixtures/{spec.name}"
    manifest_key = f"{base}/{version}.manifest.parquet"
    meta = {"mixture": spec.name, "version": version, "centroid_version": centroids.version, **provenance}
    manifest = selection.assign(centroid_version=centroids.version)
    write_table(store, manifest_key, pa.Table.from_pandas(manifest, preserve_index=False), meta)

    tokenizer = resolve_tokenizer(spec.tokenizer) if spec.tokenizer else None
    documents = _with_text(store, selection, tokenizer)
    pii: Counter = Counter()
    if spec.redact_pii and len(documents):
        redacted, pii = redact_texts(documents["text"].tolist())
        documents["text"] = redacted
    doc_keys = []
    for i, start in enumerate(range(0, max(len(documents), 1), DOCS_PER_FILE)):
        part = documents.iloc[start : start + DOCS_PER_FILE]
        key = f"{base}/{version}.docs-{i:05d}.parquet"
        write_table(store, key, pa.Table.from_pandas(part, preserve_index=False), meta)
        doc_keys.append(key)
        if "jsonl.gz" in spec.formats:
            jsonl_key = f"{base}/{version}.docs-{i:05d}.jsonl.gz"
            lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part.to_dict(orient="records"))
            write_bytes_checked(store, jsonl_key, gzip.compress(lines.encode(), mtime=0))
            doc_keys.append(jsonl_key)
    exports = _training_exports(store, spec, documents, f"{base}/{version}", tokenizer)
    doc_keys += [key for export in exports.values() for key in export["keys"]]
    comp = composition(selection, centroids)
    card_key = f"{base}/{version}.card.md"
    write_bytes_checked(store, card_key, data_card(spec, result, comp, centroids, version, provenance, pii,
                                                     decontamination, tokenizer, exports).encode())
    # What the gate and publication act on: the version just built, not yet the published one.
    write_bytes_checked(store, f"{base}/latest.json", json.dumps({"mixture": spec.name, "version": version}).encode())
    return WrittenMixture(version, manifest_key, doc_keys, card_key, comp, dict(pii), exports)


def _training_exports(store: Storage, spec: MixtureSpec, documents: pd.DataFrame, prefix: str,
                      tokenizer: TokenizerRef | None) -> dict[str, dict]:
    """The `megatron` and `hf_dataset` formats the spec asks for: one entry per copy, shuffled with
    the spec's seed (crawlmix.mixture.export)."""
    wanted = [f for f in ("megatron", "hf_dataset") if f in spec.formats]
    if not wanted:
        return {}
    order = training_order(documents["repeats"].to_numpy(), spec.seed) if len(documents) else np.empty(0, np.int64)
    copies = documents.iloc[order].reset_index(drop=True)
    exports: dict[str, dict] = {}
    if "megatron" in wanted:
        ids = encode(tokenizer, copies["text"].tolist())
        end_id, end_token = end_of_document_id(load_tokenizer(tokenizer))
        if end_id is not None:
            ids = [np.append(seq, end_id) for seq in ids]
        with checked_write(store, f"{prefix}.megatron.bin") as bin_file, \
                checked_write(store, f"{prefix}.megatron.idx") as idx_file:
            info = write_megatron(bin_file.path, idx_file.path, ids, load_tokenizer(tokenizer).get_vocab_size())
        exports["megatron"] = {**info, "end_of_document": end_token, "keys": [f"{prefix}.megatron.bin",
                                                                               f"{prefix}.megatron.idx"]}
    if "hf_dataset" in wanted:
        import tempfile

        columns = [c for c in ("doc_id", "text", "url", "snapshot", "language", "quality", "n_tokens") if c in copies]
        with tempfile.TemporaryDirectory() as folder:
            keys = []
            for path in write_hf_dataset(folder, copies[columns]):
                key = f"{prefix}.hf_dataset/{path.relative_to(folder).as_posix()}"
                write_bytes_checked(store, key, path.read_bytes())
                keys.append(key)
        exports["hf_dataset"] = {"rows": int(len(copies)), "keys": keys}
    return exports


def _tokens_used(selection: pd.DataFrame) -> pd.Series:
    """Tokens of each copy the mixture uses (`n_tokens` but on a document cut at the boundary)."""
    return selection["n_tokens_used"] if "n_tokens_used" in selection.columns else selection["n_tokens"]


def cut_text(text: str, n_tokens_used: int, n_tokens: int, tokenizer: TokenizerRef | None = None) -> str:
    """The part of a document the mixture uses: its first `n_tokens_used` tokens (the tokenizer's,
    or approximate ones of CHARS_PER_TOKEN characters), the whole text when it is not cut."""
    if n_tokens_used >= n_tokens or not isinstance(text, str):
        return text
    if tokenizer is not None:
        return text[: prefix_chars(tokenizer, text, max(1, n_tokens_used))]
    return text[: max(1, n_tokens_used) * CHARS_PER_TOKEN]


def exact_token_counts(store: Storage, pool: pd.DataFrame, tokenizer: TokenizerRef) -> pd.DataFrame:
    """The pool with `n_tokens` counted by `tokenizer`. Counts are kept per shard and tokenizer
    (`token_counts/<tokenizer digest>/<snapshot>/<shard>.parquet`, every document of the shard), so
    each shard is tokenized once for all mixtures naming that tokenizer."""
    counts: dict[str, int] = {}
    for snapshot, shard in sorted(set(zip(pool["snapshot"], pool["shard"]))):
        key = f"token_counts/{tokenizer.digest}/{snapshot}/{shard}.parquet"
        if store.exists(key):
            table = read_table(store, key)
        else:
            raw = read_table(store, store.key("raw_corpus", snapshot, shard, "parquet"), columns=["doc_id", "text"])
            n = count_tokens(tokenizer, raw.column("text").to_pylist())
            table = pa.table({"doc_id": raw.column("doc_id"), "n_tokens": pa.array(n, pa.int64())})
            write_table(store, key, table, {"tokenizer": tokenizer.path, "tokenizer_sha256": tokenizer.digest})
        counts.update(zip(table.column("doc_id").to_pylist(), table.column("n_tokens").to_pylist()))
    exact = np.asarray([counts[d] for d in pool["doc_id"]], dtype=np.int64)
    return pool.assign(n_tokens=np.maximum(1, exact))


def _with_text(store: Storage, selection: pd.DataFrame, tokenizer: TokenizerRef | None = None) -> pd.DataFrame:
    parts = []
    for (snapshot, shard), group in selection.groupby(["snapshot", "shard"], sort=True):
        raw = read_table(store, store.key("raw_corpus", snapshot, shard, "parquet"), columns=["doc_id", "url", "text"]).to_pandas()
        parts.append(group.merge(raw, on="doc_id", how="left"))
    merged = pd.concat(parts, ignore_index=True) if parts else selection.assign(url=None, text=None)
    if "n_tokens_used" in merged.columns and len(merged):
        cut = merged["n_tokens_used"] < merged["n_tokens"]
        merged.loc[cut, "text"] = [cut_text(t, int(u), int(n), tokenizer) for t, u, n in
                                   merged.loc[cut, ["text", "n_tokens_used", "n_tokens"]].itertuples(index=False)]
    return merged.sort_values(["snapshot", "shard", "doc_id"]).reset_index(drop=True)


def data_card(spec: MixtureSpec, result: MixtureResult, comp: pd.DataFrame, centroids: CentroidTree,
              version: str, provenance: dict, pii: Counter | None = None,
              decontamination: Sequence[dict] = (), tokenizer: TokenizerRef | None = None,
              exports: dict | None = None) -> str:
    selection = result.selection
    quality = selection["quality"].to_numpy()
    counts, edges = np.histogram(quality, bins=10, range=(0, 1))
    lines = [
        f"# Data card: `{spec.name}` (version {version})",
        "",
        f"- policy: **{spec.policy}**, seed {spec.seed}; target {result.target:,} {result.unit}, "
        f"achieved {result.achieved:,} ({100 * (result.achieved - result.target) / max(result.target, 1):+.2f}%)",
        f"- documents: {len(selection):,} distinct, {int(selection['repeats'].sum()):,} with repeats "
        f"(max repeats {int(selection['repeats'].max()) if len(selection) else 0})",
        f"- scope: {', '.join(spec.scope) if spec.scope != 'all' else 'all snapshots'}",
        f"- embedding model: {provenance.get('model_id')} (weights {str(provenance.get('weights_hash'))[:12]}, "
        f"embedding version {provenance.get('embedding_version')})",
        f"- centroids: {centroids.version[:16]} (levels {list(centroids.tree.config.ks)})",
        f"- spec: `{json.dumps(spec.to_dict(), sort_keys=True, default=str)}`",
        "",
        "## Composition by top-level cluster",
        "",
        "| cluster | name | docs | share of docs | tokens | share of tokens |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
        *[f"| {int(r.cluster_id)} | {r.name} | {int(r.docs):,} | {100 * r.doc_share:.1f}% | {int(r.tokens):,} | "
          f"{100 * r.share:.1f}% |" for r in comp.itertuples()],
        "",
        "## Constraints",
        "",
        *constraint_lines(spec, result),
        "",
        "## Filters applied and what they removed",
        "",
        f"- minimum quality {spec.filters.min_quality}; drop semantic duplicates: {spec.filters.drop_semantic_duplicates}; "
        f"excluded clusters: {[str(c) for c in spec.filters.exclude_clusters] or 'none'}; "
        f"languages: {', '.join(spec.filters.languages) or 'all'}; "
        f"minimum language score {spec.filters.min_language_score}",
        *[f"- {name}: {n:,} documents removed" for name, n in result.filtered_out.items()],
        "",
        *language_lines(selection),
        *token_lines(tokenizer, exports or {}),
        *pii_lines(spec, pii or Counter()),
        *decontamination_lines(spec, decontamination),
        "## Quality distribution of the selection",
        "",
        "| quality | docs |",
        "| --- | ---: |",
        *[f"| {lo:.1f}-{hi:.1f} | {int(c):,} |" for c, lo, hi in zip(counts, edges[:-1], edges[1:])],
    ]
    if "history" in result.details:
        lines += ["", "## Mixture search", "",
                  f"{result.details['n_evaluated']} candidates evaluated; best score {result.details['best_score']:.4f} "
                  f"in round {result.details['best_round']}."]
    return "\n".join(lines) + "\n"


def decontamination_lines(spec: MixtureSpec, report: Sequence[dict]) -> list[str]:
    if not report:
        return []
    lines = ["## Benchmark decontamination", "",
             f"Documents sharing a run of {spec.decontamination.ngram} words with an item of these evaluation "
             "sets are left out (words lower-cased, punctuation and line breaks ignored):", "",
             "| set | version | items | items too short to check | documents in scope matched |",
             "| --- | --- | ---: | ---: | ---: |"]
    lines += [f"| {r['name']} | {r['version']} | {r['items']:,} | {r['unchecked_items']:,} | {r['documents']:,} |"
              for r in report]
    return lines + [""]


def token_lines(tokenizer: TokenizerRef | None, exports: dict) -> list[str]:
    lines = ["## Tokens and training formats", ""]
    lines.append(f"- tokens counted with {tokenizer.describe()} (its own tokens, no special tokens)" if tokenizer else
                 f"- tokens are approximate: characters / {CHARS_PER_TOKEN} (no tokenizer named in the spec)")
    if "megatron" in exports:
        m = exports["megatron"]
        lines.append(f"- Megatron-LM indexed dataset (`.megatron.bin` + `.idx`, {m['dtype']}): {m['sequences']:,} "
                     f"documents, {m['tokens']:,} tokens, each document ending with "
                     + (f"`{m['end_of_document']}`" if m["end_of_document"] else "no end-of-document token (the tokenizer has none)"))
    if "hf_dataset" in exports:
        lines.append(f"- Hugging Face datasets folder (`.hf_dataset/`, `load_from_disk`): {exports['hf_dataset']['rows']:,} rows")
    if exports:
        lines.append("- one entry per copy of a document, shuffled with the spec's seed")
    return lines + [""]


def pii_lines(spec: MixtureSpec, pii: Counter) -> list[str]:
    if not spec.redact_pii:
        return ["## Personal data", "", "- not redacted (`redact_pii: false`): the text is as crawled", ""]
    kinds = ", ".join(f"{pii.get(kind, 0):,} {label}" for kind, label in (
        ("email", "e-mail addresses"), ("ip_address", "public IP addresses"), ("phone", "phone numbers")))
    return ["## Personal data", "",
            f"- redacted in the exported text: {kinds}, in {pii.get('documents', 0):,} documents "
            f"(placeholders {', '.join(PLACEHOLDERS.values())})", ""]


def language_lines(selection: pd.DataFrame) -> list[str]:
    """The card's languages section: documents per identified language and which quality rules
    judged them (English-only and whitespace-word rules pass documents they were not made for)."""
    if "language" not in selection.columns or not len(selection):
        return []
    every = all_rule_columns()
    counts = selection.groupby("language")["repeats"].sum().sort_values(ascending=False)
    lines = ["## Languages and the quality rules applied", "",
             "| language | docs | share | rules applied | rules not applied |", "| --- | ---: | ---: | ---: | --- |"]
    for language, docs in counts.items():
        applied = rules_applied(str(language))
        skipped = [r.removeprefix("pass_") for r in every if r not in applied]
        lines.append(f"| {language} | {int(docs):,} | {100 * docs / counts.sum():.1f}% | {len(applied)} of {len(every)} "
                     f"| {', '.join(skipped) or '-'} |")
    return lines + [""]


def constraint_lines(spec: MixtureSpec, result: MixtureResult) -> list[str]:
    """What bounded the mixture, in the card's words: size, repeats, share cap, duplicates, cuts."""
    details = result.details
    pool_total = details.get("pool_total")
    size = f"- size: {spec.size.describe()}"
    if pool_total is not None:
        size += f" -> target {result.target:,} {result.unit} of a filtered pool of {pool_total:,.0f} {result.unit}"
    once = spec.policy in ("balanced", "quality_topk")
    repeats = int(spec.options.get("max_repeats", 1))
    lines = [size, "- max_repeats: 1 (each document at most once)" if once or repeats == 1 else
             f"- max_repeats: {repeats} (a document appears at most {repeats} times)"]
    if spec.policy == "search":
        requested = float(spec.options.get("max_share", details.get("max_share_requested", 1.0)))
        held = details.get("max_share", requested)
        share = (f"- max_share: {requested:g} of the mixture's {result.unit} per top-level cluster (the search "
                 f"weighs clusters in the size's unit; the other unit's shares may differ)")
        if held > requested + 1e-12:
            share += f" (raised to {held:.3g}: too few top-level clusters can take weight for {requested:g})"
        lines.append(share)
        lines.append(f"- search: {details.get('n_evaluated', 0)} candidates, each within max_share and max_repeats; "
                     f"evaluation sample {details.get('eval_sample_documents')} documents"
                     + (f", n-gram proxy token budget {details['token_budget']:,}" if details.get("token_budget") else ""))
    lines.append("- duplicates: exact copies never selected; removed semantic duplicates "
                 + ("dropped" if spec.filters.drop_semantic_duplicates else
                    "allowed, at most one document per duplicate group"))
    cut = int(details.get("cut_documents", 0))
    if cut:
        lines.append(f"- cut at the boundary: {cut} document(s) used in part (`n_tokens_used` < `n_tokens` in the "
                     "manifest; the documents files hold only that part)")
    return lines


def current_pointer_key(name: str) -> str:
    return f"final_mixtures/{name}/current.json"


def publish(store: Storage, name: str, version: str, card_key: str) -> str:
    """Move the mixture's `current` pointer to `version` (one atomic write)."""
    key = current_pointer_key(name)
    write_bytes_checked(store, key, json.dumps({"mixture": name, "version": version, "card": card_key}, sort_keys=True).encode())
    return key


def achieved_error(result_target: int, achieved: int) -> float:
    return abs(achieved - result_target) / result_target if result_target else math.inf
