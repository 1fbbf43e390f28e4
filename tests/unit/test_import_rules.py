"""Imports run one way: dashboard → geodata ← etl; app.py wires. geodata never imports dash, flask or
werkzeug (nor dashboard/etl); etl never imports dashboard or the web stack. Read from the source with
``ast`` (every import statement, including those inside functions), so a new module is covered.
Dashboard pages and shared components import neither the database nor the geometry libraries."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = {"dash", "dash_leaflet", "dash_ag_grid", "dash_bootstrap_components", "flask", "werkzeug", "waitress"}
FORBIDDEN = {
    "geodata": WEB | {"dashboard", "etl", "app", "bench", "tests"},
    "etl": WEB | {"dashboard", "app", "bench", "tests"},
    "dashboard": {"etl", "app", "bench", "tests"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_run_one_way(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, package
    bad = [f"{f.relative_to(ROOT)}:{line} imports {mod}"
           for f in files for line, mod in _imports(f) if mod in FORBIDDEN[package]]
    assert not bad, "\n".join(bad)


#: a page or a shared component reads inputs, calls geodata and shapes outputs: no SQL, no geometry
DATA_LIBS = {"sqlalchemy", "geoalchemy2", "shapely", "psycopg"}


@pytest.mark.parametrize("folder", ["dashboard/pages", "dashboard/components"])
def test_pages_and_components_touch_no_database_or_geometry_library(folder):
    files = sorted((ROOT / folder).rglob("*.py"))
    assert len(files) > 1, folder
    bad = [f"{f.relative_to(ROOT)}:{line} imports {mod}"
           for f in files for line, mod in _imports(f) if mod in DATA_LIBS]
    assert not bad, "\n".join(bad)


def test_the_rule_catches_a_violation(tmp_path):
    # the checker itself can fail: an import inside a function is found
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from flask import request\n    import dash.html\n")
    assert _imports(f) == [(2, "flask"), (3, "dash")]
