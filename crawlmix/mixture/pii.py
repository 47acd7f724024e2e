"""PII redaction for exported mixture text: e-mail addresses, public IP addresses, phone numbers.

Each is replaced by a stable placeholder (``<EMAIL>``, ``<IP_ADDRESS>``, ``<PHONE>``), so a
trainer sees that something was there and the same kind of thing is always written the same way.

* E-mail: ``local@domain.tld`` with a letters-only top-level domain (``pkg@1.2.3`` is a version,
  ``user@localhost`` names no public mailbox, ``git@github.com:owner/repo`` is an SSH remote).
* IP: IPv4 and IPv6 literals that the ``ipaddress`` module calls global (public): private,
  loopback, link-local, documentation and reserved ranges stay (``127.0.0.1``, ``10.0.0.1``,
  ``192.0.2.1``). A dotted quad that numbers something stays: inside a longer dotted run
  (``1.2.3.4.5``), after a version or section word (``v``, ``release``, ``section``...), followed by
  a dot (``6.2.5.1. Title``), or with every part below 32 (``15.2.1.1``; also ``8.8.8.8``, a
  resolver, not a person). Multicast addresses stay. An address at the very end of a sentence ("... at 93.184.216.34.") is therefore
  kept: on documentation pages that form is mostly section numbering.
* Phone: what Google's libphonenumber (the ``phonenumbers`` package) accepts as a valid number,
  international (``+49 30 1234567``) or North American (``(212) 555-0199``), written with at least
  one separator or a leading ``+``: a bare run of digits in code or an id is left alone, and so are
  dates, time stamps (``2015-07-29 20:00:57``) and dotted addresses.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterable

__all__ = ["PLACEHOLDERS", "redact_pii", "redact_texts"]

PLACEHOLDERS = {"email": "<EMAIL>", "ip_address": "<IP_ADDRESS>", "phone": "<PHONE>"}

_EMAIL = re.compile(r"(?<![\w.+%-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+"
                    r"[A-Za-z]{2,24}(?![\w-]|:[\w~/])")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.])(?:{_OCTET}\.){{3}}{_OCTET}(?![\w.])", re.I)
# a dotted quad after one of these words is a version or a section number
_NUMBERING = re.compile(r"(?:\bv|version|release|rev|revision|section|chapter|seksjon|§|kapitel|abschnitt)\s*$", re.I)
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_PHONE_CANDIDATE = re.compile(r"(?<![\w.+-])\+?\(?\d[\d\s().-]{5,22}\d(?![\w-])")
_SEPARATED = re.compile(r"^\+|[\s().-]")
_DATE_OR_QUAD = re.compile(r"\d{4}-\d\d-\d\d|\d\d?/\d\d?/\d{2,4}|^\d{1,3}(?:\.\d{1,3}){3}$")


def _public_ip(literal: str) -> bool:
    try:
        address = ipaddress.ip_address(literal)
    except ValueError:
        return False
    return address.is_global and not address.is_multicast


def _numbering(match: re.Match) -> bool:
    """A dotted quad that numbers something: after a version or section word, followed by a
    dot ("6.2.5.1. Title"), or every part below 32 ("15.2.1.1 Contour Groups": section-like; such
    addresses are infrastructure like 8.8.8.8, not a person's)."""
    text, start, end = match.string, match.start(), match.end()
    if _NUMBERING.search(text[max(0, start - 12): start]):
        return True
    if text[end: end + 1] == ".":
        return True
    return all(int(octet) < 32 for octet in match.group().split("."))


def _phone_spans(text: str, region: str) -> list[tuple[int, int]]:
    import phonenumbers

    spans = []
    for candidate in _PHONE_CANDIDATE.finditer(text):
        around = text[max(0, candidate.start() - 1): candidate.start()] + text[candidate.end(): candidate.end() + 1]
        if _DATE_OR_QUAD.search(candidate.group()) or ":" in around:
            continue  # a date, a time stamp or an address, not a phone number
        for match in phonenumbers.PhoneNumberMatcher(candidate.group(), region, leniency=phonenumbers.Leniency.VALID):
            if _SEPARATED.search(match.raw_string):
                spans.append((candidate.start() + match.start, candidate.start() + match.end))
    return spans


def redact_pii(text: str, region: str = "US") -> tuple[str, Counter]:
    """``text`` with PII replaced, and how many of each kind were replaced."""
    counts: Counter = Counter()
    if not text:
        return text, counts

    def replace(kind: str):
        def swap(match: re.Match) -> str:
            counts[kind] += 1
            return PLACEHOLDERS[kind]
        return swap

    text = _EMAIL.sub(replace("email"), text)

    def ip(match: re.Match) -> str:
        literal = match.group()
        if ":" in literal and sum(1 for group in literal.split(":") if group) < 3:
            return literal  # "fd::7", "2000::": more likely code or a range than a host
        if not _public_ip(literal) or (":" not in literal and _numbering(match)):
            return match.group()
        counts["ip_address"] += 1
        return PLACEHOLDERS["ip_address"]

    text = _IPV4.sub(ip, text)
    text = _IPV6.sub(ip, text)
    spans = _phone_spans(text, region)
    for start, end in reversed(spans):
        text = text[:start] + PLACEHOLDERS["phone"] + text[end:]
    counts["phone"] += len(spans)
    return text, +counts


def redact_texts(texts: Iterable[str | None], region: str = "US") -> tuple[list[str | None], Counter]:
    """Redacted texts in order, with totals per kind and ``documents`` (texts with any PII)."""
    out: list[str | None] = []
    totals: Counter = Counter()
    for text in texts:
        if not isinstance(text, str):
            out.append(text)
            continue
        redacted, counts = redact_pii(text, region)
        out.append(redacted)
        if counts:
            totals.update(counts)
            totals["documents"] += 1
    return out, totals
