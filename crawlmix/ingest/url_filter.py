"""URL and domain blocklists from files the user names: plain domain lists and UT1-style folders.

A list is either

* a file: one entry per line, ``#`` starts a comment; an entry is a domain (``casino.example``), a
  hosts-file line (``0.0.0.0 casino.example``), a URL (``https://casino.example/page``) or a
  host with a path (``casino.example/poker``, a URL prefix). The list is named after the file;
* a folder in the layout of the Université Toulouse 1 Capitole blacklists (UT1): one folder per
  category holding a ``domains`` file and optionally a ``urls`` file (host/path prefixes). Each
  category is a list named after its folder (``gambling``); the folder may be the category itself
  or any folder above the categories (``blacklists/``).

Hosts are normalised before matching: lower case, no port, no trailing dot, internationalised
names as IDNA (punycode), a leading ``www.`` ignored. A domain entry blocks the domain and every
subdomain (``casino.example`` blocks ``eu.casino.example``, not ``notcasino.example``); a URL
prefix entry blocks URLs whose host is that host and whose path starts with that path at a
segment boundary.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["BlockedUrl", "UrlBlocklist", "normalise_host"]


@dataclass(frozen=True)
class BlockedUrl:
    list_name: str
    entry: str  # the domain or host/path prefix that matched

    def describe(self) -> str:
        return f"list {self.list_name}: {self.entry}"


def normalise_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") or not host:
        return host
    host = host.split(":", 1)[0]
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        pass  # not a valid IDNA label: compare as it is
    return host.removeprefix("www.")


def _split(url: str) -> tuple[str, str]:
    """(normalised host, path) of a URL, also of one written without a scheme."""
    parts = urlsplit(url if "://" in url else "//" + url)
    return normalise_host(parts.hostname or ""), parts.path or "/"


@dataclass
class UrlBlocklist:
    domains: dict[str, str] = field(default_factory=dict)  # domain -> list name
    prefixes: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # host -> [(path, list)]
    sources: dict[str, str] = field(default_factory=dict)  # list name -> sha256 of its files

    @classmethod
    def load(cls, paths: list[str] | tuple[str, ...]) -> "UrlBlocklist":
        blocklist = cls()
        for raw in paths:
            path = Path(raw).expanduser()
            if path.is_file():
                blocklist._add_file(path, path.stem, domains_only=False)
            elif path.is_dir():
                found = sorted(p for p in path.rglob("*") if p.is_file() and p.name in ("domains", "urls"))
                if not found:
                    raise ValueError(f"URL blocklist folder {path} holds no UT1-style <category>/domains file")
                for file in found:
                    blocklist._add_file(file, file.parent.name, domains_only=file.name == "domains")
            else:
                raise ValueError(f"URL blocklist {raw!r}: no such file or folder")
        return blocklist

    def _add_file(self, path: Path, name: str, domains_only: bool) -> None:
        data = path.read_bytes()
        digest = hashlib.sha256(self.sources.get(name, "").encode() + data).hexdigest()
        self.sources[name] = digest
        for line in data.decode("utf-8", errors="replace").splitlines():
            entry = line.split("#", 1)[0].strip()
            if not entry:
                continue
            tokens = entry.split()
            entry = tokens[-1] if len(tokens) > 1 else tokens[0]  # hosts-file lines: address, name
            host, path_part = _split(entry)
            if not host:
                continue
            if domains_only or path_part in ("", "/"):
                self.domains.setdefault(host, name)
            else:
                self.prefixes.setdefault(host, []).append((path_part.rstrip("/"), name))

    def __len__(self) -> int:
        return len(self.domains) + sum(len(v) for v in self.prefixes.values())

    def match(self, url: str | None) -> BlockedUrl | None:
        """The first entry blocking ``url`` (the most specific domain first), or None."""
        if not url or (not self.domains and not self.prefixes):
            return None
        host, path = _split(url)
        if not host:
            return None
        for path_prefix, name in self.prefixes.get(host, ()):
            if path == path_prefix or path.startswith(path_prefix + "/") or not path_prefix:
                return BlockedUrl(name, f"{host}{path_prefix}")
        labels = host.split(".")
        for i in range(len(labels)):
            suffix = ".".join(labels[i:])
            name = self.domains.get(suffix)
            if name is not None:
                return BlockedUrl(name, suffix)
        return None
