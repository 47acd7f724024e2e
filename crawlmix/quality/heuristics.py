"""Rule-based document quality signals in the style of Gopher, C4 and FineWeb.

Pure Python (plus pandas/numpy), no Dagster. ``heuristic_signals(texts)`` returns one row per text
with numeric signal columns and boolean ``pass_*`` flags:

* one flag per individual rule, named ``pass_<family>_<rule>`` (see ``rule_columns()``),
* one flag per family (``pass_gopher``, ``pass_c4``, ``pass_fineweb``): all of its rules passed,
* ``pass_all``: every family passed.

Each rule belongs to exactly one family, so per-rule removal fractions add up cleanly.

Rules are made for languages (``rule_applies``): Gopher's stop words and mean word length for
English only; the rules counting whitespace words or Latin sentence punctuation not for languages
written without spaces (Japanese, Chinese, Thai...). Given each text's language, a rule that was
not made for it passes the text.

Definitions used by the signals (all documented here once):

* *words*: whitespace-separated tokens. For length, stop-word and n-gram signals a word is the
  token lower-cased with leading/trailing punctuation stripped (tokens that are all punctuation are
  dropped there). ``n_words`` counts raw tokens (Gopher counts words the same way).
* *lines*: ``str.splitlines()`` with surrounding whitespace stripped; empty lines are ignored.
  Extracted web text has one paragraph or list item per line, so line rules act on paragraphs.
* *sentences*: runs ending in ``.``, ``!`` or ``?`` (optionally followed by closing quotes or
  brackets) that are followed by whitespace or the end of the text.

Rules and their sources (thresholds are the ``HeuristicThresholds`` defaults):

gopher (Rae et al. 2021, "Scaling Language Models", appendix A.1.1 quality filters)
    word_count      50 <= n_words <= 100,000
    mean_word_len   3 <= mean word length <= 10
    symbol_ratio    (``#`` + ``...``/``…``) / n_words <= 0.1
    bullet_lines    lines starting with a bullet <= 90%
    ellipsis_lines  lines ending with an ellipsis <= 30%
    alpha_words     words containing an alphabetic character >= 80%
    stop_words      >= 2 occurrences of {the, be, to, of, and, that, have, with}
    dup_lines       duplicated lines (every occurrence after the first) <= 30% of lines
    top_ngram       characters covered by the most frequent word 2/3/4-gram
                    <= 20% / 18% / 16% of word characters
    dup_ngram       characters in duplicated word 5..10-grams <= 15% .. 10% (see below)
c4 (Raffel et al. 2020, T5 paper section 2.2)
    bad_lines       C4 *drops lines* that mention "javascript" and cookie/privacy boilerplate. We do
                    not edit text here (the extractor owns the text), so we *flag documents* where
                    the fraction of non-empty lines containing a bad pattern exceeds
                    ``max_bad_pattern_line_frac`` (0.2, our choice: a page that is mostly
                    boilerplate is junk, one mention of JavaScript among 5 paragraphs is not).
    fatal_patterns  C4 drops any page containing "lorem ipsum": any hit of a ``fatal_patterns``
                    phrase fails the document.
    min_sentences   C4 drops pages with fewer than 5 sentences (after its line filtering; we count
                    on the whole text).
    (C4's "drop pages containing a curly bracket" rule is omitted on purpose: it removes every
    technical page with a code sample, which is exactly what our sample corpus is.)
fineweb (Penedo et al. 2024, FineWeb custom filters)
    line_punct      fraction of lines ending in terminal punctuation >= 0.12. This is FineWeb's
                    document-level form of C4's "keep only lines ending in terminal punctuation".
    short_lines     fraction of lines shorter than 30 characters <= 0.67
    dup_line_chars  fraction of characters in duplicated lines (occurrences after the first) < 0.1

Compact Gopher n-gram repetition: words are lower-cased and stripped of punctuation, and only the
first ``ngram_max_words`` (20,000) words are used, which bounds the cost on 1M-character documents.
*Top n-gram fraction* (n = 2, 3, 4): count of the most frequent n-gram times its character length,
over all word characters; only counts when that n-gram occurs at least twice. *Duplicate n-gram
fraction* (n = 5..10): the characters of word positions covered by a repeated occurrence of an
n-gram (every occurrence after the first; a position is counted once even if several n-grams cover
it), over all word characters. The ``top_ngram_frac`` and ``dup_ngram_frac`` columns report the
largest value over n (for n-gram sizes with a threshold); the rules compare each n with its own
threshold.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

RULE_FAMILIES: tuple[str, ...] = ("gopher", "c4", "fineweb")

# Gopher stop-word list (Rae et al. 2021, A.1.1).
GOPHER_STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
# Characters that start a bullet line (Gopher: "start with a bullet point").
BULLET_PREFIXES = ("•", "‣", "◦", "⁃", "∙", "·", "●", "○", "▪", "▫", "■", "□", "►", "▶", "➢",
                   "➤", "✓", "✔", "-", "*", "–", "—")
ELLIPSES = ("...", "…")
TERMINAL_PUNCT = (".", "!", "?", '"', "'", "”", "’", "»", ")")  # C4: period, !, ?, end quote
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*(?=\s|$)")
_PUNCT_STRIP = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~“”‘’«»…–—·•"


@dataclass(frozen=True)
class HeuristicThresholds:
    """Thresholds of the rules. Defaults are the published values, each cited."""

    # Gopher: "fewer than 50 or more than 100,000 words" removed.
    min_words: int = 50
    max_words: int = 100_000
    # Gopher: mean word length outside 3..10 characters removed.
    min_mean_word_len: float = 3.0
    max_mean_word_len: float = 10.0
    # Gopher: symbol-to-word ratio > 0.1 for hash symbol or ellipsis removed.
    max_symbol_word_ratio: float = 0.1
    # Gopher: more than 90% of lines starting with a bullet point removed.
    max_bullet_line_frac: float = 0.9
    # Gopher: more than 30% of lines ending with an ellipsis removed.
    max_ellipsis_line_frac: float = 0.3
    # Gopher: fewer than 80% of words with at least one alphabetic character removed.
    min_alpha_word_frac: float = 0.8
    # Gopher: must contain at least two of the stop words (we count occurrences).
    min_stop_words: int = 2
    # Gopher repetition: duplicate-line fraction > 0.30 removed.
    max_dup_line_frac: float = 0.3
    # Gopher repetition: top 2/3/4-gram character fractions 0.20 / 0.18 / 0.16.
    max_top_ngram_frac: tuple[tuple[int, float], ...] = ((2, 0.20), (3, 0.18), (4, 0.16))
    # Gopher repetition: duplicate 5..10-gram character fractions 0.15 .. 0.10.
    max_dup_ngram_frac: tuple[tuple[int, float], ...] = (
        (5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))
    # Cost bound for the n-gram signals (ours): only the first N words are examined.
    ngram_max_words: int = 20_000
    # C4 line-level boilerplate phrases (lower-case substrings). C4 drops such lines; we flag
    # documents where more than `max_bad_pattern_line_frac` of lines match (our threshold).
    bad_patterns: tuple[str, ...] = (
        "javascript", "lorem ipsum", "cookie policy", "use cookies", "uses cookies",
        "accept cookies", "privacy policy", "terms of use", "terms of service",
        "all rights reserved")
    max_bad_pattern_line_frac: float = 0.2
    # C4: any page containing "lorem ipsum" removed.
    fatal_patterns: tuple[str, ...] = ("lorem ipsum",)
    # C4: pages with fewer than 5 sentences removed.
    min_sentences: int = 5
    # FineWeb: fraction of lines ending with punctuation <= 0.12 removed (document-level version
    # of C4's terminal-punctuation line filter).
    min_terminal_punct_line_frac: float = 0.12
    # FineWeb: fraction of lines shorter than 30 characters >= 0.67 removed.
    short_line_chars: int = 30
    max_short_line_frac: float = 0.67
    # FineWeb: fraction of characters in duplicated lines >= 0.1 removed.
    max_dup_line_char_frac: float = 0.1

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# family -> (rule name, list of signal columns it reads) ; order is the column order.
_RULES: dict[str, tuple[str, ...]] = {
    "gopher": ("word_count", "mean_word_len", "symbol_ratio", "bullet_lines", "ellipsis_lines",
               "alpha_words", "stop_words", "dup_lines", "top_ngram", "dup_ngram"),
    "c4": ("bad_lines", "fatal_patterns", "min_sentences"),
    "fineweb": ("line_punct", "short_lines", "dup_line_chars"),
}


# Which languages a rule was made for (None: every language). Gopher's stop words and word-length
# band are English figures (Rae et al. filtered English text). Rules that count whitespace words or
# Latin sentence punctuation mean nothing for scripts written without spaces: there every text would
# be "one word" and "no sentence".
NO_SPACE_LANGUAGES = frozenset({"ja", "zh", "th", "lo", "km", "my", "bo", "wuu", "yue"})
_ENGLISH_ONLY = ("pass_gopher_mean_word_len", "pass_gopher_stop_words")
_SPACE_DELIMITED = ("pass_gopher_word_count", "pass_gopher_top_ngram", "pass_gopher_dup_ngram",
                    "pass_c4_min_sentences", "pass_fineweb_line_punct")


def rule_applies(rule: str, language: str | None) -> bool:
    """Whether ``rule`` (a ``pass_*`` column) judges a document in ``language``; any rule applies
    when the language is unknown (None or "und")."""
    if language is None or language == "und":
        return True
    if rule in _ENGLISH_ONLY:
        return language == "en"
    if rule in _SPACE_DELIMITED:
        return language not in NO_SPACE_LANGUAGES
    return True


def rules_applied(language: str | None) -> list[str]:
    """The ``pass_*`` rule columns that judge documents in ``language``, in column order."""
    return [rule for rule in all_rule_columns() if rule_applies(rule, language)]


def rule_columns() -> dict[str, list[str]]:
    """Family -> its individual ``pass_*`` rule columns, in column order."""
    return {fam: [f"pass_{fam}_{r}" for r in rules] for fam, rules in _RULES.items()}


def all_rule_columns() -> list[str]:
    """All individual rule columns (no family or ``pass_all`` columns)."""
    return [c for cols in rule_columns().values() for c in cols]


SIGNAL_COLUMNS: tuple[str, ...] = (
    "n_chars", "n_words", "n_lines", "mean_word_len", "symbol_word_ratio", "bullet_line_frac",
    "ellipsis_line_frac", "alpha_word_frac", "stop_words", "dup_line_frac", "top_ngram_frac",
    "dup_ngram_frac", "bad_pattern_hits", "bad_pattern_line_frac", "fatal_pattern_hits",
    "n_sentences", "terminal_punct_line_frac", "short_line_frac", "dup_line_char_frac",
)


def _ngram_fractions(words: list[str], thr: HeuristicThresholds) -> tuple[dict[int, float],
                                                                             dict[int, float]]:
    """Gopher-style top n-gram and duplicate n-gram character fractions (see module doc)."""
    words = words[: thr.ngram_max_words]
    lens = [len(w) for w in words]
    total = sum(lens)
    top: dict[int, float] = {}
    dup: dict[int, float] = {}
    if total == 0:
        return ({n: 0.0 for n, _ in thr.max_top_ngram_frac},
                {n: 0.0 for n, _ in thr.max_dup_ngram_frac})
    for n, _ in thr.max_top_ngram_frac:
        if len(words) < n:
            top[n] = 0.0
            continue
        counts = Counter(zip(*(words[i:] for i in range(n))))
        gram, c = counts.most_common(1)[0]
        top[n] = (c * sum(len(w) for w in gram) / total) if c > 1 else 0.0
    for n, _ in thr.max_dup_ngram_frac:
        if len(words) < n:
            dup[n] = 0.0
            continue
        seen: set[tuple[str, ...]] = set()
        covered = bytearray(len(words))
        for i, gram in enumerate(zip(*(words[j:] for j in range(n)))):
            if gram in seen:
                covered[i:i + n] = b"\x01" * n
            else:
                seen.add(gram)
        dup[n] = sum(l for l, c in zip(lens, covered) if c) / total
    return top, dup


def _doc_signals(text: str, thr: HeuristicThresholds) -> tuple[dict[str, float], bool, bool]:
    tokens = text.split()
    n_words = len(tokens)
    words = [w for w in (t.strip(_PUNCT_STRIP).lower() for t in tokens) if w]
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    n_lines = len(lines)
    lower = text.lower()

    mean_word_len = (sum(len(w) for w in words) / len(words)) if words else 0.0
    n_symbols = text.count("#") + text.count("...") + text.count("…")
    alpha = sum(1 for t in tokens if any(ch.isalpha() for ch in t))
    stop = sum(1 for w in words if w in GOPHER_STOP_WORDS)

    def line_frac(pred) -> float:
        return (sum(1 for ln in lines if pred(ln)) / n_lines) if n_lines else 0.0

    line_counts = Counter(lines)
    dup_lines = sum(c - 1 for c in line_counts.values())
    dup_line_chars = sum((c - 1) * len(ln) for ln, c in line_counts.items())
    line_chars = sum(len(ln) for ln in lines)
    bad_pats = tuple(p.lower() for p in thr.bad_patterns)
    bad_hits = sum(1 for ln in lines if any(p in ln.lower() for p in bad_pats)) if bad_pats else 0
    fatal_hits = sum(lower.count(p.lower()) for p in thr.fatal_patterns)
    top, dup = _ngram_fractions(words, thr)
    top_ok = all(top[n] <= t for n, t in thr.max_top_ngram_frac)
    dup_ok = all(dup[n] <= t for n, t in thr.max_dup_ngram_frac)

    sig = {
        "n_chars": len(text),
        "n_words": n_words,
        "n_lines": n_lines,
        "mean_word_len": mean_word_len,
        "symbol_word_ratio": (n_symbols / n_words) if n_words else 0.0,
        "bullet_line_frac": line_frac(lambda ln: ln.startswith(BULLET_PREFIXES)),
        "ellipsis_line_frac": line_frac(lambda ln: ln.endswith(ELLIPSES)),
        "alpha_word_frac": (alpha / n_words) if n_words else 0.0,
        "stop_words": stop,
        "dup_line_frac": (dup_lines / n_lines) if n_lines else 0.0,
        "top_ngram_frac": max(top.values(), default=0.0),
        "dup_ngram_frac": max(dup.values(), default=0.0),
        "bad_pattern_hits": bad_hits,
        "bad_pattern_line_frac": (bad_hits / n_lines) if n_lines else 0.0,
        "fatal_pattern_hits": fatal_hits,
        "n_sentences": len(_SENTENCE_END.findall(text)),
        "terminal_punct_line_frac": line_frac(lambda ln: ln.endswith(TERMINAL_PUNCT)),
        "short_line_frac": line_frac(lambda ln: len(ln) < thr.short_line_chars),
        "dup_line_char_frac": (dup_line_chars / line_chars) if line_chars else 0.0,
    }
    return sig, top_ok, dup_ok


def heuristic_signals(texts: Sequence[str],
                      thresholds: HeuristicThresholds = HeuristicThresholds(),
                      languages: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per text: the signal columns (``SIGNAL_COLUMNS``) and the ``pass_*`` flags.

    ``None`` is treated as the empty string (and fails the word-count rule). With ``languages``
    (one code per text), a rule not made for a text's language (``rule_applies``) passes it: the
    rule has nothing to say about that text, so it neither removes it nor lowers its quality.
    """
    thr = thresholds
    rows, top_ok, dup_ok = [], [], []
    for t in texts:
        s, a, b = _doc_signals(t or "", thr)
        rows.append(s)
        top_ok.append(a)
        dup_ok.append(b)
    df = pd.DataFrame(rows, columns=list(SIGNAL_COLUMNS))
    int_cols = ["n_chars", "n_words", "n_lines", "stop_words", "bad_pattern_hits",
                "fatal_pattern_hits", "n_sentences"]
    df[int_cols] = df[int_cols].astype(np.int64)
    float_cols = [c for c in SIGNAL_COLUMNS if c not in int_cols]
    df[float_cols] = df[float_cols].astype(np.float64)

    f = {
        "pass_gopher_word_count": df.n_words.between(thr.min_words, thr.max_words),
        "pass_gopher_mean_word_len": df.mean_word_len.between(thr.min_mean_word_len,
                                                              thr.max_mean_word_len),
        "pass_gopher_symbol_ratio": df.symbol_word_ratio <= thr.max_symbol_word_ratio,
        "pass_gopher_bullet_lines": df.bullet_line_frac <= thr.max_bullet_line_frac,
        "pass_gopher_ellipsis_lines": df.ellipsis_line_frac <= thr.max_ellipsis_line_frac,
        "pass_gopher_alpha_words": df.alpha_word_frac >= thr.min_alpha_word_frac,
        "pass_gopher_stop_words": df.stop_words >= thr.min_stop_words,
        "pass_gopher_dup_lines": df.dup_line_frac <= thr.max_dup_line_frac,
        "pass_gopher_top_ngram": pd.Series(top_ok, dtype=bool, index=df.index),
        "pass_gopher_dup_ngram": pd.Series(dup_ok, dtype=bool, index=df.index),
        "pass_c4_bad_lines": df.bad_pattern_line_frac <= thr.max_bad_pattern_line_frac,
        "pass_c4_fatal_patterns": df.fatal_pattern_hits == 0,
        "pass_c4_min_sentences": df.n_sentences >= thr.min_sentences,
        "pass_fineweb_line_punct": df.terminal_punct_line_frac >= thr.min_terminal_punct_line_frac,
        "pass_fineweb_short_lines": df.short_line_frac <= thr.max_short_line_frac,
        "pass_fineweb_dup_line_chars": df.dup_line_char_frac < thr.max_dup_line_char_frac,
    }
    assert list(f) == all_rule_columns()
    if languages is not None and len(languages) != len(df):
        raise ValueError(f"{len(languages)} languages for {len(df)} texts")
    for name, col in f.items():
        col = col.astype(bool)
        if languages is not None:
            exempt = np.fromiter((not rule_applies(name, lang) for lang in languages), bool, len(df))
            col = col | exempt
        df[name] = col
    for fam, cols in rule_columns().items():
        df[f"pass_{fam}"] = df[cols].all(axis=1) if len(df) else pd.Series(dtype=bool)
    df["pass_all"] = (df[[f"pass_{fam}" for fam in RULE_FAMILIES]].all(axis=1)
                      if len(df) else pd.Series(dtype=bool))
    return df
