"""The planner page's callback bodies on the demo database (rolled back after each test): the live
check (valid / problems where they are / not a planner), the operation buttons, save as one change
set, a conflicting save writing nothing, history, diff, revert, the boundaries as of a day."""
from __future__ import annotations

import contextlib
import datetime as dt
import json

import plotly
import pytest
import shapely
from dash import no_update
from shapely.geometry import mapping
from sqlalchemy import text as sql

from dashboard.context import Context, Viewer
from dashboard.pages.planner import callbacks as cb
from dashboard.pages.planner import ids
from dashboard.services import Services
from geodata.access.scope import Scope
from geodata.grids import store
from geodata.grids.changesets import Author
from geodata.settings import Settings
from tests.world import TZ

ALL = Scope.everything(personal_data=True)
AUTHOR = Author(None, "测试规划员")


def at(lang: str = "zh") -> Context:
    return Context(viewer=Viewer(key="test"), scope=ALL, lang=lang, tz=TZ)


def _text(component) -> str:
    return json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder, ensure_ascii=False)


@pytest.fixture
def rsvc(db, demo_engine):
    """Services whose every session is the test's rolled-back one."""
    class RollbackServices(Services):
        def session(self, ctx):
            return contextlib.nullcontext(db)

    return RollbackServices(engine=demo_engine, settings=Settings(database_url="postgresql://unused/x"))


def neighbours(db):
    """Two blocks of one community sharing a boundary longer than 50 m, and that boundary."""
    blocks = store.current_grids(db, 3)
    for a in blocks:
        for b in blocks:
            if a.code < b.code and a.parent_code == b.parent_code:
                shared = shapely.intersection(a.geom.boundary, b.geom.boundary)
                if shared.length > 0.0005:
                    return a, b, shared
    raise AssertionError("no two neighbouring blocks in the demo")


def moved_edit(db, both: bool = True) -> dict:
    """planner.js's edit for a bump of b given to a (both neighbours: valid; only a: an overlap)."""
    a, b, shared = neighbours(db)
    bump = shapely.intersection(b.geom, shared.interpolate(0.5, normalized=True).buffer(0.00015, quad_segs=4))
    grids = [{"code": a.code, "geometry": mapping(shapely.union(a.geom, bump))}]
    if both:
        grids.append({"code": b.code, "geometry": mapping(shapely.difference(b.geom, bump))})
    return {"grids": grids, "base": {g["code"]: (a if g["code"] == a.code else b).id for g in grids}}


def test_layout_has_the_map_tools_and_every_grid(rsvc):
    zh, en = cb.page_layout(rsvc, at("zh")), cb.page_layout(rsvc, at("en"))
    for cid in (ids.MAP, ids.GRIDS, ids.EDIT, ids.SAVE, ids.IMPACT, ids.HISTORY, ids.REVERT):
        assert f'"id": "{cid}"' in _text(zh)
    assert "网格边界规划" in _text(zh) and "Grid boundary planner" in _text(en)
    grids = next(c for c in zh.children if getattr(c, "id", None) == ids.GRIDS).data
    levels = {f["properties"]["level"] for f in grids["features"]}
    assert levels == {1, 2, 3} and len(grids["bbox"]) == 4
    assert all(f["properties"]["version_id"] for f in grids["features"])


def test_a_moved_shared_boundary_is_valid_with_its_impact(rsvc, db):
    check, problems, rows, summary, disabled = cb.check_outputs(rsvc, at(), AUTHOR, moved_edit(db), [])
    assert check["valid"] and disabled is False
    assert "校验通过" in _text(problems)
    codes = {r["code"] for r in rows if r["what"] == "修改"}
    a, b, _ = neighbours(db)
    assert codes == {a.code, b.code}
    assert "修改 2 个" in summary
    json.dumps(check)   # the store holds JSON (times as text)


def test_one_neighbour_alone_is_an_overlap_shown_where_it_is_and_save_stays_disabled(rsvc, db):
    check, problems, _rows, _summary, disabled = cb.check_outputs(rsvc, at("en"), AUTHOR, moved_edit(db, both=False), [])
    assert not check["valid"] and disabled is True
    a, b, _ = neighbours(db)
    assert any(p["kind"] == "overlap" for p in check["problems"]), check["problems"]
    shown = check["problems_geojson"]["features"]
    assert shown and all(f["geometry"] for f in shown)
    overlap = next(f for f in shown if f["properties"]["kind"] == "overlap")
    assert a.code in overlap["properties"]["message"] or b.code in overlap["properties"]["message"]
    assert "overlap" in _text(problems).lower()


def test_not_a_planner_gets_nothing(rsvc, db):
    check, problems, rows, _summary, disabled = cb.check_outputs(rsvc, at(), None, moved_edit(db), [])
    assert check is None and disabled is True and "无权" in problems and rows == []
    out = cb.save_outputs(rsvc, at(), None, moved_edit(db), [], "原因", "now", None)
    assert "无权" in out[0] and all(o is no_update for o in out[1:])


def test_no_edit_means_nothing_to_save(rsvc):
    check, problems, _rows, _summary, disabled = cb.check_outputs(rsvc, at(), AUTHOR, None, [])
    assert check is None and disabled is True and problems == "尚无修改"


def test_operation_buttons_build_the_operations():
    sel1, sel2 = {"codes": ["41010200100101"]}, {"codes": ["41010200100101", "41010200100102"]}
    line = {"type": "LineString", "coordinates": [[113.6, 34.7], [113.7, 34.8]]}
    ops, status = cb.ops_outputs(ids.OP_SPLIT, sel1, None, None, [], "zh")
    assert ops is no_update and "画一条" in status
    ops, _ = cb.ops_outputs(ids.OP_SPLIT, sel1, line, None, [], "zh")
    assert ops == [{"op": "split", "code": "41010200100101", "line": line}]
    ops, _ = cb.ops_outputs(ids.OP_MERGE, sel2, None, None, ops, "zh")
    assert ops[-1] == {"op": "merge", "codes": sel2["codes"]} and len(ops) == 2
    ops2, status = cb.ops_outputs(ids.OP_MERGE, sel1, None, None, ops, "en")
    assert ops2 is no_update and "two adjacent" in status
    ops, _ = cb.ops_outputs(ids.OP_MOVE, sel1, None, "41010200200000", ops, "zh")
    assert ops[-1] == {"op": "move", "code": "41010200100101", "parent": "41010200200000"}
    ops, status = cb.ops_outputs(ids.RESET, sel1, None, None, ops, "zh")
    assert ops == []
    ops, _ = cb.ops_outputs(ids.OP_SUBDIVIDE, sel1, line, None, [], "zh")
    assert ops == [{"op": "subdivide", "code": "41010200100101", "lines": [line]}]


def test_a_merge_is_checked_with_codes_retired(rsvc, db):
    a, b, _ = neighbours(db)
    check, _problems, rows, _summary, disabled = cb.check_outputs(
        rsvc, at(), AUTHOR, None, [{"op": "merge", "codes": [a.code, b.code]}])
    assert check["valid"] and not disabled, check["problems"]
    assert [r["code"] for r in rows if r["what"] == "撤销"] == [max(a.code, b.code)]


def test_a_split_that_misses_says_so(rsvc, db):
    a, _, _ = neighbours(db)
    far = {"type": "LineString", "coordinates": [[100.0, 30.0], [100.1, 30.1]]}
    check, problems, _rows, _summary, disabled = cb.check_outputs(rsvc, at(), AUTHOR, None,
                                                                [{"op": "split", "code": a.code, "line": far}])
    assert check is None and disabled is True and "分割线未将网格" in _text(problems)


def test_save_then_a_stale_save_is_refused_and_writes_nothing_then_diff_and_revert(rsvc, db):
    a, b, _ = neighbours(db)
    edit = moved_edit(db)
    n_sets = db.execute(sql("SELECT count(*) FROM grid_change_set")).scalar_one()
    saved, grids, ops, cleared, rows, options, _diff = cb.save_outputs(rsvc, at(), AUTHOR, edit, [], "调整两网格边界",
                                                                      "now", None)
    assert "已保存变更集" in saved, saved
    cs_id = int(saved.split("#")[1].split("（")[0])
    assert rows[0]["id"] == cs_id and rows[0]["reason"] == "调整两网格边界" and ops == [] and cleared is None
    assert options[0]["value"] == cs_id
    now_a = next(f for f in grids["features"] if f["properties"]["code"] == a.code)
    assert now_a["properties"]["version_id"] != a.id    # the map reloads the new version
    # a second planner drew on the old versions: refused, naming the grids and the change set
    before = db.execute(sql("SELECT count(*) FROM grid_change_set")).scalar_one()
    assert before == n_sets + 1
    out = cb.save_outputs(rsvc, at(), AUTHOR, edit, [], "另一个规划员", "now", None)
    msg = _text(out[0])
    assert "已被修改" in msg and f"#{cs_id}" in msg and a.code in msg and "未写入任何内容" in msg
    assert all(o is no_update for o in out[1:6])
    assert out[6]["features"]       # what changed in between, on the map
    assert db.execute(sql("SELECT count(*) FROM grid_change_set")).scalar_one() == before
    # the diff of the change set: a gained, b lost
    shapes, drows = cb.diff_outputs(rsvc, at(), AUTHOR, cs_id)
    parts = {(f["properties"]["code"], f["properties"]["part"]) for f in shapes["features"]}
    assert (a.code, "gained") in parts and (b.code, "lost") in parts
    assert {r["code"] for r in drows} == {a.code, b.code}
    # revert as a new change set
    out = cb.revert_outputs(rsvc, at(), AUTHOR, cs_id)
    assert f"已撤销变更集 #{cs_id}" in out[0], out[0]
    assert db.execute(sql("SELECT count(*) FROM grid_change_set")).scalar_one() == before + 1
    back = next(f for f in out[1]["features"] if f["properties"]["code"] == a.code)
    assert shapely.equals_exact(shapely.geometry.shape(back["geometry"]), a.geom, 1e-9)


def test_save_needs_a_reason_and_a_later_day(rsvc, db):
    out = cb.save_outputs(rsvc, at(), AUTHOR, moved_edit(db), [], "", "now", None)
    assert "请填写调整原因" in _text(out[0])
    out = cb.save_outputs(rsvc, at("en"), AUTHOR, moved_edit(db), [], "why", "later", None)
    assert "pick the day" in _text(out[0])


def test_a_later_effective_day_keeps_the_map_until_then(rsvc, db):
    a, _, _ = neighbours(db)
    day = (dt.datetime.now(TZ) + dt.timedelta(days=3)).date().isoformat()
    saved, grids, *_ = cb.save_outputs(rsvc, at(), AUTHOR, moved_edit(db), [], "下周生效", "later", day)
    assert "已保存变更集" in saved and "—" in saved   # no issue re-assigned yet
    still = next(f for f in grids["features"] if f["properties"]["code"] == a.code)
    assert still["properties"]["version_id"] == a.id
    later = cb.asof_outputs(rsvc, at(), AUTHOR, day, 3)
    assert next(f for f in later["features"] if f["properties"]["code"] == a.code)["properties"]["version_id"] != a.id
    assert cb.asof_outputs(rsvc, at(), None, day, 3) is None


# -- a proposal from a file ----------------------------------------------------------------------------
@pytest.fixture
def importer():
    """The file import as app.create_app wires it (etl's propose_upload behind the planner's hook)."""
    from types import SimpleNamespace

    from app import wire_grid_import

    server = SimpleNamespace(extensions={})
    wire_grid_import(server)
    return server.extensions[cb.GRID_IMPORT]


def data_url(body: bytes) -> str:
    import base64

    return "data:application/geo+json;base64," + base64.b64encode(body).decode()


def file_of(db, grids: list[dict]) -> bytes:
    names = {g.code: g.name for g in store.current_grids(db, 3)}
    return json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": g["geometry"], "properties": {"code": g["code"], "name": names[g["code"]]}}
        for g in grids]}, ensure_ascii=False).encode()


def _proposals(db) -> int:
    return db.execute(sql("SELECT count(*) FROM grid_proposal")).scalar_one()


def test_a_file_becomes_a_proposal_with_its_impact_then_is_applied(rsvc, db, importer):
    edit = moved_edit(db)
    a, b = (g["code"] for g in edit["grids"])
    out = cb.import_outputs(rsvc, at(), AUTHOR, importer, data_url(file_of(db, edit["grids"])), "moved.geojson", 3,
                            "沿道路调整", None)
    message, pid, check, problems, impact_rows, summary, disabled, no_discard, no_export, drafts = out
    assert isinstance(pid, int) and check["valid"] is True and disabled is no_discard is no_export is False
    assert drafts[0]["value"] == pid and "moved.geojson" in drafts[0]["label"]   # listed among the drafts
    assert "gw-pl-valid" in _text(problems)
    assert "moved.geojson" in _text(message) and f"#{pid}" in _text(message)
    assert {f["properties"]["code"] for f in check["grids"]["features"]} == {a, b}
    assert {r["code"] for r in impact_rows} >= {a, b} and summary
    note, grids, rows, options, imported, apply_disabled, cleared, *_buttons, drafts = cb.apply_proposal_outputs(
        rsvc, at(), AUTHOR, pid, "now", None)
    assert "已保存变更集" in note and imported is None and apply_disabled is True and cleared is None
    assert pid not in {d["value"] for d in drafts}   # applied: no longer a draft
    assert rows[0]["reason"] == "沿道路调整" and options[0]["value"] == rows[0]["id"]
    assert grids != no_update and grids["features"]
    moved = {g.code: g.geom for g in store.current_grids(db, 3)}
    want = shapely.geometry.shape(edit["grids"][0]["geometry"])
    assert shapely.symmetric_difference(moved[a], want).area < 1e-9 * want.area   # the file's boundary
    # applied once: again is refused, one message
    again = cb.apply_proposal_outputs(rsvc, at(), AUTHOR, pid, "now", None)
    assert f"方案 #{pid} 已应用" in _text(again[0]) and again[1] is no_update


def test_a_file_with_problems_lists_them_and_saves_nothing(rsvc, db, importer):
    edit = moved_edit(db, both=False)   # only a: an overlap with b
    before = _proposals(db)
    message, pid, check, problems, rows, summary, disabled, *_rest = cb.import_outputs(
        rsvc, at("en"), AUTHOR, importer, data_url(file_of(db, edit["grids"])), "overlap.geojson", 3, "r", None)
    assert pid is None and disabled is True and check["valid"] is False and rows == [] and summary == ""
    assert "overlap.geojson" in _text(message) and "nothing saved" in _text(message)
    assert edit["grids"][0]["code"] in _text(problems) and check["problems_geojson"]["features"]
    assert _proposals(db) == before


@pytest.mark.parametrize("author,hook,contents,reason,says", [
    (None, True, "data:x;base64,e30=", "r", "may not edit"),
    (AUTHOR, False, "data:x;base64,e30=", "r", "not enabled"),
    (AUTHOR, True, "data:x;base64,e30=", "  ", "reason first"),
    (AUTHOR, True, "data:x;base64,e30", "r", "invalid"),          # base64 without its padding
    (AUTHOR, True, "data:x;base64,e30=", "r", "unsupported file type"),   # filename without a known suffix
])
def test_a_refused_upload_says_why_and_saves_nothing(rsvc, db, importer, author, hook, contents, reason, says):
    before = _proposals(db)
    out = cb.import_outputs(rsvc, at("en"), author, importer if hook else None, contents, "x.txt", 3, reason, None)
    assert says in _text(out[0]) and out[1] is None and out[6] is True
    assert _proposals(db) == before


def test_save_a_draft_open_export_discard(rsvc, db):
    edit = moved_edit(db)
    a, b = (g["code"] for g in edit["grids"])
    before = {g.code: g.geom for g in store.current_grids(db, 3)}
    out = cb.draft_outputs(rsvc, at(), AUTHOR, edit, [], "草案：沿道路调整", "now", None)
    message, pid, check = out[:3]
    assert isinstance(pid, int) and check["valid"] is True and f"#{pid}" in _text(message)
    assert out[9][0]["value"] == pid
    # a draft is not in effect
    assert {g.code: g.geom for g in store.current_grids(db, 3)}[a].equals(before[a])
    opened = cb.open_outputs(rsvc, at("en"), AUTHOR, pid)
    assert opened[1] == pid and opened[6] is False and "草案：沿道路调整" in _text(opened[0])
    export = cb.export_outputs(rsvc, at(), AUTHOR, pid)
    fc = json.loads(export["content"])
    assert export["filename"] == f"proposal-{pid}.geojson"
    assert {f["properties"]["code"]: f["properties"]["status"] for f in fc["features"]} == {a: "changed", b: "changed"}
    gone = cb.discard_outputs(rsvc, at(), AUTHOR, pid)
    assert gone[1] is None and pid not in {d["value"] for d in gone[9]}
    assert db.execute(sql("SELECT status FROM grid_proposal WHERE id = :p"), {"p": pid}).scalar_one() != "draft"
    # a reason is required, and a stranger gets nothing
    assert "gw-pl-error" in _text(cb.draft_outputs(rsvc, at(), AUTHOR, edit, [], "  ", "now", None)[0])
    assert cb.draft_outputs(rsvc, at(), None, edit, [], "r", "now", None)[1] is None
    assert cb.export_outputs(rsvc, at(), None, pid) is no_update


def test_an_opened_draft_whose_grids_changed_cannot_be_applied(rsvc, db):
    edit = moved_edit(db)
    pid = cb.draft_outputs(rsvc, at(), AUTHOR, edit, [], "先存草案", "now", None)[1]
    cb.save_outputs(rsvc, at(), AUTHOR, edit, [], "另一位规划员先保存", "now", None)   # the same grids changed
    opened = cb.open_outputs(rsvc, at(), AUTHOR, pid)
    assert opened[6] is True and "已被修改" in _text(opened[3])
