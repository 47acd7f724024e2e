"""Clustering algorithms for curation (pure Python: numpy / scipy / FAISS / torch; no Dagster).

* :mod:`.kmeans` -- k-means (k-means++ init, spherical, float64 sums, empty clusters keep their
  centroid) on numpy, FAISS (CPU) or torch (CUDA) with one contract; blocked ``assign``.
* :mod:`.hierarchical` -- hierarchical k-means with resampling (Vo et al. 2024), versioned tree.
* :mod:`.sampling` -- water-filling allocation and balanced hierarchical sampling.
* :mod:`.semdedup` -- SemDeDup inside clusters, blocked (bounded memory).
* :mod:`.naming` -- cluster names from c-TF-IDF over document frequencies, streaming counts.
* :mod:`.stopwords` -- stop words per language and web boilerplate tokens.
"""

from .hierarchical import (
    HierarchicalConfig,
    HierarchicalKMeans,
    assign_paths,
    closest_per_cluster,
    fit_hierarchical_kmeans,
    paths_from_leaves,
)
from .kmeans import KMeansResult, assign, fit_kmeans, kmeans_plusplus, resolve_backend
from .naming import (
    NamingConfig,
    TermCounter,
    cluster_name,
    cluster_names,
    ctfidf,
    ctfidf_keywords,
    ctfidf_keywords_by_level,
    document_terms,
    name_coverage,
    tokenize,
)
from .sampling import TargetExceedsTotalWarning, allocate, balanced_sample
from .semdedup import (
    EXACT_TOL,
    SemDedupScores,
    semdedup,
    semdedup_all_scores,
    semdedup_cluster,
    semdedup_scores,
)

__all__ = [
    "EXACT_TOL",
    "HierarchicalConfig",
    "HierarchicalKMeans",
    "KMeansResult",
    "NamingConfig",
    "SemDedupScores",
    "TargetExceedsTotalWarning",
    "TermCounter",
    "allocate",
    "assign",
    "assign_paths",
    "balanced_sample",
    "closest_per_cluster",
    "cluster_name",
    "cluster_names",
    "ctfidf",
    "ctfidf_keywords",
    "ctfidf_keywords_by_level",
    "document_terms",
    "fit_hierarchical_kmeans",
    "fit_kmeans",
    "kmeans_plusplus",
    "name_coverage",
    "paths_from_leaves",
    "resolve_backend",
    "semdedup",
    "semdedup_all_scores",
    "semdedup_cluster",
    "semdedup_scores",
    "tokenize",
]
