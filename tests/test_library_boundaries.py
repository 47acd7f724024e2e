"""README, Layout: `crawlmix/` is the library, with no Dagster imports outside `cli.py`.

Checked twice: no module of the package (but cli.py) names Dagster, dagster-* or the project's
Dagster wiring (`curation_assets`, `resources`) in an import statement, and importing every one of
those modules in a fresh interpreter leaves Dagster unloaded (so no import reaches it indirectly).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "crawlmix"
WIRING = ("dagster", "dagster_aws", "dagster_dbt", "dagster_postgres", "curation_assets", "resources")


def _library_modules() -> list[str]:
    modules = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "cli.py":
            continue
        parts = path.relative_to(REPO).with_suffix("").parts
        modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_library_module_imports_dagster_or_the_wiring():
    offenders = {
        str(path.relative_to(REPO)): sorted(_imported_roots(path) & set(WIRING))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "cli.py"
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}, f"library modules importing Dagster or its wiring: {offenders}"
    # the check sees imports at all: cli.py, the one allowed exception, is caught by it
    assert {"curation_assets"} & _imported_roots(PACKAGE / "cli.py")


def test_importing_the_whole_library_leaves_dagster_unloaded(tmp_path):
    modules = _library_modules()
    assert len(modules) > 20, modules
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{list(WIRING)!r})))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout[-2000:]
