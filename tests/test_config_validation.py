"""Bad configuration fails early with a message naming the field, for every field there is.

Each table below is checked against the fields the code declares (the Settings dataclass, the
mixture-spec schema, the Dagster Config classes), so a field added without validation and without an
entry here fails this file.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dagster import Config, ConfigurableResource, DagsterInvalidConfigError, validate_run_config

from crawlmix.mixture import spec as spec_module
from crawlmix.mixture.spec import (
    EVALUATOR_FIELDS,
    MixtureSpecError,
    load_mixture_specs,
    parse_mixture_spec,
    validate_against_corpus,
)
from crawlmix.quality import HeuristicThresholds
from crawlmix.settings import (
    FIELD_VARIABLES,
    OTHER_VARIABLES,
    RESERVED_PREFIXES,
    Settings,
    SettingsError,
    unknown_variables,
)

REPO = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------------------------------------
# Settings (environment variables)


def _invalid_settings(tmp_path: Path) -> dict[str, list[str]]:
    a_file = tmp_path / "not-a-folder.txt"
    a_file.write_text("x")
    return {
        "CRAWLMIX_HOME": [str(a_file), "s3://bucket/home", "/tmp/a\x00b"],
        "CRAWLMIX_SNAPSHOTS": ["gs://b/x", "s3://B_AD/x", "s3://bucket/a/../b", str(a_file), "/x\x00y"],
        "CRAWLMIX_STORAGE": ["http://x/y", "s3://bucket//x", "s3://bucket/./x", str(a_file)],
        "CRAWLMIX_SHARDS": ["0", "-1", "4097", "many", "2.5"],
        "CRAWLMIX_WAREHOUSE_URL": ["not a url", "mysql://u@h/db", "duckdb://", "sqlite:///x.db"],
        "DAGSTER_HOME": [str(a_file), "postgresql://h/db"],
        "CRAWLMIX_SNAPSHOTS_PER_TICK": ["0", "1001", "five"],
        "CRAWLMIX_S3_ENDPOINT_URL": ["127.0.0.1:9000", "ftp://h", "http://h/path"],
        "CRAWLMIX_DEVICE": ["gpu", "cuda:x", "tpu"],
        "CRAWLMIX_MIXTURES": [str(tmp_path / "absent.yaml"), str(tmp_path)],
        "CRAWLMIX_URL_BLOCKLISTS": [str(tmp_path / "absent.txt"), f"{a_file},{tmp_path / 'gone'}", "/x\x00y"],
    }


def test_every_settings_field_has_one_variable():
    assert {f.name for f in dataclasses.fields(Settings)} == set(FIELD_VARIABLES)
    assert len(set(FIELD_VARIABLES.values())) == len(FIELD_VARIABLES)


def test_every_variable_has_invalid_cases(tmp_path):
    assert set(_invalid_settings(tmp_path)) == set(FIELD_VARIABLES.values())


def test_each_invalid_value_is_refused_naming_its_variable(tmp_path):
    checked = 0
    for name, values in _invalid_settings(tmp_path).items():
        for value in values:
            with pytest.raises(SettingsError) as err:
                Settings.from_env({"CRAWLMIX_HOME": str(tmp_path / "home"), name: value})
            assert name in str(err.value), (name, value, str(err.value))
            checked += 1
    assert checked == 37


def test_valid_values_of_every_variable_are_accepted(tmp_path):
    mixtures = tmp_path / "m.yaml"
    mixtures.write_text((REPO / "crawlmix" / "sample" / "mixtures.yaml").read_text())
    env = {
        "CRAWLMIX_HOME": str(tmp_path / "home"),
        "CRAWLMIX_SNAPSHOTS": "s3://crawl-bucket/snapshots",
        "CRAWLMIX_STORAGE": str(tmp_path / "storage"),
        "CRAWLMIX_SHARDS": "16",
        "CRAWLMIX_WAREHOUSE_URL": "postgresql://u@127.0.0.1:5432/test",
        "DAGSTER_HOME": str(tmp_path / "dh"),
        "CRAWLMIX_SNAPSHOTS_PER_TICK": "7",
        "CRAWLMIX_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "CRAWLMIX_DEVICE": "cuda:1",
        "CRAWLMIX_MIXTURES": str(mixtures),
        "CRAWLMIX_URL_BLOCKLISTS": f"{mixtures}, {tmp_path}",
    }
    assert set(env) == set(FIELD_VARIABLES.values())
    settings = Settings.from_env(env)
    assert (settings.shards, settings.snapshots_per_tick, settings.device) == (16, 7, "cuda:1")
    assert settings.mixtures_file == str(mixtures.resolve())
    assert settings.url_blocklists == (str(mixtures.resolve()), str(tmp_path.resolve()))


def test_unknown_crawlmix_variable_is_an_error_with_a_suggestion(tmp_path):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"CRAWLMIX_HOME": str(tmp_path), "CRAWLMIX_SHRADS": "8"})
    assert "CRAWLMIX_SHRADS (did you mean CRAWLMIX_SHARDS?)" in str(err.value)
    with pytest.raises(SettingsError, match="CRAWLMIX_STORAGE_ROOT .*did you mean CRAWLMIX_STORAGE"):
        Settings.from_env({"CRAWLMIX_HOME": str(tmp_path), "CRAWLMIX_STORAGE_ROOT": "/x"})
    with pytest.raises(SettingsError, match="CRAWLMIX_FROBNICATE"):
        Settings.from_env({"CRAWLMIX_HOME": str(tmp_path), "CRAWLMIX_FROBNICATE": "1"})


def test_known_non_setting_variables_and_test_knobs_are_accepted(tmp_path):
    env = {"CRAWLMIX_HOME": str(tmp_path), "CRAWLMIX_TEST_PG_URL": "postgresql://x@h/db"}
    env.update({name: "1" for name in OTHER_VARIABLES})
    assert unknown_variables(env) == []
    Settings.from_env(env)


def test_every_crawlmix_variable_named_in_the_repository_is_known():
    """A variable documented or read anywhere must be a setting or a registered non-setting name,
    otherwise a user who sets it gets 'unknown variable'."""
    known = set(FIELD_VARIABLES.values()) | OTHER_VARIABLES
    pattern = re.compile(r"CRAWLMIX_[A-Z0-9_]*[A-Z0-9]\b(?!_)")
    suffixes = {".py", ".yml", ".yaml", ".md", ".sh", ".toml", ".example", ".cfg", ".ini", ".sql"}
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split()
    found: dict[str, str] = {}
    for rel in listed:
        if rel == "tests/test_config_validation.py":
            continue  # names mistyped variables on purpose
        path = REPO / rel
        if not (path.suffix in suffixes or path.name.startswith("Dockerfile")) or not path.is_file():
            continue
        for name in pattern.findall(path.read_text(errors="replace")):
            found.setdefault(name, rel)
    unknown = {n: where for n, where in found.items() if n not in known and not n.startswith(RESERVED_PREFIXES)}
    assert unknown == {}
    assert set(FIELD_VARIABLES.values()) - {"DAGSTER_HOME"} <= set(found)


def test_cli_refuses_a_mistyped_variable(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "CRAWLMIX_HOME": str(tmp_path), "CRAWLMIX_SHRADS": "8"}
    proc = subprocess.run(
        [sys.executable, "-m", "crawlmix.cli", "status"], env=env, cwd=REPO, capture_output=True, text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "CRAWLMIX_SHRADS (did you mean CRAWLMIX_SHARDS?)" in proc.stderr


# ------------------------------------------------------------------------------------------------
# Mixture specs

BASE_SPEC = {"name": "m1", "size": {"documents": 100}, "policy": "balanced"}
POLICY_BASE = {
    "balanced": {},
    "weighted": {"weights": {0: 1.0}},
    "quality_topk": {"shares_from": "weighted", "weights": {0: 1.0}},
    "search": {},
}

# field path -> (policy, the spec's fields overridden with an invalid value)
INVALID_SPEC_FIELDS: dict[str, tuple[str, dict]] = {
    "name": ("balanced", {"name": "bad name/with slash"}),
    "scope": ("balanced", {"scope": []}),
    "filters": ("balanced", {"filters": ["min_quality"]}),
    "filters.min_quality": ("balanced", {"filters": {"min_quality": 1.5}}),
    "filters.drop_semantic_duplicates": ("balanced", {"filters": {"drop_semantic_duplicates": "yes"}}),
    "filters.exclude_clusters": ("balanced", {"filters": {"exclude_clusters": [{"level": 0, "id": 1}]}}),
    "filters.languages": ("balanced", {"filters": {"languages": ["English"]}}),
    "redact_pii": ("balanced", {"redact_pii": "sometimes"}),
    "tokenizer": ("balanced", {"tokenizer": "/no/such/tokenizer.json"}),
    "decontamination": ("balanced", {"decontamination": ["squad"]}),
    "decontamination.ngram": ("balanced", {"decontamination": {"ngram": 2, "sets": [{"name": "a", "path": __file__}]}}),
    "decontamination.sets": ("balanced", {"decontamination": {"sets": []}}),
    "decontamination.sets.name": ("balanced", {"decontamination": {"sets": [{"name": "a b", "path": __file__}]}}),
    "decontamination.sets.path": ("balanced", {"decontamination": {"sets": [{"name": "a", "path": "/no/such.jsonl"}]}}),
    "decontamination.sets.fields": ("balanced", {"decontamination": {"sets": [
        {"name": "a", "path": str(REPO / "crawlmix" / "sample" / "evals" / "docs-qa.jsonl"), "fields": []}]}}),
    "filters.min_language_score": ("balanced", {"filters": {"min_language_score": 2}}),
    "size": ("balanced", {"size": {"documents": 10, "tokens": 10}}),
    "size.documents": ("balanced", {"size": {"documents": 0}}),
    "size.tokens": ("balanced", {"size": {"tokens": -5}}),
    "size.tokenizer": ("balanced", {"size": {"tokens": 1000, "tokenizer": "gpt2"}}),
    # YAML `documents_fraction` / `tokens_fraction`: a share of the filtered pool (balanced takes at most all of it)
    "size.fraction": ("balanced", {"size": {"documents_fraction": 1.5}}),
    "size.at_most_fraction": ("balanced", {"size": {"documents": 10, "at_most_fraction": 0}}),
    "policy": ("balanced", {"policy": "random"}),
    "options": ("balanced", {"options": "closest"}),
    "seed": ("balanced", {"seed": -1}),
    "formats": ("balanced", {"formats": ["csv"]}),
    "options.balanced.within_leaf": ("balanced", {"options": {"within_leaf": "farthest"}}),
    "options.weighted.weights": ("weighted", {"options": {"weights": {0: -1.0}}}),
    "options.weighted.level": ("weighted", {"options": {"weights": {0: 1.0}, "level": 0}}),
    "options.weighted.temperature": ("weighted", {"options": {"weights": {0: 1.0}, "temperature": 0}}),
    "options.weighted.max_repeats": ("weighted", {"options": {"weights": {0: 1.0}, "max_repeats": 0}}),
    "options.weighted.default_weight": ("weighted", {"options": {"weights": {0: 1.0}, "default_weight": -2}}),
    "options.quality_topk.shares_from": ("quality_topk", {"options": {"shares_from": "magic"}}),
    "options.quality_topk.level": ("quality_topk", {"options": {"level": "bottom"}}),
    "options.quality_topk.gumbel_scale": ("quality_topk", {"options": {"gumbel_scale": -1}}),
    "options.quality_topk.weights": ("quality_topk", {"options": {"shares_from": "balanced", "weights": {0: 1.0}}}),
    "options.quality_topk.temperature": ("quality_topk", {"options": {"shares_from": "weighted", "weights": {0: 1}, "temperature": -1}}),
    "options.quality_topk.default_weight": ("quality_topk", {"options": {"default_weight": 0.5}}),
    "options.search.rounds": ("search", {"options": {"rounds": [4, 0]}}),
    "options.search.scale": ("search", {"options": {"scale": 0}}),
    "options.search.pool_size": ("search", {"options": {"pool_size": 0}}),
    "options.search.evaluator": ("search", {"options": {"evaluator": "oracle"}}),
    "options.search.eval_sample_documents": ("search", {"options": {"eval_sample_documents": 0}}),
    "options.search.max_repeats": ("search", {"options": {"max_repeats": 0}}),
    "options.search.temperature": ("search", {"options": {"temperature": -1}}),
    "options.search.max_share": ("search", {"options": {"max_share": 0}}),
    "options.search.evaluator.type": ("search", {"options": {"evaluator": {"type": "human"}}}),
    "options.search.evaluator.function": ("search", {"options": {"evaluator": {"type": "python", "function": "no colon"}}}),
    "options.search.evaluator.command": ("search", {"options": {"evaluator": {"type": "command", "command": "rm -rf /"}}}),
    "options.search.evaluator.timeout_s": ("search", {"options": {"evaluator": {"type": "command", "command": ["x"], "timeout_s": 0}}}),
    "options.search.evaluator.token_budget": ("search", {"options": {"evaluator": {"type": "ngram", "token_budget": 10}}}),
    "options.search.evaluator.order": ("search", {"options": {"evaluator": {"type": "ngram", "order": 3}}}),
    "options.search.evaluator.target": ("search", {"options": {"evaluator": {"type": "ngram", "target": ""}}}),
}


def _declared_spec_fields() -> set[str]:
    paths = set(spec_module._TOP_FIELDS)
    paths |= {f"filters.{f.name}" for f in dataclasses.fields(spec_module.Filters)}
    paths |= {"size.documents", "size.tokens"} | {
        f"size.{f.name}" for f in dataclasses.fields(spec_module.Size) if f.name not in ("unit", "value")
    }
    for policy, names in spec_module._POLICY_OPTIONS.items():
        paths |= {f"options.{policy}.{n}" for n in names}
    paths |= {f"options.search.evaluator.{n}" for n in EVALUATOR_FIELDS}
    paths |= {f"decontamination.{f.name}" for f in dataclasses.fields(spec_module.Decontamination)}
    paths |= {f"decontamination.sets.{f.name}" for f in dataclasses.fields(spec_module.EvalSet)}
    return paths


def test_every_spec_field_has_an_invalid_case():
    assert set(INVALID_SPEC_FIELDS) == _declared_spec_fields()


@pytest.mark.parametrize("path", sorted(INVALID_SPEC_FIELDS))
def test_invalid_spec_field_is_named_in_the_error(path):
    policy, override = INVALID_SPEC_FIELDS[path]
    spec = {**BASE_SPEC, "policy": policy, "options": POLICY_BASE[policy], **override}
    with pytest.raises(MixtureSpecError) as err:
        parse_mixture_spec(spec)
    message = str(err.value)
    # The error names the field as written in YAML (policy-specific options under `options.`).
    written = re.sub(r"^options\.(balanced|weighted|quality_topk|search)\.", "options.", path)
    assert written.split(".")[-1] in message and message.startswith("mixture "), message
    if "." in written:
        assert written.rsplit(".", 1)[0].split(".")[0] in message, message


@pytest.mark.parametrize(
    "spec, field",
    [
        ({**BASE_SPEC, "sise": {"documents": 1}}, "sise"),
        ({**BASE_SPEC, "filters": {"min_qualty": 0.2}}, "filters.min_qualty"),
        ({**BASE_SPEC, "size": {"documents": 1, "docs": 2}}, "size.docs"),
        ({**BASE_SPEC, "options": {"within_leaf": "random", "temperature": 1}}, "options.temperature"),
        ({**BASE_SPEC, "policy": "search", "options": {"evaluator": {"type": "ngram", "budget": 1}}}, "options.evaluator.budget"),
        ({**BASE_SPEC, "filters": {"exclude_clusters": [{"level": 1, "id": 2, "name": "x"}]}}, "filters.exclude_clusters[0].name"),
        ({**BASE_SPEC, "policy": "weighted", "options": {"weights": [{"clusters": [1], "weight": 1, "w": 2}]}}, "options.weights[0].w"),
    ],
)
def test_unknown_spec_fields_are_rejected(spec, field):
    with pytest.raises(MixtureSpecError, match=re.escape(field) + ": unknown field"):
        parse_mixture_spec(spec)


def test_unknown_top_level_key_in_a_spec_file(tmp_path):
    path = tmp_path / "specs.yaml"
    path.write_text(yaml.safe_dump({"mixtures": [BASE_SPEC], "mixturs": []}))
    with pytest.raises(MixtureSpecError, match="mixturs: unknown top-level field"):
        load_mixture_specs(str(path))


def test_spec_referring_to_missing_snapshot_or_cluster_fails_before_work(tmp_path):
    ids = [set(range(6)), {0, 1}]
    keywords = [{i: [f"topic{i}"] for i in range(6)}, {0: ["science"], 1: ["sport"]}]

    def check(spec):
        validate_against_corpus(parse_mixture_spec(spec), {"snap-a"}, ids, keywords)

    check({**BASE_SPEC, "scope": ["snap-a"]})
    cases = [
        ({**BASE_SPEC, "scope": ["snap-a", "snap-missing"]}, "scope: unknown snapshot(s) ['snap-missing']"),
        ({**BASE_SPEC, "filters": {"exclude_clusters": [{"level": 1, "id": 9}]}}, "cluster id 9 does not exist at level 1"),
        ({**BASE_SPEC, "filters": {"exclude_clusters": [{"level": 3, "id": 0}]}}, "level 3 does not exist"),
        ({**BASE_SPEC, "filters": {"exclude_clusters": ["casino"]}}, "keyword 'casino' matches no cluster"),
        ({**BASE_SPEC, "policy": "weighted", "options": {"weights": {7: 1.0}}}, "options.weights[7]: cluster id 7 does not exist at level 2"),
        ({**BASE_SPEC, "policy": "search", "options": {"evaluator": {"type": "ngram", "target": str(tmp_path / "no.parquet")}}},
         "options.evaluator.target: no such file"),
    ]
    for spec, expected in cases:
        with pytest.raises(MixtureSpecError) as err:
            check(spec)
        assert expected in str(err.value) and "mixture 'm1'" in str(err.value)


# ------------------------------------------------------------------------------------------------
# Dagster run config (Config classes of the assets and checks)


def _config_classes() -> list[type[Config]]:
    import curation_assets

    found = []
    for module_path in sorted((REPO / "curation_assets").glob("*.py")):
        module = __import__(f"curation_assets.{module_path.stem}", fromlist=["_"])
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(obj, Config)
                and not issubclass(obj, ConfigurableResource)
                and obj.__module__ == module.__name__
            ):
                found.append(obj)
    assert curation_assets
    return sorted(found, key=lambda c: c.__name__)


# (class, field) -> a value of the right type that is out of range, or a wrong type where the type
# is the only constraint
INVALID_CONFIG_VALUES: dict[tuple[str, str], object] = {
    ("RawCorpusConfig", "text_field"): "",
    ("RawCorpusConfig", "url_field"): "",
    ("RawCorpusConfig", "extractor"): "boilerpipe",
    ("RawCorpusConfig", "max_record_bytes"): 0,
    ("RawCorpusConfig", "max_text_chars"): -1,
    ("RawCorpusConfig", "min_text_chars"): -1,
    ("RawCorpusGateConfig", "max_quarantine_fraction"): 1.5,
    ("RawCorpusGateConfig", "max_text_chars"): 0,
    ("RawCorpusGateConfig", "min_records_for_fraction"): -1,
    ("CentroidsConfig", "snapshots"): "snap-a",
    ("CentroidsConfig", "ks"): ["ten"],
    ("CentroidsConfig", "sample_size"): 0,
    ("CentroidsConfig", "n_iter"): 0,
    ("CentroidsConfig", "resampling_steps"): [0.5],
    ("CentroidsConfig", "upper_weights"): "votes",
    ("CentroidsConfig", "seed"): -1,
    ("LabelDriftConfig", "max_drift_ratio"): 0.0,
    ("SemanticDuplicatesConfig", "scope"): "everything",
    ("SemanticDuplicatesConfig", "eps"): -0.1,
    ("SemanticDuplicatesConfig", "order"): "sideways",
    ("SemanticDuplicatesConfig", "seed"): -3,
    ("EmbeddingsGateConfig", "norm_tolerance"): -1e-3,
    ("EmbeddingsGateConfig", "min_total_variance"): -1.0,
    ("QualityConfig", "reference_path"): "",
    ("QualityConfig", "seed"): -1,
    ("QualityConfig", "thresholds"): {"min_words": "many"},
    ("FilterImpactConfig", "max_rule_removal"): 2.0,
}


def test_every_config_field_has_an_invalid_case():
    declared = {(cls.__name__, name) for cls in _config_classes() for name in cls.model_fields}
    assert declared == set(INVALID_CONFIG_VALUES)


@pytest.mark.parametrize("cls_name, field", sorted(INVALID_CONFIG_VALUES))
def test_invalid_config_value_is_refused_naming_the_field(cls_name, field):
    cls = next(c for c in _config_classes() if c.__name__ == cls_name)
    with pytest.raises(Exception) as err:
        cls(**{field: INVALID_CONFIG_VALUES[(cls_name, field)]})
    assert field in str(err.value), str(err.value)


def test_unknown_threshold_names_are_refused():
    from curation_assets.quality import QualityConfig

    with pytest.raises(ValueError, match=r"unknown names \['min_wrds'\]"):
        QualityConfig(thresholds={"min_wrds": 3}).heuristic_thresholds()
    numeric = [
        f.name for f in dataclasses.fields(HeuristicThresholds)
        if isinstance(getattr(HeuristicThresholds(), f.name), (int, float))
    ]
    overridden = QualityConfig(thresholds={name: 7 for name in numeric}).heuristic_thresholds()
    assert all(getattr(overridden, name) == 7 for name in numeric)


def test_run_config_unknown_keys_and_bad_types_are_rejected_by_dagster(tmp_path):
    """Every op with config in every job: an unknown key and a wrongly typed value are refused by
    Dagster's run-config validation, before a run starts, with the path of the field."""
    from curation_assets.definitions import build_definitions
    from tests.dagster_harness import settings_for

    defs = build_definitions(settings_for(tmp_path / "home"))
    wrong_type = {int: "x", float: "x", str: 3, bool: "x", list: 3, dict: 3}
    checked = set()
    for job in defs.get_repository_def().get_all_jobs():
        for node in job.graph.node_dict.values():
            config_field = node.definition.config_field
            if config_field is None or not getattr(config_field.config_type, "fields", None):
                continue
            op = node.name
            with pytest.raises(DagsterInvalidConfigError) as err:
                validate_run_config(job, {"ops": {op: {"config": {"no_such_field": 1}}}})
            assert "no_such_field" in str(err.value) and op in str(err.value)
            for name, field in config_field.config_type.fields.items():
                config_type = field.config_type
                while config_type.kind.name == "NONEABLE":
                    config_type = config_type.inner_type
                kind, key = config_type.kind.name, config_type.key
                python_type = (
                    {"ARRAY": list, "MAP": dict, "PERMISSIVE_SHAPE": dict, "ENUM": int}.get(kind)
                    or next((t for word, t in (("Int", int), ("Float", float), ("String", str), ("Bool", bool)) if word in key), None)
                )
                assert python_type is not None, (op, name, kind, key)
                with pytest.raises(DagsterInvalidConfigError) as err:
                    validate_run_config(job, {"ops": {op: {"config": {name: wrong_type[python_type]}}}})
                assert f"{op}:config:{name}" in str(err.value), str(err.value)
                checked.add((op, name))
    assert len({op for op, _ in checked}) >= 6
