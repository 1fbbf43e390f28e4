/* The planners' boundary editor (/planner): the grids edited as ONE topology over Leaflet.
 *
 * Why not leaflet-draw (dash-leaflet's EditControl) or Leaflet-Geoman: see docs/planner.md — in
 * short, neither shares vertices between polygons in their free editions, and leaflet-draw has
 * no snapping. Here every vertex of the loaded grids (all levels) is one shared point keyed by its
 * coordinate: dragging one handle moves it in every ring that has it (both neighbours, and the
 * community or street outline the blocks' corner lies on).
 *
 * Two parts:
 *  - gridwatch.planner.topo: pure functions (no Leaflet, no DOM), unit-tested in node
 *    (tests/unit/test_planner_js.py): build, move, insert at an edge, remove, snap, the spec;
 *  - the Leaflet UI, started by the page's clientside callback (dash_clientside.planner.render):
 *    polygons, vertex and midpoint handles of the selected grid, the drawn line, the problems
 *    (red) and the preview of changed grids; it writes what the server needs with
 *    dash_clientside.set_props: planner-edit (the edited grids' GeoJSON + the versions drawn on),
 *    planner-selected, planner-line. The server validates (geodata/grids/changesets.check_draft).
 *
 * All user text goes into the DOM with textContent (tooltips: L.Tooltip with an element).
 */
(function () {
  "use strict";

  var PRECISION = 1e7;   // vertices within 1 cm (1e-7°) are one shared vertex

  // -- the topology (pure) -------------------------------------------------------------------
  var topo = {};

  topo.key = function (c) {
    return Math.round(c[0] * PRECISION) + ":" + Math.round(c[1] * PRECISION);
  };

  function polygonsOf(geom) {
    if (!geom) { return []; }
    if (geom.type === "Polygon") { return [geom.coordinates]; }
    if (geom.type === "MultiPolygon") { return geom.coordinates; }
    return [];
  }

  /* features: GeoJSON features with properties.code (and version_id, level, parent_code, name) */
  topo.build = function (features) {
    var T = {verts: {}, byKey: {}, grids: {}, next: 1, dirty: {}};
    (features || []).forEach(function (f) {
      var p = f.properties || {};
      var polys = polygonsOf(f.geometry).map(function (rings) {
        return rings.map(function (ring) {
          var ids = [];
          for (var i = 0; i < ring.length; i += 1) {
            if (i === ring.length - 1 && ring.length > 1 && ring[i][0] === ring[0][0] && ring[i][1] === ring[0][1]) {
              break;   // the closing vertex
            }
            var k = topo.key(ring[i]);
            var id = T.byKey[k];
            if (id === undefined) {
              id = T.next;
              T.next += 1;
              T.byKey[k] = id;
              T.verts[id] = [ring[i][0], ring[i][1]];
            }
            if (ids[ids.length - 1] !== id) { ids.push(id); }
          }
          return ids;
        });
      });
      T.grids[p.code] = {props: p, polys: polys};
    });
    return T;
  };

  topo.gridsWith = function (T, vid) {
    var out = [];
    Object.keys(T.grids).forEach(function (code) {
      var has = T.grids[code].polys.some(function (rings) {
        return rings.some(function (r) { return r.indexOf(vid) >= 0; });
      });
      if (has) { out.push(code); }
    });
    return out.sort();
  };

  topo.move = function (T, vid, c) {
    T.verts[vid] = [c[0], c[1]];
    topo.gridsWith(T, vid).forEach(function (code) { T.dirty[code] = true; });
  };

  /* a new vertex at c on the edge a–b, in every ring that has that edge (either direction) */
  topo.insert = function (T, a, b, c) {
    var id = T.next;
    T.next += 1;
    T.verts[id] = [c[0], c[1]];
    Object.keys(T.grids).forEach(function (code) {
      T.grids[code].polys.forEach(function (rings) {
        rings.forEach(function (r) {
          for (var i = 0; i < r.length; i += 1) {
            var u = r[i], v = r[(i + 1) % r.length];
            if ((u === a && v === b) || (u === b && v === a)) {
              r.splice(i + 1, 0, id);
              T.dirty[code] = true;
              return;
            }
          }
        });
      });
    });
    return id;
  };

  /* the vertex out of every ring; refused (false) when a ring would keep fewer than 3 */
  topo.remove = function (T, vid) {
    var codes = topo.gridsWith(T, vid), ok = true;
    codes.forEach(function (code) {
      T.grids[code].polys.forEach(function (rings) {
        rings.forEach(function (r) { if (r.indexOf(vid) >= 0 && r.length <= 3) { ok = false; } });
      });
    });
    if (!ok) { return false; }
    codes.forEach(function (code) {
      T.grids[code].polys.forEach(function (rings) {
        rings.forEach(function (r) {
          var i = r.indexOf(vid);
          if (i >= 0) { r.splice(i, 1); }
        });
      });
      T.dirty[code] = true;
    });
    delete T.verts[vid];
    return true;
  };

  topo.geometry = function (T, code) {
    var g = T.grids[code];
    return {type: "MultiPolygon", coordinates: g.polys.map(function (rings) {
      return rings.map(function (r) {
        var ring = r.map(function (id) { return T.verts[id].slice(); });
        ring.push(ring[0].slice());
        return ring;
      });
    })};
  };

  /* the edges of a grid's rings, each once: [a, b] vertex ids */
  topo.edges = function (T, code) {
    var out = [];
    T.grids[code].polys.forEach(function (rings) {
      rings.forEach(function (r) {
        for (var i = 0; i < r.length; i += 1) { out.push([r[i], r[(i + 1) % r.length]]); }
      });
    });
    return out;
  };

  /* what the server reads (planner-edit): the changed grids' new boundaries and the versions drawn on */
  topo.spec = function (T) {
    var codes = Object.keys(T.dirty).sort();
    var base = {};
    codes.forEach(function (c) {
      var v = T.grids[c].props.version_id;
      if (v) { base[c] = v; }
    });
    return {grids: codes.map(function (c) { return {code: c, geometry: topo.geometry(T, c)}; }), base: base};
  };

  /* projection of p on the segment a–b (plane coordinates) */
  topo.project = function (p, a, b) {
    var dx = b[0] - a[0], dy = b[1] - a[1];
    var len2 = dx * dx + dy * dy;
    var t = len2 ? ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2 : 0;
    t = Math.max(0, Math.min(1, t));
    return [a[0] + t * dx, a[1] + t * dy];
  };

  function dist(a, b) { return Math.sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1])); }

  /* snap p (pixels) to the nearest vertex within tol, else the nearest point on an edge within tol;
   * vertices: [[id, [x, y]]], edges: [[[x, y], [x, y]]]. Returns {point, vertex (id|null), kind}. */
  topo.snap = function (p, vertices, edges, tol) {
    var best = null, bestD = tol;
    vertices.forEach(function (v) {
      var d = dist(p, v[1]);
      if (d <= bestD) { best = {point: v[1].slice(), vertex: v[0], kind: "vertex"}; bestD = d; }
    });
    if (best) { return best; }
    edges.forEach(function (e) {
      var q = topo.project(p, e[0], e[1]);
      var d = dist(p, q);
      if (d <= bestD) { best = {point: q, vertex: null, kind: "edge"}; bestD = d; }
    });
    return best || {point: p.slice(), vertex: null, kind: "none"};
  };

  /* metres per pixel at latitude lat and zoom z (Web Mercator, 256-px tiles) */
  topo.metresPerPixel = function (lat, z) {
    return 156543.03392 * Math.cos(lat * Math.PI / 180) / Math.pow(2, z);
  };

  // -- the Leaflet UI ----------------------------------------------------------------------------
  var ui = {map: null, T: null, data: null, layers: {}, selected: [], line: [], handles: null,
            level: 3, tolPx: 10, problems: null, preview: null, diff: null, asof: null, drawing: false};

  function setProps(id, props) {
    if (window.dash_clientside && window.dash_clientside.set_props) { window.dash_clientside.set_props(id, props); }
  }

  function latlngs(T, code) {
    return T.grids[code].polys.map(function (rings) {
      return rings.map(function (r) { return r.map(function (id) { return [T.verts[id][1], T.verts[id][0]]; }); });
    });
  }

  function styleOf(code) {
    var p = ui.T.grids[code].props;
    var sel = ui.selected.indexOf(code) >= 0;
    if (p.level < ui.level) { return {color: "#102a56", weight: 3, fill: false, interactive: false}; }
    return {color: sel ? "#d9480f" : (ui.T.dirty[code] ? "#7048e8" : "#1c4fa1"), weight: sel ? 4 : 2,
            fillColor: sel ? "#ffd8a8" : "#a5d8ff", fillOpacity: sel ? 0.35 : 0.12,
            className: "gw-pl-grid gw-pl-grid-" + code + (ui.T.dirty[code] ? " gw-pl-dirty" : "")};
  }

  function tooltipEl(text) {
    var e = document.createElement("span");
    e.textContent = text;
    return e;
  }

  function drawGrids() {
    var L = window.L;
    if (ui.layers.grids) { ui.layers.grids.clearLayers(); } else { ui.layers.grids = L.layerGroup().addTo(ui.map); }
    ui.polys = {};
    Object.keys(ui.T.grids).forEach(function (code) {
      var p = ui.T.grids[code].props;
      if (p.level > ui.level || p.level < ui.level - 1) { return; }
      var poly = L.polygon(latlngs(ui.T, code), styleOf(code));
      if (p.level === ui.level) {
        poly.bindTooltip(tooltipEl(p.name + " (" + code + ")"), {sticky: true});
        poly.on("click", function (e) {
          if (ui.drawing) { return; }
          L.DomEvent.stopPropagation(e);
          select(code, e.originalEvent && (e.originalEvent.shiftKey || e.originalEvent.ctrlKey));
        });
      }
      poly.addTo(ui.layers.grids);
      ui.polys[code] = poly;
    });
  }

  function redraw(codes) {
    codes.forEach(function (code) {
      if (ui.polys[code]) { ui.polys[code].setLatLngs(latlngs(ui.T, code)); ui.polys[code].setStyle(styleOf(code)); }
    });
  }

  function select(code, add) {
    if (add && ui.selected.length && ui.selected.indexOf(code) < 0) {
      ui.selected = ui.selected.concat([code]).slice(-2);
    } else {
      ui.selected = [code];
    }
    Object.keys(ui.polys).forEach(function (c) { ui.polys[c].setStyle(styleOf(c)); });
    drawHandles();
    setProps("planner-selected", {data: {codes: ui.selected.slice()}});
  }

  function emit() {
    setProps("planner-edit", {data: topo.spec(ui.T)});
  }

  function toPx(c) { var pt = ui.map.latLngToContainerPoint([c[1], c[0]]); return [pt.x, pt.y]; }

  /* the vertices and edges a dragged vertex may snap to: every shown grid's, but its own */
  function snapTargets(vid) {
    var seen = {}, verts = [], edges = [], size = ui.map.getSize();
    Object.keys(ui.polys).forEach(function (code) {
      topo.edges(ui.T, code).forEach(function (e) {
        if (e[0] === vid || e[1] === vid) { return; }
        var a = toPx(ui.T.verts[e[0]]), b = toPx(ui.T.verts[e[1]]);
        if ((a[0] < -50 && b[0] < -50) || (a[1] < -50 && b[1] < -50) ||
            (a[0] > size.x + 50 && b[0] > size.x + 50) || (a[1] > size.y + 50 && b[1] > size.y + 50)) { return; }
        edges.push([a, b]);
        [0, 1].forEach(function (k) {
          if (!seen[e[k]]) { seen[e[k]] = true; verts.push([e[k], k ? b : a]); }
        });
      });
    });
    return {verts: verts, edges: edges};
  }

  function drawHandles() {
    var L = window.L;
    if (ui.handles) { ui.handles.clearLayers(); } else { ui.handles = L.layerGroup().addTo(ui.map); }
    if (ui.selected.length !== 1 || ui.drawing) { return; }
    var code = ui.selected[0];
    var done = {};
    topo.edges(ui.T, code).forEach(function (e) {
      var a = e[0], b = e[1];
      if (!done[a]) { done[a] = true; vertexHandle(a); }
      var pa = ui.T.verts[a], pb = ui.T.verts[b];
      var mid = L.marker([(pa[1] + pb[1]) / 2, (pa[0] + pb[0]) / 2], {
        icon: L.divIcon({className: "gw-pl-mid", iconSize: [10, 10]}), keyboard: false});
      mid.on("add", function () {
        var el = mid.getElement();
        if (el) { el.setAttribute("data-edge", a + "-" + b); }
      });
      mid.on("click", function (ev) {
        L.DomEvent.stopPropagation(ev);
        topo.insert(ui.T, a, b, [(pa[0] + pb[0]) / 2, (pa[1] + pb[1]) / 2]);
        redraw(Object.keys(ui.T.dirty));
        drawHandles();
        emit();
      });
      mid.addTo(ui.handles);
    });
  }

  function vertexHandle(vid) {
    var L = window.L;
    var c = ui.T.verts[vid];
    var shared = topo.gridsWith(ui.T, vid);
    var m = L.marker([c[1], c[0]], {draggable: true, autoPan: false, keyboard: false,
      icon: L.divIcon({className: "gw-pl-vertex" + (shared.length > 1 ? " gw-pl-shared" : ""), iconSize: [14, 14]})});
    m.on("add", function () {
      var el = m.getElement();
      if (el) { el.setAttribute("data-vertex", String(vid)); el.setAttribute("data-grids", shared.join(" ")); }
    });
    var targets = null;
    m.on("dragstart", function () { targets = snapTargets(vid); });
    m.on("drag", function (ev) {
      var p = ui.map.latLngToContainerPoint(ev.target.getLatLng());
      var s = topo.snap([p.x, p.y], targets.verts, targets.edges, ui.tolPx);
      var ll = ui.map.containerPointToLatLng(s.point);
      if (s.kind !== "none") { m.setLatLng(ll); }
      m._gwSnap = s.kind;
      topo.move(ui.T, vid, [ll.lng, ll.lat]);
      redraw(shared);
    });
    m.on("dragend", function () { drawHandles(); emit(); });
    m.on("contextmenu", function (ev) {
      L.DomEvent.stopPropagation(ev);
      if (topo.remove(ui.T, vid)) { redraw(shared); drawHandles(); emit(); }
    });
    m.addTo(ui.handles);
  }

  function drawLine() {
    var L = window.L;
    if (ui.layers.line) { ui.map.removeLayer(ui.layers.line); }
    ui.layers.line = L.polyline(ui.line.map(function (c) { return [c[1], c[0]]; }),
                                {color: "#c2255c", weight: 3, dashArray: "6 4", interactive: false}).addTo(ui.map);
  }

  function overlay(name, geojson, style) {
    var L = window.L;
    if (ui.layers[name]) { ui.map.removeLayer(ui.layers[name]); ui.layers[name] = null; }
    if (!geojson || !geojson.features || !geojson.features.length) { return; }
    ui.layers[name] = L.geoJSON(geojson, {style: style, interactive: name === "problems",
      pointToLayer: function (f, ll) { return L.circleMarker(ll, {radius: 9}); },
      onEachFeature: function (f, layer) {
        if (f.properties && f.properties.message) { layer.bindTooltip(tooltipEl(f.properties.message)); }
      }}).addTo(ui.map);
  }

  function ensureMap() {
    var L = window.L;
    var el = document.getElementById("planner-map");
    if (!L || !el) { return false; }
    if (ui.map && ui.map.getContainer() === el) { return true; }
    ui.map = L.map(el, {doubleClickZoom: false, zoomSnap: 0.25});
    ui.layers = {};
    ui.handles = null;
    ui.map.on("click", function (e) {
      if (!ui.drawing) { return; }
      ui.line.push([e.latlng.lng, e.latlng.lat]);
      drawLine();
      setProps("planner-line", {data: ui.line.length > 1 ? {type: "LineString", coordinates: ui.line.slice()} : null});
    });
    ui.map.on("zoomend", function () { scaleNote(); });
    window.gridwatch = window.gridwatch || {};
    window.gridwatch.plannerMap = ui.map;
    return true;
  }

  function scaleNote() {
    var n = document.getElementById("planner-snap-m");
    if (!n || !ui.map) { return; }
    var m = ui.tolPx * topo.metresPerPixel(ui.map.getCenter().lat, ui.map.getZoom());
    n.textContent = "≈ " + (m < 10 ? m.toFixed(1) : Math.round(m)) + " m";
  }

  /* the page's clientside callback: (grids store, check result, level, drawing mode, snap px, diff, as-of) */
  function render(grids, check, level, drawing, tolPx, diff, asof) {
    if (!ensureMap()) { return window.dash_clientside.no_update; }
    ui.level = level || 3;
    ui.tolPx = Number(tolPx) || 10;
    var wasDrawing = ui.drawing;
    ui.drawing = !!drawing;
    if (ui.drawing && !wasDrawing) { ui.line = []; drawLine(); }
    if (!ui.drawing && wasDrawing && ui.layers.line) { ui.map.removeLayer(ui.layers.line); ui.layers.line = null; }
    if (grids && grids !== ui.data) {
      ui.data = grids;
      ui.T = topo.build(grids.features);
      ui.selected = ui.selected.filter(function (c) { return !!ui.T.grids[c]; });
      drawGrids();
      if (!ui.fitted && grids.bbox) {
        ui.map.fitBounds([[grids.bbox[1], grids.bbox[0]], [grids.bbox[3], grids.bbox[2]]]);
        ui.fitted = true;
      }
    } else if (ui.T) {
      drawGrids();
    }
    if (ui.T) { drawHandles(); }
    overlay("preview", check && check.grids, function () {
      return {color: "#7048e8", weight: 2, dashArray: "4 3", fill: false};
    });
    overlay("problems", check && check.problems_geojson, function () {
      return {color: "#e03131", weight: 3, fillColor: "#e03131", fillOpacity: 0.55, className: "gw-pl-problem"};
    });
    overlay("diff", diff, function (f) {
      var gained = f.properties && f.properties.part === "gained";
      return {color: gained ? "#2f9e44" : "#e03131", weight: 1, fillOpacity: 0.5, className: "gw-pl-diff-" +
              (gained ? "gained" : "lost")};
    });
    overlay("asof", asof, function () {
      return {color: "#495057", weight: 2, dashArray: "2 4", fill: false, className: "gw-pl-asof"};
    });
    scaleNote();
    return "";
  }

  window.gridwatch = window.gridwatch || {};
  window.gridwatch.planner = {topo: topo, ui: ui};
  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.planner = {render: render};
}());
