"""What `crawlmix run` tells a user, checked the way a user runs it: a subprocess on a tiny real
snapshot (two shards), then a run that fails two ways a user can cause (a snapshot of mostly
unreadable records, which fails the raw_corpus gate, and a mixture spec whose size the corpus cannot
supply), then the same with --verbose. The failure runs reuse the first run's home, as a user
re-running in the same deployment does."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from crawlmix.quality import REFERENCE_SET_PATH, load_reference_texts
from tests.conftest import REPO_ROOT, crawlmix_env

pytestmark = pytest.mark.e2e

GOOD, JUNK = "crawl-a", "junk-b"
STAGES = ["raw_corpus", "embeddings", "centroids", "cluster_labels", "semantic_duplicates",
          "quality_scores", "final_mixtures", "dbt reports"]
TINY = """
  - name: tiny
    scope: all
    filters: {min_quality: 0.0, drop_semantic_duplicates: false}
    size: {documents: 12}
    policy: weighted
    options: {level: top, temperature: 1.0, max_repeats: 2}
    seed: 0
"""
# More documents than the whole corpus holds, each taken at most once: no policy can meet it.
TOO_BIG = """
  - name: too-big
    scope: all
    filters: {min_quality: 0.0, drop_semantic_duplicates: false}
    size: {documents: 100000}
    policy: balanced
    seed: 0
"""
# What must stay off a quiet terminal: Great Expectations' context set-up, dbt's run log (streamed
# by dagster-dbt), and Dagster's console logger with its stack traces.
NOISE = [
    re.compile(r"Created temporary directory"),
    re.compile(r"Running with dbt="),
    re.compile(r"START (sql )?(table model|test)"),
    re.compile(r"Finished running .* data tests"),
    re.compile(r" - dagster - (DEBUG|INFO|WARNING|ERROR) - "),
    re.compile(r"Stack Trace:"),
    re.compile(r"Traceback \(most recent call last\)"),
]


def _write_snapshot(root: Path, snapshot: str, records: list[str]) -> None:
    """Two JSONL files (so two shards get records), then the _SUCCESS marker."""
    folder = root / snapshot
    folder.mkdir(parents=True)
    for part in range(2):
        lines = records[part::2]
        (folder / f"part-{part}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "_SUCCESS").touch()


def _good_records(n: int = 36) -> list[str]:
    """Real, distinct prose: openings of the bundled quality reference documents."""
    texts = load_reference_texts(str(REFERENCE_SET_PATH))
    step = max(1, len(texts) // n)
    return [
        json.dumps({"url": f"https://docs.example.org/{GOOD}/{i}", "text": text[:700]})
        for i, text in enumerate(texts[::step][:n])
    ]


def _junk_records() -> list[str]:
    """4 readable records spread among 60 cut-off JSON lines: each shard holds 30+ records (enough
    for the gate to judge its quarantine share), far over the 30% bound."""
    texts = load_reference_texts(str(REFERENCE_SET_PATH))[-4:]
    good = [json.dumps({"url": f"https://junk.example.org/{i}", "text": t[:500]}) for i, t in enumerate(texts)]
    broken = [json.dumps({"url": f"https://junk.example.org/broken/{i}", "text": "cut off"})[:-9] for i in range(60)]
    return [good[i // 16] if i % 16 == 0 else broken[i - 1 - i // 16] for i in range(64)]


def _crawlmix(home: Path, mixtures: Path, *args: str) -> subprocess.CompletedProcess:
    env = crawlmix_env(home)
    env.update(CRAWLMIX_SHARDS="2", CRAWLMIX_MIXTURES=str(mixtures), CRAWLMIX_DEVICE="cpu")
    return subprocess.run(
        [sys.executable, "-m", "crawlmix.cli", *args],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
    )


def _stage_lines(stdout: str) -> dict[str, list[str]]:
    """Progress lines by stage: they come before the per-partition summary table."""
    head = stdout.split("\nsnapshot/shard", 1)[0]
    return {stage: [line for line in head.splitlines() if line.startswith(stage + " ")] for stage in STAGES}


def _output_paths(stdout: str) -> list[str]:
    """Every absolute path the `outputs:` block names (folder patterns cut at `<shard>`)."""
    block = stdout.split("\noutputs:\n", 1)[1].split("open the UI:", 1)[0]
    paths = []
    for token in re.findall(r"(?<=\s)(/[^\s\]]+)", block):
        paths.append(token.split("/<shard>", 1)[0].rstrip(",;)"))
    return paths


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    snapshots = root / "snapshots"
    _write_snapshot(snapshots, GOOD, _good_records())
    good_mixtures = root / "mixtures.yaml"
    good_mixtures.write_text("mixtures:" + TINY)
    home = root / "home"
    first = _crawlmix(home, good_mixtures, "run", "--snapshots", str(snapshots))
    return {"root": root, "snapshots": snapshots, "home": home, "first": first}


def test_a_successful_run_is_quiet_with_one_progress_line_per_stage(world):
    proc = world["first"]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    terminal = proc.stdout + proc.stderr
    for pattern in NOISE:
        assert not pattern.search(terminal), f"{pattern.pattern!r} reached the terminal:\n{terminal[-3000:]}"
    lines = _stage_lines(proc.stdout)
    for stage, found in lines.items():
        assert len(found) == 1, f"{stage}: {found}\n{proc.stdout}"
        assert found[0].rstrip().endswith("ok") or "ok  (" in found[0], found[0]
    assert re.search(r"raw_corpus\s+2/2\s+shards\s+36 docs\s+[\d,.]+ docs/s\s+[\d.]+ s\s+ok", lines["raw_corpus"][0])
    assert "FAILED" not in proc.stdout
    for path in _output_paths(proc.stdout):
        assert Path(path).exists(), path
    assert "tiny: published version" in proc.stdout
    log = re.search(r"log of this command \(.*\): (\S+)", proc.stdout)
    # What the terminal was spared went to the command's log (and to each run's compute logs).
    log_text = Path(log.group(1)).read_text()
    assert "Running with dbt=" in log_text and "Created temporary directory" in log_text
    assert " - dagster - INFO - " in log_text
    compute_logs = "".join(p.read_text() for p in (world["home"] / "dagster" / "storage").rglob("compute_logs/*.err"))
    assert "Created temporary directory" in compute_logs


def test_a_failed_gate_and_an_unmet_mixture_exit_non_zero_and_say_what_to_fix(world):
    """Both failures in one --verbose run: the report is the same as a quiet run's, and the
    Great Expectations, dbt and Dagster output that a quiet run keeps in its logs is streamed."""
    root, snapshots, home = world["root"], world["snapshots"], world["home"]
    assert world["first"].returncode == 0
    _write_snapshot(snapshots, JUNK, _junk_records())
    mixtures = root / "mixtures-too-big.yaml"
    mixtures.write_text("mixtures:" + TINY + TOO_BIG)
    proc = _crawlmix(home, mixtures, "run", "--verbose", "--snapshots", str(snapshots))
    out = proc.stdout
    assert proc.returncode == 1, out[-4000:] + proc.stderr[-4000:]

    # The gate: each junk shard, its check, what it observed, what it stopped and how to re-run.
    for shard in ("000", "001"):
        assert f"FAILED check raw_corpus:expectations on partition {JUNK}/{shard}" in out, out
    assert "failing expectations: expect_column_values_to_be_between" in out
    assert "quarantine_fraction" in out
    assert "not executed because of it: embeddings" in out
    assert f"then re-run: crawlmix run --snapshots {snapshots} --snapshot {JUNK}" in out
    assert f"{home}/storage/quarantine/{JUNK}/000.parquet" in out
    assert f"not run for snapshot {JUNK}: label_shards, semantic_dedup, score_shards" in out

    # The mixture: its step error's first line, the fix, and that it was not published.
    assert "FAILED step final_mixtures on mixture too-big" in out
    assert re.search(r"error: MixtureTargetError: mixture 'too-big': target 100,?000 documents", out), out
    assert f"edit mixture 'too-big' in {mixtures}" in out
    assert "too-big: FAILED in this run: NOT published; no published version" in out
    assert "tiny: published version" in out

    lines = _stage_lines(out)
    # The centroids exist since the first run: no fit stage, so no line for it.
    assert {stage: len(found) for stage, found in lines.items()} == {s: int(s != "centroids") for s in STAGES}, lines
    assert "2 gate failed" in lines["raw_corpus"][0] and "2 skipped" in lines["embeddings"][0]
    assert "1 failed" in lines["final_mixtures"][0] and "(1 published)" in lines["final_mixtures"][0]
    assert lines["cluster_labels"][0].split()[1] == "2/2"  # the good snapshot went on

    outputs = out.split("\noutputs:\n", 1)[1]
    for path in _output_paths(out):
        assert Path(path).exists(), path
    assert not (home / "storage" / "final_mixtures" / "too-big").exists()
    assert not (home / "storage" / "embeddings" / JUNK).exists() and f"embeddings/{JUNK}" not in outputs
    assert re.search(rf"documents\s+\S+/raw_corpus/{JUNK}/<shard>.parquet\s+\[2/2 shards, gate FAILED on 000, 001\]", out)

    terminal = out + proc.stderr
    assert "Created temporary directory" in terminal  # Great Expectations' ephemeral context
    assert "Running with dbt=" in terminal and re.search(r"START sql table model", terminal)
    assert " - dagster - ERROR - " in terminal
    assert "log of this command" not in out  # nothing was diverted


def test_a_quiet_failed_run_shows_the_failure_and_none_of_the_noise(world):
    root, snapshots, home = world["root"], world["snapshots"], world["home"]
    if not (snapshots / JUNK).exists():
        _write_snapshot(snapshots, JUNK, _junk_records())
    proc = _crawlmix(home, root / "mixtures.yaml", "run", "--snapshots", str(snapshots), "--snapshot", JUNK)
    out = proc.stdout
    assert proc.returncode == 1, out[-4000:] + proc.stderr[-4000:]
    terminal = out + proc.stderr
    for pattern in NOISE:
        assert not pattern.search(terminal), f"{pattern.pattern!r} reached the terminal:\n{terminal[-3000:]}"
    for shard in ("000", "001"):
        assert f"FAILED check raw_corpus:expectations on partition {JUNK}/{shard}" in out, out
    assert "not run: build_mixture, build_reports (no snapshot came through scoring)" in out
    lines = _stage_lines(out)
    assert len(lines["raw_corpus"]) == 1 and not lines["cluster_labels"] and not lines["dbt reports"]
    for path in _output_paths(out):
        assert Path(path).exists(), path
    assert "centroids" in out and "(fit by an earlier run)" in out
    assert "tiny: not built in this run; still published" in out
    log = Path(re.search(r"log of this command \(.*\): (\S+)", out).group(1))
    assert "DagsterAssetCheckFailedError" in log.read_text() or " - dagster - ERROR - " in log.read_text()
