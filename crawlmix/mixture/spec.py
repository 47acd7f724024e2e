"""Named mixture specs in a YAML file, strictly validated (pure Python, no Dagster).

File layout (a top-level ``mixtures:`` list, or a bare list)::

    mixtures:
      - name: balanced-1m
        scope: all                    # or [snapshot ids]
        filters:
          min_quality: 0.3
          drop_semantic_duplicates: true
          exclude_clusters: [{level: 1, id: 17}, "casino"]   # id at a level, or a name keyword
          languages: [en, de]         # identified languages to keep; omitted = all
          min_language_score: 0.65    # least identifier confidence
        size: {documents: 1000000}    # or {tokens: 2.0e9}, {documents_fraction: 0.5},
                                      #    {tokens: 2.0e9, at_most_fraction: 0.8}
        policy: balanced              # balanced | weighted | quality_topk | search
        options: {within_leaf: random}
        seed: 0
        formats: [parquet]            # + jsonl.gz, megatron (.bin/.idx, needs a tokenizer), hf_dataset
        tokenizer: models/tokenizer.json   # exact token counts (HF tokenizers); omitted = characters / 4
        redact_pii: true              # e-mails, public IPs, phone numbers -> <EMAIL>, <IP_ADDRESS>, <PHONE>
        decontamination:              # drop documents sharing a 13-word run with an evaluation item
          ngram: 13
          sets: [{name: squad-dev, path: /data/evals/squad-dev.jsonl, fields: [question, context]}]
                                      # a relative path is taken from the spec file's folder

Every error names the spec and the field (``mixture 'x': size.documents: ...``). Unknown fields are
rejected, names are unique and restricted to ``[A-Za-z0-9._-]``. Levels are 1-based (level 1 =
leaf, as in the ``cluster_l1`` column); ``level: top`` is accepted where a level is asked for.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import yaml

__all__ = [
    "ClusterRef",
    "DEFAULT_MAX_SHARE",
    "Decontamination",
    "EvalSet",
    "Filters",
    "MixtureSpec",
    "MixtureSpecError",
    "POLICIES",
    "Size",
    "keyword_matches",
    "load_mixture_specs",
    "parse_mixture_spec",
    "parse_mixture_specs",
    "validate_against_corpus",
]

POLICIES = ("balanced", "weighted", "quality_topk", "search")
FORMATS = ("parquet", "jsonl.gz", "megatron", "hf_dataset")
# size.tokenizer: the approximate count (characters / 4); a spec's top-level `tokenizer` gives exact counts.
TOKENIZERS = ("approx",)
NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")
# Default cap on any one top-level cluster's share of a searched mixture. ceil(1 / 0.35) = 3: every
# candidate, the chosen one included, spreads over at least three top-level clusters; on the usual 8-12
# top-level clusters a favoured one may still take ~3-4x its uniform share (1/8 .. 1/12), room
# enough for the search to express a strong preference. On pools with fewer than three top-level
# clusters the cap is raised to the most even split there is (1/2, or 1), see policies.
DEFAULT_MAX_SHARE = 0.35


class MixtureSpecError(ValueError):
    """A mixture spec is invalid (the message names the spec and the field)."""


@dataclass(frozen=True)
class ClusterRef:
    """A cluster by ``level`` (1-based, 1 = leaf) and ``id``."""

    level: int
    id: int


@dataclass(frozen=True)
class Filters:
    min_quality: float = 0.0
    drop_semantic_duplicates: bool = True
    exclude_clusters: tuple[ClusterRef | str, ...] = ()
    languages: tuple[str, ...] = ()  # language codes to keep (quality_scores' `language`); empty = all
    min_language_score: float = 0.0  # least identifier confidence for a kept document


@dataclass(frozen=True)
class EvalSet:
    """An evaluation set to keep out of a mixture: a local JSONL or Parquet file, its text fields."""

    name: str
    path: str
    fields: tuple[str, ...] = ("text",)


@dataclass(frozen=True)
class Decontamination:
    ngram: int = 13
    sets: tuple[EvalSet, ...] = ()


@dataclass(frozen=True)
class Size:
    """How big a mixture is, in ``unit`` (documents, or approximate tokens), in one of three forms:

    * an amount: ``value`` (``{documents: 400}``, ``{tokens: 150000}``);
    * a share of the filtered pool: ``fraction`` (``{documents_fraction: 0.3}``,
      ``{tokens_fraction: 0.3}``), so one spec fits a pool of any size;
    * an amount capped at a share of the filtered pool: ``value`` and ``at_most_fraction``
      (``{documents: 400, at_most_fraction: 0.5}``): 400 on a large pool, half of a small one.

    Fractions are of the pool left after the spec's filters, counted in ``unit``; above 1 they ask
    for repeats, so they are allowed only up to the policy's ``max_repeats``.
    """

    unit: str  # "documents" | "tokens"
    value: int | None = None
    tokenizer: str = "approx"  # tokens only; "approx" = the pool's n_tokens column
    fraction: float | None = None
    at_most_fraction: float | None = None

    def resolve(self, pool_total: float) -> int:
        """The target in ``unit`` for a filtered pool holding ``pool_total`` units (at least 1)."""
        if self.fraction is not None:
            return max(1, int(math.floor(self.fraction * pool_total + 0.5)))
        assert self.value is not None
        if self.at_most_fraction is not None:
            return max(1, min(self.value, int(math.floor(self.at_most_fraction * pool_total + 0.5))))
        return self.value

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.fraction is not None:
            out[f"{self.unit}_fraction"] = self.fraction
        else:
            out[self.unit] = self.value
            if self.at_most_fraction is not None:
                out["at_most_fraction"] = self.at_most_fraction
        if self.unit == "tokens":
            out["tokenizer"] = self.tokenizer
        return out

    def describe(self) -> str:
        """Short human form for data cards and messages."""
        if self.fraction is not None:
            return f"{self.fraction:g} of the filtered pool's {self.unit}"
        text = f"{self.value:,} {self.unit}"
        if self.at_most_fraction is not None:
            text += f", at most {self.at_most_fraction:g} of the filtered pool's {self.unit}"
        return text


@dataclass(frozen=True)
class MixtureSpec:
    name: str
    size: Size
    policy: str
    scope: tuple[str, ...] | str = "all"
    filters: Filters = field(default_factory=Filters)
    options: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    formats: tuple[str, ...] = ("parquet",)
    redact_pii: bool = True  # e-mail addresses, public IPs and phone numbers in exported text
    decontamination: Decontamination = field(default_factory=Decontamination)
    tokenizer: str | None = None  # a tokenizer.json (or a folder holding one): exact token counts

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (round-trips through :func:`parse_mixture_spec`)."""
        size = self.size.to_dict()
        out = {
            "name": self.name,
            "scope": self.scope if self.scope == "all" else list(self.scope),
            "filters": {
                "min_quality": self.filters.min_quality,
                "drop_semantic_duplicates": self.filters.drop_semantic_duplicates,
                "exclude_clusters": [
                    c if isinstance(c, str) else {"level": c.level, "id": c.id}
                    for c in self.filters.exclude_clusters
                ],
                "languages": list(self.filters.languages),
                "min_language_score": self.filters.min_language_score,
            },
            "size": size,
            "policy": self.policy,
            "options": _plain(self.options),
            "seed": self.seed,
            "formats": list(self.formats),
            "redact_pii": self.redact_pii,
        }
        if self.tokenizer:  # only then, so specs without one keep their versions
            out["tokenizer"] = self.tokenizer
        if self.decontamination.sets:  # only then, so specs without sets keep their versions
            out["decontamination"] = {
                "ngram": self.decontamination.ngram,
                "sets": [{"name": e.name, "path": e.path, "fields": list(e.fields)} for e in self.decontamination.sets],
            }
        return out


def _plain(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


# ------------------------------------------------------------------------------------------------
# small typed checkers; ``where`` is "mixture 'name': field.path"


def _err(where: str, msg: str) -> MixtureSpecError:
    return MixtureSpecError(f"{where}: {msg}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int(v: Any, where: str, lo: int | None = None) -> int:
    if isinstance(v, float) and v.is_integer() and math.isfinite(v):
        v = int(v)  # YAML 2.0e9
    if not _is_int(v):
        raise _err(where, f"must be an integer, got {v!r}")
    if lo is not None and v < lo:
        raise _err(where, f"must be >= {lo}, got {v}")
    return int(v)


def _float(v: Any, where: str, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise _err(where, f"must be a finite number, got {v!r}")
    v = float(v)
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise _err(where, f"must be {'>' if lo_open else '>='} {lo}, got {v}")
    if hi is not None and v > hi:
        raise _err(where, f"must be <= {hi}, got {v}")
    return v


def _bool(v: Any, where: str) -> bool:
    if not isinstance(v, bool):
        raise _err(where, f"must be true or false, got {v!r}")
    return v


def _str(v: Any, where: str, choices: Sequence[str] | None = None) -> str:
    if not isinstance(v, str) or not v:
        raise _err(where, f"must be a non-empty string, got {v!r}")
    if choices is not None and v not in choices:
        raise _err(where, f"must be one of {list(choices)}, got {v!r}")
    return v


def _map(v: Any, where: str, allowed: Sequence[str], required: Sequence[str] = ()) -> dict:
    if not isinstance(v, Mapping):
        raise _err(where, f"must be a mapping, got {type(v).__name__}")
    sep = " " if where.endswith(":") else "."
    bad = [k for k in v if k not in allowed]
    if bad:
        raise _err(f"{where}{sep}{bad[0]}", f"unknown field (allowed: {', '.join(allowed)})")
    for k in required:
        if k not in v:
            raise _err(f"{where}{sep}{k}", "is required")
    return dict(v)


def _level(v: Any, where: str) -> int | str:
    if v == "top":
        return "top"
    return _int(v, where, lo=1)


def _cluster_key(v: Any, where: str) -> int | str:
    """A cluster id (int) or a name keyword (str)."""
    if _is_int(v):
        if v < 0:
            raise _err(where, f"cluster ids are >= 0, got {v}")
        return int(v)
    if isinstance(v, str) and v.strip():
        s = v.strip()
        return int(s) if s.isdigit() else s
    raise _err(where, f"must be a cluster id or a name keyword, got {v!r}")


def _weights(v: Any, where: str) -> Any:
    """``{id|keyword: w}`` or ``[{clusters: [id|keyword, ...], weight: w}, ...]`` (groups)."""
    if isinstance(v, Mapping):
        out = {}
        for k, w in v.items():
            key = _cluster_key(k, f"{where}[{k!r}]")
            out[key] = _float(w, f"{where}[{k!r}]", lo=0.0)
        if not out:
            raise _err(where, "must not be empty")
        return out
    if isinstance(v, list):
        groups = []
        for i, g in enumerate(v):
            gw = f"{where}[{i}]"
            g = _map(g, gw, ("clusters", "weight", "name"), ("clusters", "weight"))
            cl = g["clusters"]
            if not isinstance(cl, list) or not cl:
                raise _err(f"{gw}.clusters", "must be a non-empty list")
            groups.append({
                "clusters": tuple(_cluster_key(c, f"{gw}.clusters[{j}]") for j, c in enumerate(cl)),
                "weight": _float(g["weight"], f"{gw}.weight", lo=0.0),
                "name": _str(g["name"], f"{gw}.name") if "name" in g else f"group{i}",
            })
        if not groups:
            raise _err(where, "must not be empty")
        return tuple(groups)
    raise _err(where, "must be a mapping {cluster id or keyword: weight} or a list of groups")


def _weighted_opts(o: dict, where: str) -> dict:
    out: dict[str, Any] = {}
    if "weights" in o:
        out["weights"] = _weights(o["weights"], f"{where}.weights")
    if "level" in o:
        out["level"] = _level(o["level"], f"{where}.level")
    if "temperature" in o:
        out["temperature"] = _float(o["temperature"], f"{where}.temperature", lo=0.0, lo_open=True)
    if "max_repeats" in o:
        out["max_repeats"] = _int(o["max_repeats"], f"{where}.max_repeats", lo=1)
    if "default_weight" in o:
        out["default_weight"] = _float(o["default_weight"], f"{where}.default_weight", lo=0.0)
    return out


def _evaluator_opt(v: Any, where: str) -> dict:
    if isinstance(v, str):
        v = {"type": v}
    e = _map(v, where, EVALUATOR_FIELDS, ("type",))
    t = _str(e["type"], f"{where}.type", ("ngram", "python", "command"))
    out: dict[str, Any] = {"type": t}
    if t == "python":
        if "function" not in e:
            raise _err(f"{where}.function", "is required for a python evaluator ('package.module:function')")
        f = _str(e["function"], f"{where}.function")
        if not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", f):
            raise _err(f"{where}.function", f"must look like 'package.module:function', got {f!r}")
        out["function"] = f
    if t == "command":
        c = e.get("command")
        if not isinstance(c, list) or not c or not all(isinstance(a, str) and a for a in c):
            raise _err(f"{where}.command", "must be a non-empty list of strings (argv; no shell)")
        out["command"] = tuple(c)
        out["timeout_s"] = _float(e.get("timeout_s", 600), f"{where}.timeout_s", lo=0.0, lo_open=True)
    if t == "ngram":
        if "target" in e:
            # documents the mix should resemble (Parquet/JSONL with `text`); default: the bundled reference set
            out["target"] = _str(e["target"], f"{where}.target")
        if "token_budget" in e:
            out["token_budget"] = _int(e["token_budget"], f"{where}.token_budget", lo=1000)
        if "order" in e:
            out["order"] = _int(e["order"], f"{where}.order", lo=1)
            if out["order"] > 2:
                raise _err(f"{where}.order", "must be 1 or 2")
    for k in ("function", "command", "timeout_s", "token_budget", "order"):
        if k in e and k not in out:
            raise _err(f"{where}.{k}", f"does not apply to a {t!r} evaluator")
    return out


EVALUATOR_FIELDS = ("type", "function", "command", "timeout_s", "token_budget", "order", "target")

_POLICY_OPTIONS: dict[str, tuple[str, ...]] = {
    "balanced": ("within_leaf",),
    "weighted": ("weights", "level", "temperature", "max_repeats", "default_weight"),
    "quality_topk": ("shares_from", "level", "gumbel_scale", "weights", "temperature", "default_weight"),
    "search": ("rounds", "scale", "pool_size", "evaluator", "eval_sample_documents", "max_repeats",
               "temperature", "max_share"),
}


def _options(policy: str, v: Any, where: str) -> dict:
    o = _map(v if v is not None else {}, where, _POLICY_OPTIONS[policy])
    out: dict[str, Any] = {}
    if policy == "balanced":
        out["within_leaf"] = _str(o.get("within_leaf", "random"), f"{where}.within_leaf", ("random", "closest"))
    elif policy == "weighted":
        out.update(_weighted_opts(o, where))
    elif policy == "quality_topk":
        out["shares_from"] = _str(o.get("shares_from", "balanced"), f"{where}.shares_from",
                                  ("balanced", "weighted", "prior"))
        out.update(_weighted_opts({k: o[k] for k in ("weights", "level", "temperature", "default_weight")
                                   if k in o}, where))
        out["gumbel_scale"] = _float(o.get("gumbel_scale", 0.0), f"{where}.gumbel_scale", lo=0.0)
        if out["shares_from"] != "weighted":
            for k in ("weights", "temperature", "default_weight"):
                if k in o:
                    raise _err(f"{where}.{k}", "only applies with shares_from: weighted")
    elif policy == "search":
        if "evaluator" in o:
            out["evaluator"] = _evaluator_opt(o["evaluator"], f"{where}.evaluator")
        if "rounds" in o:
            r = o["rounds"]
            if not isinstance(r, list) or not r:
                raise _err(f"{where}.rounds", "must be a non-empty list of candidate counts")
            out["rounds"] = tuple(_int(x, f"{where}.rounds[{i}]", lo=1) for i, x in enumerate(r))
        if "scale" in o:
            out["scale"] = _float(o["scale"], f"{where}.scale", lo=0.0, lo_open=True)
        if "pool_size" in o:
            out["pool_size"] = _int(o["pool_size"], f"{where}.pool_size", lo=1)
        if "eval_sample_documents" in o:
            out["eval_sample_documents"] = _int(o["eval_sample_documents"], f"{where}.eval_sample_documents", lo=1)
        if "max_repeats" in o:
            out["max_repeats"] = _int(o["max_repeats"], f"{where}.max_repeats", lo=1)
        if "temperature" in o:
            out["temperature"] = _float(o["temperature"], f"{where}.temperature", lo=0.0, lo_open=True)
        # stated in the spec even when defaulted, so the data card and the version say which cap held
        out["max_share"] = _float(o.get("max_share", DEFAULT_MAX_SHARE), f"{where}.max_share", lo=0.0,
                                  hi=1.0, lo_open=True)
    return out


_TOP_FIELDS = ("name", "scope", "filters", "size", "policy", "options", "seed", "formats", "redact_pii",
               "decontamination", "tokenizer")
_SIZE_FORMS = ("documents", "tokens", "documents_fraction", "tokens_fraction")


def _size(v: Any, w: Any, policy: str, options: Mapping[str, Any]) -> Size:
    """``size``: exactly one of documents, tokens, documents_fraction, tokens_fraction; an amount may
    carry ``at_most_fraction``. A fraction above 1 needs repeats: it may not exceed the policy's
    ``max_repeats`` (1 for balanced and quality_topk, which take each document at most once)."""
    s = _map(v, w("size"), (*_SIZE_FORMS, "at_most_fraction", "tokenizer"))
    forms = [f for f in _SIZE_FORMS if f in s]
    if len(forms) != 1:
        raise MixtureSpecError(f"{w('size')}: give exactly one of {', '.join(_SIZE_FORMS)}")
    form = forms[0]
    unit = form.removesuffix("_fraction")
    if "tokenizer" in s and unit != "tokens":
        raise MixtureSpecError(f"{w('size.tokenizer')}: only applies to a tokens size")
    tokenizer = _str(s.get("tokenizer", "approx"), w("size.tokenizer"), TOKENIZERS)
    repeats = int(options.get("max_repeats", 1))
    why = (f"policy {policy} takes each document at most once" if policy in ("balanced", "quality_topk")
           else f"max_repeats is {repeats}")

    def share(key: str) -> float:
        f = _float(s[key], w(f"size.{key}"), lo=0.0, lo_open=True)
        if f > repeats:
            raise MixtureSpecError(f"{w(f'size.{key}')}: must be <= {repeats} ({why}), got {f}")
        return f

    if form.endswith("_fraction"):
        if "at_most_fraction" in s:
            raise MixtureSpecError(f"{w('size.at_most_fraction')}: only applies to an amount "
                                   "(documents or tokens), not to a fraction")
        return Size(unit, None, tokenizer, fraction=share(form))
    at_most = share("at_most_fraction") if "at_most_fraction" in s else None
    return Size(unit, _int(s[form], w(f"size.{form}"), lo=1), tokenizer, at_most_fraction=at_most)


def parse_mixture_spec(d: Any, index: int = 0, base_dir: str | None = None) -> MixtureSpec:
    """Validate one spec (a mapping) and return it. Raises :class:`MixtureSpecError`.
    Relative evaluation-set paths are taken from ``base_dir`` (the spec file's folder) or the
    working directory."""
    label = f"mixture #{index + 1}"
    if not isinstance(d, Mapping):
        raise MixtureSpecError(f"{label}: must be a mapping, got {type(d).__name__}")
    if "name" in d and isinstance(d["name"], str) and d["name"]:
        label = f"mixture {d['name']!r}"
    name = d.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise MixtureSpecError(f"{label}: name: must be a non-empty string of [A-Za-z0-9._-], got {name!r}")
    d = _map(d, f"{label}:", _TOP_FIELDS, ("name", "size", "policy"))
    w = lambda f: f"{label}: {f}"  # noqa: E731

    scope = d.get("scope", "all")
    if scope != "all":
        if isinstance(scope, str):
            scope = [scope]
        if not isinstance(scope, list) or not scope:
            raise MixtureSpecError(f"{w('scope')}: must be 'all' or a non-empty list of snapshot ids")
        scope = tuple(_str(s, w(f"scope[{i}]")) for i, s in enumerate(scope))
        if len(set(scope)) != len(scope):
            raise MixtureSpecError(f"{w('scope')}: lists a snapshot twice")

    f = _map(d.get("filters") or {}, w("filters"),
             ("min_quality", "drop_semantic_duplicates", "exclude_clusters", "languages", "min_language_score"))
    languages = f.get("languages") or []
    if not isinstance(languages, list):
        raise MixtureSpecError(f"{w('filters.languages')}: must be a list of language codes, e.g. [en, de]")
    languages = tuple(_language(x, w(f"filters.languages[{i}]")) for i, x in enumerate(languages))
    excl = f.get("exclude_clusters") or []
    if not isinstance(excl, list):
        raise MixtureSpecError(f"{w('filters.exclude_clusters')}: must be a list")
    refs: list[ClusterRef | str] = []
    for i, e in enumerate(excl):
        we = w(f"filters.exclude_clusters[{i}]")
        if isinstance(e, str):
            refs.append(_str(e.strip(), we))
        else:
            e = _map(e, we, ("level", "id"), ("level", "id"))
            refs.append(ClusterRef(_int(e["level"], f"{we}.level", lo=1), _int(e["id"], f"{we}.id", lo=0)))
    filters = Filters(
        min_quality=_float(f.get("min_quality", 0.0), w("filters.min_quality"), lo=0.0, hi=1.0),
        drop_semantic_duplicates=_bool(f.get("drop_semantic_duplicates", True), w("filters.drop_semantic_duplicates")),
        exclude_clusters=tuple(refs),
        languages=tuple(dict.fromkeys(languages)),
        min_language_score=_float(f.get("min_language_score", 0.0), w("filters.min_language_score"), lo=0.0, hi=1.0),
    )

    policy = _str(d["policy"], w("policy"), POLICIES)
    options = _options(policy, d.get("options"), w("options"))
    size = _size(d["size"], w, policy, options)
    seed = _int(d.get("seed", 0), w("seed"), lo=0)
    fm = d.get("formats", ["parquet"])
    if not isinstance(fm, list) or not fm:
        raise MixtureSpecError(f"{w('formats')}: must be a non-empty list")
    fm = tuple(_str(x, w(f"formats[{i}]"), FORMATS) for i, x in enumerate(fm))
    if "parquet" not in fm:
        raise MixtureSpecError(f"{w('formats')}: must include 'parquet' (the manifest format)")
    tokenizer = None
    if d.get("tokenizer") is not None:
        tokenizer = _spec_path(_str(d["tokenizer"], w("tokenizer")), base_dir)
        candidate = os.path.join(tokenizer, "tokenizer.json") if os.path.isdir(tokenizer) else tokenizer
        if not os.path.isfile(candidate):
            raise MixtureSpecError(f"{w('tokenizer')}: no tokenizer.json at {tokenizer!r} (name the file or its folder)")
        tokenizer = os.path.abspath(tokenizer)
    if "megatron" in fm and tokenizer is None:
        raise MixtureSpecError(f"{w('formats')}: 'megatron' holds token ids: name a tokenizer (tokenizer: path/to/tokenizer.json)")
    return MixtureSpec(name=name, size=size, policy=policy, scope=scope, filters=filters,
                       options=options, seed=seed, formats=tuple(dict.fromkeys(fm)),
                       redact_pii=_bool(d.get("redact_pii", True), w("redact_pii")),
                       decontamination=_decontamination(d.get("decontamination"), w, base_dir),
                       tokenizer=tokenizer)


def _spec_path(value: str, base_dir: str | None) -> str:
    """A path a spec names: ``~`` expanded, a relative one taken from the spec file's folder."""
    return os.path.join(base_dir or os.getcwd(), os.path.expanduser(value))


def _decontamination(v: Any, w, base_dir: str | None) -> Decontamination:
    if v is None:
        return Decontamination()
    d = _map(v, w("decontamination"), ("ngram", "sets"), ("sets",))
    n = _int(d.get("ngram", 13), w("decontamination.ngram"), lo=5)
    if not isinstance(d["sets"], list) or not d["sets"]:
        raise MixtureSpecError(f"{w('decontamination.sets')}: must be a non-empty list of {{name, path, fields}}")
    sets = []
    for i, raw in enumerate(d["sets"]):
        where = w(f"decontamination.sets[{i}]")
        e = _map(raw, where, ("name", "path", "fields"), ("name", "path"))
        name = _str(e["name"], f"{where}.name")
        if not NAME_RE.match(name):
            raise MixtureSpecError(f"{where}.name: {name!r} may hold only letters, digits, '.', '_' and '-'")
        path = _spec_path(_str(e["path"], f"{where}.path"), base_dir)
        if not os.path.isfile(path) or not path.endswith((".jsonl", ".parquet")):
            raise MixtureSpecError(f"{where}.path: {path!r} is not a .jsonl or .parquet file here")
        fields = e.get("fields", ["text"])
        if not isinstance(fields, list) or not fields:
            raise MixtureSpecError(f"{where}.fields: must be a non-empty list of field names")
        sets.append(EvalSet(name, os.path.abspath(path), tuple(_str(f, f"{where}.fields[{j}]") for j, f in enumerate(fields))))
    if len({e.name for e in sets}) != len(sets):
        raise MixtureSpecError(f"{w('decontamination.sets')}: names must be unique")
    return Decontamination(n, tuple(sets))


_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")


def _language(value: Any, where: str) -> str:
    code = _str(value, where).strip().lower()
    if not _LANGUAGE_CODE.match(code):
        raise MixtureSpecError(f"{where}: {value!r} is not a language code (ISO 639-1 like en, de, zh; "
                               "three letters where none exists)")
    return code


def parse_mixture_specs(doc: Any, source: str = "<specs>", base_dir: str | None = None) -> list[MixtureSpec]:
    if isinstance(doc, Mapping):
        bad = [k for k in doc if k != "mixtures"]
        if bad:
            raise MixtureSpecError(f"{source}: {bad[0]}: unknown top-level field (expected 'mixtures')")
        doc = doc.get("mixtures")
    if not isinstance(doc, list) or not doc:
        raise MixtureSpecError(f"{source}: mixtures: must be a non-empty list of mixture specs")
    specs = [parse_mixture_spec(d, i, base_dir) for i, d in enumerate(doc)]
    seen: set[str] = set()
    for sp in specs:
        if sp.name in seen:
            raise MixtureSpecError(f"mixture {sp.name!r}: name: duplicate mixture name")
        seen.add(sp.name)
    return specs


def load_mixture_specs(path: str) -> list[MixtureSpec]:
    """Read and strictly validate a YAML file of mixture specs."""
    with open(path, encoding="utf-8") as fh:
        try:
            doc = yaml.safe_load(fh)
        except yaml.YAMLError as e:
            raise MixtureSpecError(f"{path}: not valid YAML: {e}") from e
    return parse_mixture_specs(doc, source=str(path), base_dir=os.path.dirname(os.path.abspath(path)))


# ------------------------------------------------------------------------------------------------


def _kw_list(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [t for t in re.split(r"[\s_,]+", v.lower()) if t]
    return [str(t).lower() for t in v]


def keyword_matches(keyword: str, keywords_by_cluster: Any, names: Any = None) -> list[ClusterRef]:
    """Clusters (any level) whose keywords or name contain ``keyword`` (case-insensitive, whole
    word; a multi-word keyword must appear as a substring of the name). ``keywords_by_cluster`` /
    ``names``: a list per level (0-based, leaf first) of ``{cluster id: [words] | "name"}``."""
    k = keyword.strip().lower()
    out: list[ClusterRef] = []
    seen: set[tuple[int, int]] = set()
    for src in (keywords_by_cluster, names):
        if not src:
            continue
        for t, per in enumerate(src):
            for cid, kws in (per or {}).items():
                words = _kw_list(kws)
                hit = k in words or (" " in k or "_" in k) and k.replace(" ", "_") in "_".join(words)
                if hit and (t, int(cid)) not in seen:
                    seen.add((t, int(cid)))
                    out.append(ClusterRef(t + 1, int(cid)))
    return out


def validate_against_corpus(
    spec: MixtureSpec,
    snapshots: set[str],
    cluster_ids_by_level: Sequence[set[int]],
    keywords_by_cluster: Any = None,
    names: Any = None,
) -> None:
    """Check a spec against what exists, before any work starts: scope snapshots, excluded cluster
    ids and levels, weight keys (ids at the policy's level, keywords), keywords that match nothing.
    ``cluster_ids_by_level``: 0-based list (leaf first) of the cluster ids present per level."""
    label = f"mixture {spec.name!r}"
    L = len(cluster_ids_by_level)
    if spec.scope != "all":
        missing = sorted(set(spec.scope) - set(snapshots))
        if missing:
            raise MixtureSpecError(f"{label}: scope: unknown snapshot(s) {missing} "
                                   f"(known: {sorted(snapshots)[:20]})")

    def check_ref(ref: Any, where: str, level: int | None = None) -> None:
        if isinstance(ref, str):
            if not keyword_matches(ref, keywords_by_cluster, names):
                raise MixtureSpecError(f"{label}: {where}: keyword {ref!r} matches no cluster name")
            return
        lv, cid = (ref.level, ref.id) if isinstance(ref, ClusterRef) else (level, ref)
        if lv is None or lv < 1 or lv > L:
            raise MixtureSpecError(f"{label}: {where}: level {lv} does not exist (the tree has {L} levels)")
        if cid not in cluster_ids_by_level[lv - 1]:
            raise MixtureSpecError(f"{label}: {where}: cluster id {cid} does not exist at level {lv}")

    for i, ref in enumerate(spec.filters.exclude_clusters):
        check_ref(ref, f"filters.exclude_clusters[{i}]")
    evaluator = spec.options.get("evaluator") or {}
    target = evaluator.get("target")
    if target is not None and not os.path.exists(target):
        raise MixtureSpecError(f"{label}: options.evaluator.target: no such file or folder {target!r}")
    o = spec.options
    lvl = o.get("level", "top")
    lvl_n = L if lvl == "top" else int(lvl)
    if "level" in o and not 1 <= lvl_n <= L:
        raise MixtureSpecError(f"{label}: options.level: level {lvl_n} does not exist (the tree has {L} levels)")
    w = o.get("weights")
    if isinstance(w, Mapping):
        for k in w:
            check_ref(k, f"options.weights[{k!r}]", lvl_n)
    elif w:
        for gi, g in enumerate(w):
            for j, k in enumerate(g["clusters"]):
                check_ref(k, f"options.weights[{gi}].clusters[{j}]", lvl_n)
