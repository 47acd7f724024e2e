"""Main-text extraction from decoded HTML, with resiliparse or trafilatura.

Both extractors keep sections that look like user comments: their heuristics match ids and classes
containing "comment", and dropping those lost whole documentation pages about comments (Octave's
"Comments" chapters in the sample snapshot came out empty).
"""

from __future__ import annotations

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree


def check_extractor(name: str) -> None:
    if name not in _EXTRACTORS:
        raise ValueError(f"unknown extractor {name!r}; choose one of {', '.join(EXTRACTORS)}")


def extract_main_text(html: str, extractor: str) -> str:
    """The page's main content as plain text with paragraph breaks ("" when nothing is left)."""
    check_extractor(extractor)
    return _EXTRACTORS[extractor](html)


def extract_with_resiliparse(html: str) -> str:
    tree = HTMLTree.parse(html)
    return extract_plain_text(
        tree,
        preserve_formatting=True,
        main_content=True,
        list_bullets=True,
        alt_texts=False,  # alt texts of layout images are mostly noise ("logo", "icon")
        links=False,
        form_fields=False,
        noscript=False,
        comments=True,  # see the module docstring
    )


def extract_with_trafilatura(html: str) -> str:
    # Imported on first use: it is the optional extractor, and importing it costs a second.
    import trafilatura

    text = trafilatura.extract(
        html,
        include_comments=True,  # see the module docstring
        include_tables=True,
        include_images=False,
        include_links=False,
        # trafilatura's deduplication keeps a process-wide cache: output would depend on what
        # was extracted before, breaking reproducibility. Exact dedup happens per shard instead.
        deduplicate=False,
        with_metadata=False,
    )
    return text or ""


_EXTRACTORS = {"resiliparse": extract_with_resiliparse, "trafilatura": extract_with_trafilatura}
EXTRACTORS = tuple(_EXTRACTORS)
