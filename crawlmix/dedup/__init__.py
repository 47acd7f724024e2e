"""Fuzzy deduplication: MinHash signatures over word shingles and LSH banding (pure numpy)."""

from crawlmix.dedup.minhash import PRESETS, MinHashConfig, band_keys, candidate_groups, minhash_signatures

__all__ = ["PRESETS", "MinHashConfig", "band_keys", "candidate_groups", "minhash_signatures"]
