"""Sniff payloads served as HTML that are not HTML: stylesheets, scripts, JSON, reStructuredText.

Servers that label every file `text/html` (seen on real crawls: Sphinx `_static/*.css`,
`searchindex.js`, `_sources/*.rst.txt`) turn such files into documents: the extractor finds no
markup and keeps the whole file as text. The sniffer reads a bounded prefix of the payload with
precompiled byte patterns, because it runs on every HTML record.

The decision, in order:

1. A payload whose first token (after blank space and leading `/* */` or `//` comments) opens
   markup (`<!DOCTYPE`, `<html`, `<?xml`, `<!--`, any tag) is HTML. Every page of the bundled
   sample snapshot stops here, and so does any real page whose body is mostly code listings: the
   listings sit inside the markup.
2. A prefix holding an HTML page's skeleton (`<html`, `<meta`, `</head>`, `</style>`, ... followed
   by more markup) is an HTML page with something in front of its markup (a PHP warning, the
   tail of a stray stylesheet): HTML.
3. Anything else (a fragment, prose, or not HTML at all) is scored. Each kind counts its own
   evidence, and wins only with enough of it and several times more of it than there are HTML
   tags in the prefix, so short pages and fragments with a few tags stay documents. An opening
   only that kind has (`@import url(`, `var x =`) counts as enough evidence. JSON, and a call
   whose argument is JSON (`Search.setIndex({...`), are told by tokenizing the prefix: their
   strings may hold any number of tags.
"""

from __future__ import annotations

import re

SNIFF_BYTES = 8192  # the prefix examined: enough rules or statements of a file to be sure

CSS = "css"
JAVASCRIPT = "javascript"
JSON = "json"
RESTRUCTUREDTEXT = "restructuredtext"
KINDS: tuple[str, ...] = (CSS, JAVASCRIPT, JSON, RESTRUCTUREDTEXT)

_MIN_EVIDENCE = 4  # fewer hits of a kind than this never make a verdict without a telling opening
_EVIDENCE_PER_TAG = 3  # a kind needs this many hits per HTML tag in the same prefix
_MIN_CSS_COVERAGE = 0.5  # share of the prefix (comments removed) inside CSS rules
_TELLING_CSS_COVERAGE = 0.8  # a stylesheet of one or two rules: nearly all of it is rules
_MIN_JS_TOKENS_PER_KB = 6.0
_MIN_RST_EVIDENCE = 2  # explicit markup (`.. note::`) is reStructuredText's alone

# Blank space, a UTF-8 byte order mark, and comments of CSS / JavaScript at the start.
_LEADING_NOISE = re.compile(rb"(?:\xef\xbb\xbf|\s+|/\*.*?\*/|//[^\n]*\n)*", re.DOTALL)
_MARKUP_START = re.compile(rb"<[A-Za-z!?/]")
# A tag is matched by a plain pattern and its name then looked up in a set: one alternation of
# element names would be tried name by name at every `<` (slow on a prefix full of `<`).
_TAG_NAME = re.compile(rb"<(!--|!DOCTYPE(?=\s+html)|/?[A-Za-z][A-Za-z0-9]{0,11}(?=[\s/>]))", re.IGNORECASE)
# Element names only: `<email@host>`, `List<T>` and `a < b` in source or prose are not markup.
_HTML_ELEMENTS = frozenset(
    b"html head body title meta link base div span p a br hr img table thead tbody tr td th ul ol li "
    b"dl dt dd h1 h2 h3 h4 h5 h6 pre code tt kbd var samp b i u em strong small sub sup blockquote "
    b"cite q abbr form input button select option textarea label section article nav header footer "
    b"main aside figure figcaption iframe script style noscript center font".split()
)
# The skeleton of a page: a structural tag followed by further markup. In scripts, stylesheets
# and reStructuredText these tags occur in strings and comments ("<body>" is, "</style>" + s),
# and are then followed by prose or code instead.
_STRUCTURE_TAGS = frozenset((b"!doctype", *b"html /html head /head body /body /title meta link /style /script".split()))
_FOLLOWED_BY_MARKUP = re.compile(rb"[^<>]{0,500}>\s*<[A-Za-z!/]")

# --- CSS: rules `selector { property: value; ... }` -------------------------------------------
# Openings only a stylesheet has (a file may hold nothing but `@import url("theme.css");`).
_CSS_START = re.compile(rb"@(?:charset\s+[\"']|import\s+(?:url\(|[\"'])|namespace\s|font-face\s*\{)")
_CSS_COMMENT = re.compile(rb"/\*.*?\*/", re.DOTALL)
_CSS_BLOCK = re.compile(rb"\{([^{}]{0,4000})\}")
# A property is a lower-case word with hyphens (vendor prefix, custom property); its value holds no
# further `name:` except inside url(...) or quotes. JavaScript object literals fail here: camelCase
# or quoted keys, pairs separated by commas.
_CSS_DECLARATION = (
    rb"\s*(?:-{1,2}[a-z][a-z0-9-]*|[a-z][a-z-]*)\s*:"
    rb"(?:\s*url\([^)]*\)|\"[^\"]*\"|'[^']*'|[^:;{}\"'])+"
)
_CSS_DECLARATIONS = re.compile(rb"(?:" + _CSS_DECLARATION + rb";)*" + _CSS_DECLARATION + rb";?\s*")
_CSS_ATTRIBUTE_SELECTOR = re.compile(rb"\[[^\[\]]*\]")
# Once attribute selectors are removed; a list of selectors sharing one rule can be long.
_CSS_SELECTOR = re.compile(rb"[\s\w.#*>+~:,()%@-]{1,4000}")

# --- JavaScript -----------------------------------------------------------------------------
_JS_START = re.compile(
    rb"(?:var|let|const)\s+[\w$]+\s*="  # a declaration
    rb"|[!(;]?\s*function\s*\*?\s*[\w$]*\s*\("  # a function or an immediately invoked one
    rb"|[\"']use strict[\"']"
    # a call or an assignment on a dotted name: `Search.setIndex(` (Sphinx), `jQuery.extend(`,
    # `MathJax.Hub.Config(`, `MathJax.OutputJax['SVG'].FONTDATA = `
    rb"|[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*|\[[^\]\n]{1,100}\])+(?:\(|\s*=[^=])"
    rb"|[A-Za-z_$][\w$]*\(\s*[\[{]"  # a JSONP call: `callback({...`
)
# A call whose argument is JSON data (`Search.setIndex({"docnames": ...`): its strings may hold
# any number of tags (Sphinx puts titles with <code> and <span> in its search index).
_JS_CALL_OF_DATA = re.compile(rb"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*\(\s*(?=[\[{])")
# Tokens of JavaScript that C, C++, Perl, Python and shell code do not share. One pattern each, all
# starting with a literal: the regex engine then jumps from one occurrence of it to the next,
# where a single alternation would try every pattern at every byte (tens of times slower).
_JS_TOKENS = tuple(
    re.compile(pattern)
    for pattern in (
        rb"function\s*\*?\s*[\w$]*\s*\([^()]{0,200}\)\s*\{",
        rb"var\s+[\w$]+\s*[=,;]",
        rb"let\s+[\w$]+\s*=",
        rb"const\s+[\w$]+\s*=",
        rb"=>\s*[{(]",
        rb"this\.[\w$]",
        rb"typeof\s",
        rb"document\.[\w$]",
        rb"window\.[\w$]",
    )
)
# `===` and `!==`; longer runs of `=` are underlines.
_STRICT_EQUALITIES = (re.compile(rb"===+"), re.compile(rb"!==+"))

# --- JSON -----------------------------------------------------------------------------------
# JSON is checked by tokenizing the whole prefix: HTML, prose and code leave it at once, and the
# check holds whatever the strings contain (Sphinx's glossary.json holds HTML in its values).
_JSON_START = re.compile(rb"\s*[\[{]")
_JSON_TOKENS = re.compile(  # a run of tokens, matched in one go
    rb"(?:\s*(?:\"[^\"\\]*(?:\\.[^\"\\]*)*\"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null|[\[\]{}:,]))*"
)
_JSON_CUT_TOKEN = re.compile(rb"\s*(?:\"[^\"\\]*(?:\\.[^\"\\]*)*\\?|-?[\d.eE+-]*|[a-z]{0,4})")  # cut by the prefix

# --- Python source, told apart from reStructuredText ------------------------------------------
# Python modules carry reStructuredText roles in their docstrings. Source code is not one of the
# kinds sniffed (languages share too much syntax to name one from a prefix), so a prefix with
# more Python statements than reStructuredText markup gets no verdict rather than a wrong one.
_PYTHON_STATEMENT = re.compile(
    rb"\n[ \t]*(?:def [A-Za-z_]\w*\(.*\)(?: -> [^:\n]+)?:|class [A-Za-z_]\w*(?:\(.*\))?:|"
    rb"import [\w.]+(?: as \w+)?|from [\w.]+ import [\w(*]|self\.\w+ = )[ \t]*\r?(?=\n|$)"
)

# --- reStructuredText -----------------------------------------------------------------------
# Line patterns start with the newline before the line (the prefix is searched with one put in
# front): a literal first byte keeps the search fast, where `^` with re.MULTILINE tries every byte.
_RST_EXPLICIT = re.compile(  # `.. directive::`, `.. _target:`, `.. |substitution|`, `.. [1]`
    rb"\n\.\.[ \t]+(?:[A-Za-z][\w:+-]*::|_[^:\n]{1,200}:|\|[^|\n]{1,100}\||\[[^\]\n]{1,50}\])"
)
_RST_ROLE = re.compile(rb":(?:[a-z][\w+-]{0,30}:){1,2}`[^`\n]{1,200}`")  # :func:`name`, :py:func:`name`
_RST_REFERENCE = re.compile(rb"`[^`\n]{1,200}`__?(?!\w)")  # `text <url>`_
# Any punctuation character may adorn a section title; four or more of it fill the line.
_RST_ADORNMENT = re.compile(rb"\n([!-/:-@\[-`{-~])\1{3,}[ \t]*\r?(?=\n|$)")


def sniff_non_html(payload: bytes | str) -> str | None:
    """The kind of a payload served as HTML that is not HTML ("css", "javascript", "json",
    "restructuredtext"), or None when it is HTML, an HTML fragment, or prose."""
    if isinstance(payload, str):
        payload = payload[:SNIFF_BYTES].encode("utf-8", "surrogatepass")
    if _MARKUP_START.match(payload):  # nearly every page: nothing else to look at
        return None
    # Positions, not slices, until the verdict needs the prefix.
    start = _LEADING_NOISE.match(payload, 0, SNIFF_BYTES).end()
    if start >= min(len(payload), SNIFF_BYTES) or _MARKUP_START.match(payload, start):
        return None
    body = payload[start:SNIFF_BYTES]
    tags = _html_tags(body)
    if any(name in _STRUCTURE_TAGS and _FOLLOWED_BY_MARKUP.match(body, end) for name, end in tags):
        return None
    return _classify(body, len(tags))


def _html_tags(body: bytes) -> list[tuple[bytes, int]]:
    """(name, end of the name) of each HTML tag: `div`, `/div`, `!--`, `!doctype`, lower case."""
    tags = []
    for tag in _TAG_NAME.finditer(body):
        name = tag.group(1).lower()
        if name.lstrip(b"/") in _HTML_ELEMENTS or name[:1] == b"!":
            tags.append((name, tag.end()))
    return tags


def _classify(body: bytes, tags: int) -> str | None:
    """The verdict on a prefix from its first token on (tags quoted in a licence header are not
    markup), which holds `tags` HTML tags."""
    needed = max(_MIN_EVIDENCE, _EVIDENCE_PER_TAG * tags)

    if _JSON_START.match(body) and _is_json_prefix(body):
        return JSON
    call = _JS_CALL_OF_DATA.match(body)
    if call and _is_json_prefix(body[call.end() :]):
        return JAVASCRIPT

    rules, coverage = _css_rules(body)
    telling = _CSS_START.match(body) is not None or coverage >= _TELLING_CSS_COVERAGE
    if rules + _MIN_EVIDENCE * telling >= needed and (telling or coverage >= _MIN_CSS_COVERAGE):
        return CSS

    lines = b"\n" + body  # for the line patterns, see _RST_EXPLICIT
    rst = _rst_evidence(lines)
    if rst >= max(_MIN_RST_EVIDENCE, _EVIDENCE_PER_TAG * tags) and rst > len(_PYTHON_STATEMENT.findall(lines)):
        return RESTRUCTUREDTEXT

    tokens = _js_tokens(body)
    telling = _JS_START.match(body) is not None
    dense = tokens / (max(len(body), 1024) / 1024) >= _MIN_JS_TOKENS_PER_KB
    if tokens + _MIN_EVIDENCE * telling >= needed and (telling or dense):
        return JAVASCRIPT
    return None


def _js_tokens(body: bytes) -> int:
    strict_equalities = sum(len(run) == 3 for pattern in _STRICT_EQUALITIES for run in pattern.findall(body))
    return strict_equalities + sum(len(token.findall(body)) for token in _JS_TOKENS)


def _is_json_prefix(body: bytes) -> bool:
    """Whether the prefix is a run of JSON tokens, up to a last token cut short by the prefix, with
    a `:` or `,` among them (`[1]` opening a footnote is not a JSON document)."""
    position = _JSON_TOKENS.match(body).end()
    if position < len(body) and not _JSON_CUT_TOKEN.fullmatch(body, position):
        return False
    tokens = body[:position]
    return b":" in tokens or b"," in tokens


def _css_rules(sample: bytes) -> tuple[int, float]:
    """(number of CSS rules, share of the sample without comments that they cover)."""
    text = _CSS_COMMENT.sub(b" ", sample)
    rules = 0
    covered = 0
    boundary = 0  # end of the previous block: the next selector starts after it
    for block in _CSS_BLOCK.finditer(text):
        # The selector runs back from `{` to the previous `{` (an @media block), `}` or `;`.
        opening = block.start()
        start = max(text.rfind(b"{", boundary, opening), text.rfind(b";", boundary, opening), boundary - 1)
        selector = text[start + 1 : opening].strip()
        boundary = block.end()
        if _is_css_selector(selector) and _CSS_DECLARATIONS.fullmatch(block.group(1)):
            rules += 1
            covered += block.end() - opening + len(selector)
    return rules, covered / max(len(text.strip()), 1)


def _is_css_selector(selector: bytes) -> bool:
    if not selector or _CSS_SELECTOR.fullmatch(_CSS_ATTRIBUTE_SELECTOR.sub(b"x", selector)) is None:
        return False
    # A selector spans lines only as a list, one line per selector: `h1,\nh2 {`. Code before a
    # brace in prose or in another language runs over lines that do not end in commas.
    lines = selector.splitlines()
    return all(line.rstrip().endswith(b",") for line in lines[:-1])


def _rst_evidence(lines: bytes) -> int:
    """Hits of markup only reStructuredText has (explicit markup, roles, `text <url>`_ references),
    plus section adornments once there is at least one of those. `lines` starts with a newline."""
    own = len(_RST_EXPLICIT.findall(lines)) + len(_RST_ROLE.findall(lines)) + len(_RST_REFERENCE.findall(lines))
    if own == 0:
        return 0  # underlined titles alone are also Markdown or plain-text headings
    return own + len(_RST_ADORNMENT.findall(lines))
