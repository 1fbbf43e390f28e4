"""Unit rules (no database): domain errors map to statuses in one table, grid ancestry, and the
business time zone is named in one place only."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dashboard.api.core import error_from_exception
from geodata import errors
from geodata.codes import CodeError, lineage

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("cls", "status"), [
    (errors.DomainError, 422), (errors.NotFoundError, 404), (errors.ConflictError, 409),
    (errors.ForbiddenError, 403), (errors.TooLargeError, 413), (errors.UnsupportedTypeError, 415),
    (errors.OutsideGridsError, 422), (errors.TransitionError, 422), (errors.IllegalTransitionError, 409),
    (errors.TransitionForbiddenError, 403),
])
def test_domain_errors_map_to_statuses_in_one_place(cls, status):
    exc = cls("some_code", "中文", "English", field="f", detail={"k": 1})
    err = error_from_exception(exc)
    assert (err.status, err.code, err.zh, err.en, err.field, err.detail) == (status, "some_code", "中文", "English",
                                                                              "f", {"k": 1})
    assert not hasattr(exc, "status")  # the domain knows no HTTP


def test_transition_errors_name_the_action_field():
    assert error_from_exception(errors.IllegalTransitionError("illegal_transition", "不能", "cannot")).field == "action"


def test_lineage_is_street_community_block():
    assert lineage("41010200100101") == ["41010200100000", "41010200100100", "41010200100101"]
    assert lineage("41010200100100") == ["41010200100000", "41010200100100"]
    assert lineage("41010200100000") == ["41010200100000"]
    with pytest.raises(CodeError):
        lineage("4101020010010")


def _zone_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value == "Asia/Shanghai":
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} names the zone")
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "ZoneInfo":
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} builds a ZoneInfo")
    return found


def test_the_business_zone_is_named_once():
    allowed = {ROOT / "geodata/settings.py": "names the zone", ROOT / "geodata/clock.py": "builds a ZoneInfo"}
    bad = [hit for pkg in ("geodata", "dashboard", "etl") for f in sorted((ROOT / pkg).rglob("*.py"))
           for hit in _zone_literals(f) if allowed.get(f, "\0") not in hit]
    assert not bad, "\n".join(bad)


def test_the_zone_check_can_fail(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    f = tmp_path / "m.py"
    f.write_text('from zoneinfo import ZoneInfo\nTZ = ZoneInfo("Asia/Shanghai")\n')
    assert len(_zone_literals(f)) == 2
