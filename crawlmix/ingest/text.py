"""Text normalization, hashing, word counts, binary sniffing and charset decoding of raw payloads."""

from __future__ import annotations

import codecs
import hashlib
import re
import unicodedata
from collections.abc import Iterator

import charset_normalizer
from resiliparse.parse.encoding import detect_encoding


class UndecodableError(UnicodeError):
    """No candidate charset decodes the payload into clean text."""


# ---------------------------------------------------------------------------------------------
# Normalization, hashing, counting

# Control characters other than \t and line breaks (str.splitlines handles \r, \v, \f, \x1c-\x1e,
# \x85), lone surrogates (JSON can carry them; Parquet cannot store them), stray byte-order marks.
_UNWANTED_CHARS = re.compile(r"[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufeff]")
_FOUR_NEWLINES = "\n\n\n\n"  # = 3 blank lines
_CJK_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK_CHAR = re.compile(rf"[{_CJK_CHARS}]")
_CJK_AWARE_WORD = re.compile(rf"[{_CJK_CHARS}]|[^\s{_CJK_CHARS}]+")


def normalize_text(text: str) -> str:
    """NFC, no control characters (keeps \\t), \\n line breaks, no trailing spaces per line, at most
    two consecutive blank lines, no leading/trailing whitespace. Idempotent."""
    text = _UNWANTED_CHARS.sub("", text)
    text = unicodedata.normalize("NFC", text)
    text = "\n".join([line.rstrip() for line in text.splitlines()])
    while _FOUR_NEWLINES in text:
        text = text.replace(_FOUR_NEWLINES, "\n\n\n")
    return text.strip()


def content_hash(text: str) -> str:
    """blake2b-128 hex digest of the normalized text (normalizing is a no-op on document texts)."""
    return hashlib.blake2b(normalize_text(text).encode("utf-8"), digest_size=16).hexdigest()


def make_doc_id(snapshot: str, source_name: str, source_offset: int) -> str:
    """32 hex chars naming one record of one snapshot: unique across snapshots and shards.

    Built from where the record sits (snapshot, file name inside the snapshot, offset), not from
    its URL and content: a re-crawl of a page in a later snapshot, or a copy in another shard, is a
    separate document whose duplicate status dedup decides, never an id collision.
    """
    key = f"{snapshot}\x00{source_name}\x00{int(source_offset)}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(key, digest_size=16).hexdigest()


def count_words(text: str) -> int:
    """Whitespace-separated tokens; each CJK character counts as one word (those scripts use no spaces)."""
    if text.isascii() or not _CJK_CHAR.search(text):
        return len(text.split())
    return len(_CJK_AWARE_WORD.findall(text))


# ---------------------------------------------------------------------------------------------
# Binary sniffing

_BINARY_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "PDF"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"PK\x03\x04", "zip"),
    (b"\x1f\x8b\x08", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "OLE (doc/xls)"),
    (b"\x7fELF", "ELF"),
    (b"MZ\x90\x00", "Windows executable"),
    (b"wOFF", "WOFF font"),
    (b"wOF2", "WOFF2 font"),
    (b"OggS", "Ogg"),
    (b"ID3", "MP3"),
    (b"fLaC", "FLAC"),
    (b"\x1aE\xdf\xa3", "Matroska/WebM"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\xca\xfe\xba\xbe", "Java class"),
)
_SNIFF_BYTES = 8192


def sniff_binary(payload: bytes) -> str | None:
    """A short description of why the payload is binary ("PNG magic", "NUL bytes"), else None."""
    for magic, kind in _BINARY_MAGIC:
        if payload.startswith(magic):
            return f"{kind} magic"
    if payload.startswith(b"RIFF") or payload[4:8] == b"ftyp":
        return "RIFF/MP4 magic"
    sample = payload[:_SNIFF_BYTES]
    # A few stray NULs occur in real pages (normalization drops them); binaries are full of them.
    if sample.count(0) > len(sample) // 1000 and _unicode_bom(sample) is None and _utf16_without_bom(sample) is None:
        return "NUL bytes"
    return None


# ---------------------------------------------------------------------------------------------
# Charset decoding

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_META_CHARSET = re.compile(rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]{1,40})""", re.IGNORECASE)
_META_SCAN_BYTES = 4096
# Labels Python does not know, and declarations browsers decode with a superset (WHATWG encoding
# standard): decoding with the superset is what the page's author saw. The label itself comes
# second for codecs whose superset is not byte-identical on common text.
_LABEL_ALIASES = {"x-sjis": "cp932", "windows-31j": "cp932", "x-euc-jp": "euc_jp", "x-gbk": "gb18030"}
_BROWSER_CODECS = {
    "ascii": ("cp1252",),
    "iso8859-1": ("cp1252", "iso8859-1"),
    "cp1252": ("cp1252", "iso8859-1"),
    "iso8859-9": ("cp1254", "iso8859-9"),
    "tis-620": ("cp874",),
    "iso8859-11": ("cp874",),
    "gb2312": ("gb18030",),
    "gbk": ("gb18030",),
    "euc_kr": ("cp949",),
    "shift_jis": ("shift_jis", "cp932"),
    "big5": ("big5", "big5hkscs", "cp950"),
}
# Detectors may only propose what browsers can decode (WHATWG encoding standard): on thin evidence
# they suggest DOS and Mac code pages (cp852, cp437, mac_latin2) that no web page uses.
_WEB_CODECS = frozenset(
    codecs.lookup(label).name
    for label in (
        "utf-8", "cp866", "iso8859-2", "iso8859-3", "iso8859-4", "iso8859-5", "iso8859-6", "iso8859-7",
        "iso8859-8", "iso8859-10", "iso8859-13", "iso8859-14", "iso8859-15", "iso8859-16", "koi8-r",
        "koi8-u", "mac-roman", "mac-cyrillic", "cp874", "cp1250", "cp1251", "cp1252", "cp1253", "cp1254",
        "cp1255", "cp1256", "cp1257", "cp1258", "gb18030", "big5", "big5hkscs", "cp950", "euc_jp",
        "iso2022_jp", "shift_jis", "cp932", "cp949", "utf-16-le", "utf-16-be",
    )
)
# Few non-ASCII bytes, none in runs of 3+: accented letters in Western text. Too little for a
# detector to tell Latin code pages apart, and windows-1252 is by far the most common of them.
_FEW_HIGH_BYTES = 32
_HIGH_BYTE_RUN = re.compile(rb"[\x80-\xff]{3,}")
_HIGH_BYTES = bytes(range(0x80, 0x100))
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_MOSTLY_UTF8 = 0.9  # share of non-ASCII bytes in valid UTF-8 sequences
# Signs of a wrong guess: U+FFFD, and from single-byte codecs C1 controls (what bytes 0x80-0x9f
# become in Latin-1, where the page meant cp1252 or something else).
_C1_CONTROLS = re.compile(r"[\x80-\x9f]")
_MAX_SUSPICIOUS_SHARE = 0.001
_LENIENT_UTF8 = "utf-8/replace"  # candidate: UTF-8 with a few invalid bytes replaced


def decode_html_bytes(payload: bytes, declared_charset: str | None) -> tuple[str, str]:
    """Decode an HTML (or text) payload; returns (text, codec name used).

    Candidates in order: byte-order mark; UTF-16 shape; UTF-8 (legacy-encoded non-ASCII text is
    practically never valid UTF-8, so a page that is valid UTF-8 is UTF-8 whatever it declares);
    the HTTP charset; the <meta> charset; then detection: UTF-8 with a few bad bytes (when nearly
    all non-ASCII bytes form UTF-8 sequences), windows-1252 for a few isolated accented bytes,
    uchardet, charset-normalizer. A candidate must decode strictly and give text without U+FFFD or
    (single-byte codecs) C1 controls; otherwise the next one is tried. When none is clean, the
    least bad is used if under 0.1% of its characters are suspicious, else UndecodableError.
    """
    return _first_clean_decoding(payload, _html_candidates(payload, declared_charset))


def decode_text_bytes(payload: bytes) -> tuple[str, str]:
    """Decode a plain-text payload (WET, JSONL): UTF-8 expected, detection as a fallback."""
    return _first_clean_decoding(payload, _text_candidates(payload))


def _html_candidates(payload: bytes, declared_charset: str | None) -> Iterator[str]:
    yield from _unicode_candidates(payload)
    if declared_charset:
        yield from _codecs_for_label(declared_charset)
    meta_label = _meta_charset(payload)
    if meta_label:
        yield from _codecs_for_label(meta_label)
    yield from _detected_candidates(payload)


def _text_candidates(payload: bytes) -> Iterator[str]:
    yield from _unicode_candidates(payload)
    yield from _detected_candidates(payload)


def _unicode_candidates(payload: bytes) -> Iterator[str]:
    bom_codec = _unicode_bom(payload)
    if bom_codec:
        yield bom_codec
    utf16_codec = _utf16_without_bom(payload[:_SNIFF_BYTES])
    if utf16_codec:
        yield utf16_codec
    if not (payload.isascii() and b"\x1b" in payload):  # ESC in 7-bit text: ISO-2022-JP/KR/CN
        yield "utf-8"


def _detected_candidates(payload: bytes) -> Iterator[str]:
    high_bytes = len(payload) - len(payload.translate(None, _HIGH_BYTES))
    if high_bytes and sum(map(len, _UTF8_SEQUENCE.findall(payload))) >= _MOSTLY_UTF8 * high_bytes:
        yield _LENIENT_UTF8
    if high_bytes <= _FEW_HIGH_BYTES and not _HIGH_BYTE_RUN.search(payload):
        yield "cp1252"
    # uchardet before charset-normalizer: charset-normalizer takes short Western pages for
    # cp1257/cp1250 (é becomes ¢, č...); uchardet gets them right and is ~100x faster.
    detected = detect_encoding(payload, html5_compatible=False)
    if detected:
        yield from _web_codecs_for_label(detected)
    best = charset_normalizer.from_bytes(payload).best()
    if best is not None:
        yield from _web_codecs_for_label(best.encoding)


def _web_codecs_for_label(label: str) -> tuple[str, ...]:
    return tuple(codec for codec in _codecs_for_label(label) if codec in _WEB_CODECS)


def _first_clean_decoding(payload: bytes, candidates: Iterator[str]) -> tuple[str, str]:
    tried: list[str] = []
    least_bad: tuple[float, str, str] | None = None
    for candidate in candidates:
        if candidate in tried:
            continue
        tried.append(candidate)
        text = _decode(payload, candidate)
        if text is None:
            continue
        codec = "utf-8" if candidate == _LENIENT_UTF8 else candidate
        share = _suspicious_share(text, single_byte=len(text) == len(payload))
        if share == 0 or (candidate == _LENIENT_UTF8 and share <= _MAX_SUSPICIOUS_SHARE):
            return _strip_bom(text), codec
        if least_bad is None or share < least_bad[0]:
            least_bad = (share, text, codec)
    if least_bad is not None and least_bad[0] <= _MAX_SUSPICIOUS_SHARE:
        return _strip_bom(least_bad[1]), least_bad[2]
    raise UndecodableError(f"no clean decoding (tried {', '.join(tried) or 'nothing'})")


def _suspicious_share(text: str, single_byte: bool) -> float:
    suspicious = text.count("\ufffd")
    if single_byte and not text.isascii():
        suspicious += len(_C1_CONTROLS.findall(text))
    return suspicious / max(len(text), 1)


def _decode(payload: bytes, candidate: str) -> str | None:
    if candidate == _LENIENT_UTF8:
        return payload.decode("utf-8", errors="replace")
    try:
        return payload.decode(candidate)
    except (UnicodeDecodeError, LookupError):
        return None


def _strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text


def _codecs_for_label(label: str) -> tuple[str, ...]:
    """Python codecs to try for a charset label, most browser-like first; () for unknown labels."""
    label = label.strip().strip("\"'").lower()
    try:
        name = codecs.lookup(_LABEL_ALIASES.get(label, label)).name
    except LookupError:
        return ()
    return _BROWSER_CODECS.get(name, (name,))


def _meta_charset(payload: bytes) -> str | None:
    match = _META_CHARSET.search(payload, 0, _META_SCAN_BYTES)
    if not match:
        return None
    label = match.group(1).decode("ascii").lower()
    # A meta tag readable as ASCII cannot be in UTF-16 (WHATWG: such declarations mean UTF-8).
    return "utf-8" if label.startswith("utf-16") else label


def _unicode_bom(payload: bytes) -> str | None:
    for bom, codec in _BOMS:
        if payload.startswith(bom):
            return codec
    return None


def _utf16_without_bom(sample: bytes) -> str | None:
    """UTF-16 of mostly-ASCII text has NULs in every other byte; which half gives the byte order."""
    if len(sample) < 16:
        return None
    even_nuls, odd_nuls = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) // 2
    if odd_nuls > 0.6 * half and even_nuls < 0.05 * half:
        return "utf-16-le"
    if even_nuls > 0.6 * half and odd_nuls < 0.05 * half:
        return "utf-16-be"
    return None
