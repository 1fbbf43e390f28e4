"""The planner's topology (dashboard/assets/planner.js, ``gridwatch.planner.topo``) run in node:
shared vertices, moving one in every grid, inserting on a shared edge, removing, snapping, the spec."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "dashboard" / "assets" / "planner.js"

# two unit squares side by side sharing the edge x = 1, and the community around both
A = {"type": "Feature", "properties": {"code": "A", "level": 3, "version_id": 11},
     "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}}
B = {"type": "Feature", "properties": {"code": "B", "level": 3, "version_id": 12},
     "geometry": {"type": "MultiPolygon", "coordinates": [[[[1, 0], [2, 0], [2, 1], [1, 1], [1, 0]]]]}}
C = {"type": "Feature", "properties": {"code": "C", "level": 2, "version_id": 5},
     "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 1], [0, 1], [0, 0]]]}}


def run(body: str):
    node = shutil.which("node") or shutil.which("nodejs")
    # `make test` installs nodejs (tools/system-deps test): a missing node is a broken set-up, not a skip
    assert node is not None, "node is not installed; run `make test` (tools/system-deps installs nodejs)"
    script = (f"global.window = {{}}; require({json.dumps(str(SRC))}); const topo = window.gridwatch.planner.topo;"
              f" const F = {json.dumps([A, B, C])}; const out = (() => {{ {body} }})();"
              f" process.stdout.write(JSON.stringify(out));")
    res = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=20, check=True)
    return json.loads(res.stdout)


def test_shared_vertices_are_one_point():
    out = run("const T = topo.build(F); const v = T.byKey[topo.key([1, 0])];"
              " return {n: Object.keys(T.verts).length, grids: topo.gridsWith(T, v),"
              " ring: T.grids.A.polys[0][0].length};")
    assert out["n"] == 6                  # 0,0 1,0 1,1 0,1 2,0 2,1: each vertex once across A, B and C
    assert out["grids"] == ["A", "B"]     # (1, 0) is the blocks' corner; C's outline has no vertex there
    assert out["ring"] == 4               # rings are kept open (no closing vertex)


def test_moving_a_shared_vertex_moves_it_in_every_grid():
    out = run("const T = topo.build(F); const v = T.byKey[topo.key([1, 1])]; topo.move(T, v, [1.2, 1]);"
              " return {a: topo.geometry(T, 'A'), b: topo.geometry(T, 'B'), dirty: Object.keys(T.dirty).sort(),"
              " spec: topo.spec(T)};")
    assert out["a"]["coordinates"][0][0][2] == [1.2, 1]
    assert [1.2, 1] in out["b"]["coordinates"][0][0]
    assert out["a"]["coordinates"][0][0][0] == out["a"]["coordinates"][0][0][-1]   # closed again for GeoJSON
    assert out["dirty"] == ["A", "B"]     # C does not have that vertex
    assert [g["code"] for g in out["spec"]["grids"]] == ["A", "B"]
    assert out["spec"]["base"] == {"A": 11, "B": 12}


def test_insert_on_a_shared_edge_goes_into_both_rings_and_remove_takes_it_out():
    out = run("const T = topo.build(F); const a = T.byKey[topo.key([1, 0])], b = T.byKey[topo.key([1, 1])];"
              " const id = topo.insert(T, a, b, [1, 0.5]); topo.move(T, id, [1.3, 0.5]);"
              " const after = {a: topo.geometry(T, 'A').coordinates[0][0], b: topo.geometry(T, 'B').coordinates[0][0]};"
              " const removed = topo.remove(T, id);"
              " return {after, removed, a: topo.geometry(T, 'A').coordinates[0][0].length,"
              " grids: topo.gridsWith(T, id)};")
    assert [1.3, 0.5] in out["after"]["a"] and [1.3, 0.5] in out["after"]["b"]
    # A goes (1,0) → new → (1,1); B, the other way round: (1,1) → new → (1,0)
    ia = out["after"]["a"].index([1.3, 0.5])
    assert out["after"]["a"][ia - 1] == [1, 0] and out["after"]["a"][ia + 1] == [1, 1]
    assert out["removed"] is True and out["a"] == 5 and out["grids"] == []


def test_a_vertex_of_a_triangle_cannot_be_removed():
    out = run("const T = topo.build([{properties: {code: 'T'}, geometry: {type: 'Polygon',"
              " coordinates: [[[0, 0], [1, 0], [0, 1], [0, 0]]]}}]);"
              " return [topo.remove(T, 1), T.grids.T.polys[0][0].length];")
    assert out == [False, 3]


def test_snap_prefers_a_vertex_then_an_edge_within_the_tolerance():
    out = run("const verts = [[7, [100, 100]]]; const edges = [[[0, 200], [400, 200]]];"
              " return [topo.snap([104, 103], verts, edges, 10), topo.snap([150, 195], verts, edges, 10),"
              " topo.snap([150, 150], verts, edges, 10)];")
    assert out[0] == {"point": [100, 100], "vertex": 7, "kind": "vertex"}
    assert out[1] == {"point": [150, 200], "vertex": None, "kind": "edge"}
    assert out[2]["kind"] == "none" and out[2]["point"] == [150, 150]


def test_metres_per_pixel():
    m = run("return [topo.metresPerPixel(0, 0), topo.metresPerPixel(60, 1)];")
    assert abs(m[0] - 156543.03392) < 1e-6
    assert abs(m[1] - 156543.03392 * 0.5 / 2) < 1e-3
