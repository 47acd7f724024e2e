"""Mixture library (pure Python, no Dagster): specs, policies, CLIMB/RegMix search, evaluators.

* :mod:`.spec` -- named mixtures in a YAML file, strict validation, checks against the corpus.
* :mod:`.policies` -- ``balanced`` (Vo et al.), ``weighted`` (temperature, repeat cap),
  ``quality_topk`` (WebOrganizer), ``search`` (CLIMB); :func:`build_mixture` is the entry point.
* :mod:`.search` -- Dirichlet candidates around a prior and the regressor-guided search.
* :mod:`.evaluators` -- python / command evaluators and the built-in n-gram LM proxy.
* :mod:`.duplicates` -- duplicate groups from the dedup files (a mixture takes one per group).
"""

from .duplicates import duplicate_groups, edges_frame
from .evaluators import (
    EvaluatorError,
    NgramLMEvaluator,
    command_evaluator,
    evaluator_from_options,
    python_evaluator,
)
from .policies import (
    MixtureResult,
    MixtureTargetError,
    SearchPlan,
    apply_filters,
    build_mixture,
    cluster_columns,
    draw_weighted,
    plan_search,
)
from .search import Candidate, SearchResult, candidate_caps, clip_to_caps, dirichlet_candidates, search_mixture
from .spec import (
    DEFAULT_MAX_SHARE,
    POLICIES,
    ClusterRef,
    Filters,
    MixtureSpec,
    MixtureSpecError,
    Size,
    keyword_matches,
    load_mixture_specs,
    parse_mixture_spec,
    parse_mixture_specs,
    validate_against_corpus,
)

__all__ = [
    "DEFAULT_MAX_SHARE",
    "POLICIES",
    "Candidate",
    "ClusterRef",
    "EvaluatorError",
    "Filters",
    "MixtureResult",
    "MixtureSpec",
    "MixtureSpecError",
    "MixtureTargetError",
    "NgramLMEvaluator",
    "SearchPlan",
    "SearchResult",
    "Size",
    "apply_filters",
    "build_mixture",
    "candidate_caps",
    "clip_to_caps",
    "cluster_columns",
    "command_evaluator",
    "dirichlet_candidates",
    "draw_weighted",
    "duplicate_groups",
    "edges_frame",
    "evaluator_from_options",
    "keyword_matches",
    "load_mixture_specs",
    "parse_mixture_spec",
    "parse_mixture_specs",
    "plan_search",
    "python_evaluator",
    "search_mixture",
    "validate_against_corpus",
]
