/* The command-centre wall (/wall). Draws the opening state the page carries, then listens to
   /wall/events (Server-Sent Events) and changes only what an event changes: KPI numbers (counted up),
   the feed (newest on top), map colours and today's pulsing points, ranking, trend. The polygons come
   once with the page and are never fetched again; the page never reloads. If the stream cannot be
   had (503: streams full, or a proxy that buffers) it polls /wall/state and says so on screen.
   Dash loads every asset on the map page too: this script does nothing there (no #wall-root). */
(function () {
  "use strict";
  var root = document.getElementById("wall-root");
  if (!root) { return; }
  var opening = JSON.parse(document.getElementById("wall-state").textContent);
  var T = JSON.parse(document.getElementById("wall-text").textContent);
  var cfg = opening.config || {};
  var state = opening.state || {};
  var SVGNS = "http://www.w3.org/2000/svg";
  var FEED_MAX = 30;
  var seen = {};            // feed keys shown (each event once, whatever reconnects re-send)
  var lastId = cfg.last_id || 0;
  var mode = "live";        // live | polling | down | stopped
  var downSince = cfg.down_since || null;
  var timers = [];
  var es = null, pollTimer = null, lastDataAt = state.as_of ? new Date(state.as_of) : null;

  function $(id) { return document.getElementById(id); }
  function fmt(s, kv) { return s.replace(/\{(\w+)\}/g, function (_, k) { return kv[k] == null ? "" : kv[k]; }); }
  function tzParts(d, opts) {
    return new Intl.DateTimeFormat(cfg.lang === "en" ? "en-GB" : "zh-CN", Object.assign({ timeZone: cfg.tz }, opts)).format(d);
  }
  function hm(d) { return tzParts(d, { hour: "2-digit", minute: "2-digit", hour12: false }); }

  // -- header: clock, freshness, status ------------------------------------------------------------
  function tickClock() {
    var now = new Date();
    $("wall-clock").textContent = tzParts(now, { year: "numeric", month: "2-digit", day: "2-digit", weekday: "long" }) +
      " " + tzParts(now, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  }
  function showStatus() {
    var el = $("wall-status");
    el.className = "wall-status";
    if (mode === "down") {
      el.classList.add("wall-down");
      el.textContent = fmt(T.wall_outage, { time: downSince ? hm(new Date(downSince)) : "" });
    } else if (mode === "polling") {
      el.classList.add("wall-polling");
      el.textContent = T.wall_polling;
    } else {
      el.textContent = T.wall_live;
    }
    if (lastDataAt) {
      $("wall-fresh").textContent = fmt(T.wall_fresh, { time: tzParts(lastDataAt, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false }) });
    }
  }

  // -- KPI numbers ------------------------------------------------------------------------------------
  function dig(obj, path) {
    return path.split(".").reduce(function (o, k) { return o == null ? null : o[k]; }, obj);
  }
  function numText(v, decimals) { return v == null ? "–" : Number(v).toFixed(decimals); }
  function countUp(el, to, decimals) {
    var from = parseFloat(el.dataset.value);
    el.dataset.value = to == null ? "" : String(to);
    if (to == null || isNaN(from) || from === to) { el.textContent = numText(to, decimals); return; }
    el.classList.add("wall-changed");
    var t0 = performance.now(), dur = 1200;
    function step(t) {
      var k = Math.min(1, (t - t0) / dur);
      el.textContent = numText(from + (to - from) * (1 - Math.pow(1 - k, 3)), decimals);
      if (k < 1) { requestAnimationFrame(step); } else { setTimeout(function () { el.classList.remove("wall-changed"); }, 1500); }
    }
    requestAnimationFrame(step);
  }
  function drawKpis(k) {
    if (!k) { return; }
    var els = root.querySelectorAll("[data-kpi]");
    for (var i = 0; i < els.length; i++) {
      var path = els[i].dataset.kpi, v;
      if (path.indexOf("problem.") === 0 || path.indexOf("sentiment.") === 0) { v = dig(k.kinds, path); }
      else { v = dig(k, path); }
      var dec = /rate|hours/.test(path) ? 1 : 0;
      if (String(v) !== els[i].dataset.value || els[i].textContent === "–") { countUp(els[i], v == null ? null : Number(v), dec); }
    }
    var moms = root.querySelectorAll("[data-mom]");
    for (var j = 0; j < moms.length; j++) {
      var m = dig(k.mom, moms[j].dataset.mom), lowerBetter = moms[j].dataset.mom === "handling_hours";
      moms[j].className = "wall-mom";
      if (m == null || m === 0) { moms[j].textContent = m === 0 ? T.wall_mom + " →" : ""; continue; }
      var up = m > 0;
      moms[j].classList.add(up ? (lowerBetter ? "wall-up-bad" : "wall-up") : (lowerBetter ? "wall-down-good" : "wall-down"));
      moms[j].textContent = T.wall_mom + (up ? " ▲" : " ▼") + Math.abs(m).toFixed(1) + (moms[j].dataset.mom.indexOf("rate") >= 0 ? "pt" : "%");
    }
  }

  // -- feed ---------------------------------------------------------------------------------------------
  function feedLi(it) {
    var li = document.createElement("li");
    li.dataset.key = it.key;
    var top = document.createElement("div"); top.className = "wall-ev-top";
    var tm = document.createElement("span"); tm.textContent = it.time;
    var tag = document.createElement("span"); tag.className = "wall-tag wall-tag-" + it.kind; tag.textContent = it.label;
    var where = document.createElement("span"); where.className = "wall-ev-where"; where.textContent = it.grid + " · " + it.domain;
    top.appendChild(tm); top.appendChild(tag); top.appendChild(where);
    var title = document.createElement("div"); title.className = "wall-ev-title"; title.textContent = it.title;
    li.appendChild(top); li.appendChild(title);
    return li;
  }
  function addFeed(it, prepend) {
    if (seen[it.key]) { return false; }
    seen[it.key] = true;
    var ol = $("wall-feed");
    var li = feedLi(it);
    if (prepend) {
      li.classList.add("wall-new");
      ol.insertBefore(li, ol.firstChild);
      setTimeout(function () { li.classList.remove("wall-new"); }, 2500);
    } else { ol.appendChild(li); }
    while (ol.children.length > FEED_MAX) { delete seen[ol.lastChild.dataset.key]; ol.removeChild(ol.lastChild); }
    if (it.kind === "report") { pulse(it); }
    return true;
  }

  // -- map (SVG; lon/lat with x scaled by cos(latitude)) -------------------------------------------------
  var geo = opening.geometry || {}, b = opening.bounds, kx = 1, full = null, mapSvg = $("wall-map");
  var layers = {};
  // projected units of about a metre (SVG text misrenders at tiny user units): x east, y south
  var S = 111320, x0 = b ? b[0] : 0, y0 = b ? b[3] : 0;
  function X(lon) { return (lon - x0) * kx * S; }
  function Y(lat) { return (y0 - lat) * S; }
  function px(c) { return [X(c[0]).toFixed(1), Y(c[1]).toFixed(1)]; }
  function pathOf(g) {
    var polys = g.type === "MultiPolygon" ? g.coordinates : [g.coordinates], d = "";
    polys.forEach(function (poly) { poly.forEach(function (ring) {
      ring.forEach(function (c, i) { var p = px(c); d += (i ? "L" : "M") + p[0] + " " + p[1]; }); d += "Z"; }); });
    return d;
  }
  function bboxOf(g) {
    var xs = [], ys = [];
    (function walk(c) { if (typeof c[0] === "number") { xs.push(c[0]); ys.push(c[1]); } else { c.forEach(walk); } })(g.coordinates);
    return [Math.min.apply(null, xs), Math.min.apply(null, ys), Math.max.apply(null, xs), Math.max.apply(null, ys)];
  }
  function el(name, attrs, parent) {
    var e = document.createElementNS(SVGNS, name);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    if (parent) { parent.appendChild(e); }
    return e;
  }
  var grids = {};   // code → {bbox, name, path}
  function drawMap() {
    if (!b) { return; }
    kx = Math.cos(((b[1] + b[3]) / 2) * Math.PI / 180);
    var pad = (b[2] - b[0]) * 0.04;
    full = [X(b[0] - pad), Y(b[3] + pad), (b[2] - b[0] + 2 * pad) * kx * S, (b[3] - b[1] + 2 * pad) * S];
    setView(full);
    var defs = el("defs", {}, mapSvg);
    var grad = el("radialGradient", { id: "wall-heat-grad" }, defs);
    el("stop", { offset: "0%", "stop-color": "#ff6a00", "stop-opacity": "0.55" }, grad);
    el("stop", { offset: "100%", "stop-color": "#ff6a00", "stop-opacity": "0" }, grad);
    layers.communities = el("g", {}, mapSvg);
    layers.heat = el("g", {}, mapSvg);
    layers.blocks = el("g", {}, mapSvg);
    layers.street = el("g", {}, mapSvg);
    layers.today = el("g", {}, mapSvg);
    layers.labels = el("g", {}, mapSvg);
    (geo["3"] || []).forEach(function (f) {
      grids[f.code] = { bbox: bboxOf(f.geometry), name: cfg.lang === "en" ? f.name_en : f.name };
      el("path", { d: pathOf(f.geometry), "class": "wall-block" }, layers.blocks);
    });
    (geo["1"] || []).forEach(function (f) { el("path", { d: pathOf(f.geometry), "class": "wall-street" }, layers.street); });
    var fontU = labelUnits();
    (geo["2"] || []).forEach(function (f) {
      var bb = bboxOf(f.geometry);
      grids[f.code] = { bbox: bb, name: cfg.lang === "en" ? f.name_en : f.name };
      grids[f.code].path = el("path", { d: pathOf(f.geometry), "class": "wall-community wall-band-green", "data-code": f.code }, layers.communities);
      var c = px([(bb[0] + bb[2]) / 2, (bb[1] + bb[3]) / 2]);
      var t = el("text", { x: c[0], y: c[1], "class": "wall-maplabel", "font-size": fontU.toFixed(2),
                           "stroke-width": (fontU * 0.16).toFixed(2) }, layers.labels);
      t.textContent = grids[f.code].name;
    });
  }
  function labelUnits() {
    var w = mapSvg.clientWidth || 600, vb = mapSvg.viewBox.baseVal;
    return Math.max(24, window.innerHeight * 0.024) * (vb.width / w);
  }
  function setView(v) { mapSvg.setAttribute("viewBox", v.map(function (x) { return x.toFixed(1); }).join(" ")); }
  function drawMapState(s) {
    if (!b) { return; }
    var comm = s.communities || {};
    Object.keys(comm).forEach(function (code) {
      var g = grids[code];
      if (g && g.path) {
        var cls = "wall-community wall-band-" + comm[code].band;
        if (g.path.getAttribute("class") !== cls) { g.path.setAttribute("class", cls); }
      }
    });
    var r = (full[2] / 40).toFixed(1);
    // the heat points change by a few per update: keep the circles that stay, add and remove the
    // rest (redrawing all of them each time made every update cost as much as the open work)
    var hot = {};
    (s.heat || []).forEach(function (p) {   // the same place twice is two circles (density)
      var k = p[0] + "," + p[1], n = 0;
      while (hot[k + "#" + n]) { n++; }
      hot[k + "#" + n] = p;
    });
    Array.prototype.slice.call(layers.heat.children).forEach(function (c) {
      if (!hot[c.dataset.key] || c.getAttribute("r") !== r) { layers.heat.removeChild(c); } else { delete hot[c.dataset.key]; }
    });
    Object.keys(hot).forEach(function (k) {
      var c = px(hot[k]);
      el("circle", { cx: c[0], cy: c[1], r: r, "class": "wall-heat" }, layers.heat).dataset.key = k;
    });
    var want = {};
    (s.today || []).forEach(function (p) { want["i" + p.id] = p; });
    Array.prototype.slice.call(layers.today.children).forEach(function (c) {
      if (!want[c.dataset.key]) { layers.today.removeChild(c); } else { delete want[c.dataset.key]; }
    });
    Object.keys(want).forEach(function (k) { dot(want[k], k, false); });
  }
  function dot(p, key, fresh) {
    if (!b || layers.today.querySelector('[data-key="' + key + '"]')) { return; }
    var c = px([p.lon, p.lat]);
    var e = el("circle", { cx: c[0], cy: c[1], r: (full[2] / 120).toFixed(1), "class": "wall-today" + (fresh ? " wall-fresh-dot" : "") }, layers.today);
    e.dataset.key = key;
  }
  function pulse(it) { dot({ lon: it.lon, lat: it.lat }, "i-ev" + it.id, true); }

  // -- hotspot tour ---------------------------------------------------------------------------------------
  var tourIdx = 0, pausedUntil = 0, anim = null;
  function flyTo(target, ms) {
    var fromV = mapSvg.getAttribute("viewBox").split(" ").map(Number), t0 = performance.now();
    if (anim) { cancelAnimationFrame(anim); }
    function step(t) {
      var k = Math.min(1, (t - t0) / ms), e = k < 0.5 ? 2 * k * k : 1 - Math.pow(-2 * k + 2, 2) / 2;
      setView(fromV.map(function (v, i) { return v + (target[i] - v) * e; }));
      if (k < 1) { anim = requestAnimationFrame(step); }
    }
    anim = requestAnimationFrame(step);
  }
  function tour() {
    if (mode === "stopped") { return; }
    var hs = (state.hotspots || []).filter(function (h) { return grids[h.code]; });
    var cap = $("wall-caption");
    if (!hs.length || Date.now() < pausedUntil || !full) { cap.classList.remove("wall-on"); return; }
    var h = hs[tourIdx % hs.length]; tourIdx++;
    var bb = grids[h.code].bbox, w = (bb[2] - bb[0]) * kx * S, hgt = (bb[3] - bb[1]) * S, m = Math.max(w, hgt) * 0.8;
    flyTo([X(bb[0]) - m, Y(bb[3]) - m, w + 2 * m, hgt + 2 * m], 1500);
    cap.textContent = fmt(T.wall_tour, { name: h.name, overdue: h.overdue, open: h.open });
    cap.classList.add("wall-on");
    setTimeout(function () { if (full) { flyTo(full, 1500); } cap.classList.remove("wall-on"); }, Math.max(3000, cfg.tour_s * 500));
  }
  document.addEventListener("pointerdown", function () {   // someone touches the screen: the tour waits
    pausedUntil = Date.now() + 120000;
    if (full) { flyTo(full, 600); }
    $("wall-caption").classList.remove("wall-on");
  });

  // -- ranking (rotating) and trend ----------------------------------------------------------------------
  var rankIdx = 0;
  function drawRank() {
    var rk = state.ranking || {}, boards = [];
    ["communities", "blocks"].forEach(function (lvl) {
      ["top", "bottom"].forEach(function (side) { if (rk[lvl] && rk[lvl][side] && rk[lvl][side].length) { boards.push([lvl, side, rk[lvl][side]]); } });
    });
    var box = $("wall-rank");
    if (!boards.length) { box.textContent = ""; return; }
    var bd = boards[rankIdx % boards.length];
    var tbl = document.createElement("table");
    var head = tbl.insertRow(); var hc = head.insertCell(); hc.colSpan = 3; hc.className = "wall-rank-head";
    hc.textContent = T["wall_rank_" + bd[0]] + " · " + T["wall_rank_" + bd[1]];
    bd[2].forEach(function (r, i) {
      var row = tbl.insertRow();
      row.insertCell().textContent = String(i + 1);
      row.insertCell().textContent = r.name;
      row.insertCell().textContent = r.value == null ? "–" : r.value.toFixed(1) + "%";
    });
    box.replaceChildren(tbl);
  }
  function drawTrend() {
    var tr = state.trend, svg = $("wall-trend");
    if (!tr || !tr.days) { return; }
    var n = tr.days.length, max = Math.max.apply(null, [1].concat(tr.problem, tr.sentiment)), top = Math.ceil(max * 1.1);
    svg.setAttribute("viewBox", "0 0 " + (n - 1) + " " + top);
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    el("line", { x1: 0, y1: top, x2: n - 1, y2: top, "class": "wall-axis" }, svg);
    ["problem", "sentiment"].forEach(function (k) {
      var pts = tr[k].map(function (v, i) { return i + "," + (top - v); }).join(" ");
      el("polyline", { points: pts, "class": "wall-line-" + k }, svg);
    });
  }

  // -- applying what the server sends ---------------------------------------------------------------------
  function applyState(s) {
    if (!s || !s.kpis || mode === "stopped") { return; }
    state = s;
    lastDataAt = s.as_of ? new Date(s.as_of) : new Date();
    drawKpis(s.kpis); drawMapState(s); drawTrend(); drawRank(); showStatus();
  }
  function onFeed(it) {
    if (typeof it.id === "number" && it.kind !== "overdue" && it.id > lastId) { lastId = it.id; }
    addFeed(it, true);
  }
  function stop() {
    mode = "stopped";
    if (es) { es.close(); es = null; }
    if (pollTimer) { clearInterval(pollTimer); }
    timers.forEach(clearInterval);
    if (anim) { cancelAnimationFrame(anim); }
    document.body.replaceChildren();
    var box = document.createElement("div"); box.id = "wall-stopped"; box.className = "wall-stopped";
    var h = document.createElement("h1"); h.textContent = T.wall_stopped_title;
    var p = document.createElement("p"); p.textContent = T.wall_stopped_text;
    box.appendChild(h); box.appendChild(p); document.body.appendChild(box);
  }
  function poll() {
    fetch("/wall/state?after=" + lastId + "&lang=" + cfg.lang, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 403) { stop(); return null; }
        if (!r.ok) { throw new Error(String(r.status)); }
        return r.json();
      })
      .then(function (body) {
        if (!body) { return; }
        if (mode === "down") { mode = es ? "live" : "polling"; }
        (body.events || []).forEach(onFeed);
        if (body.last_id > lastId) { lastId = body.last_id; }
        applyState(body.state);
      })
      .catch(function () {
        if (mode !== "down") { downSince = downSince || new Date().toISOString(); mode = "down"; showStatus(); }
      });
  }
  function startPolling() {
    if (pollTimer || mode === "stopped") { return; }
    mode = "polling"; showStatus();
    pollTimer = setInterval(poll, 5000);
    setTimeout(function () { if (mode === "polling") { clearInterval(pollTimer); pollTimer = null; connect(); } }, 60000);
  }
  function connect() {
    if (mode === "stopped" || typeof EventSource === "undefined") { if (mode !== "stopped") { startPolling(); } return; }
    es = new EventSource("/wall/events?after=" + lastId + "&lang=" + cfg.lang);
    var opened = false;
    es.onopen = function () { opened = true; if (mode === "polling") { mode = "live"; } showStatus(); };
    es.addEventListener("feed", function (e) { onFeed(JSON.parse(e.data)); });
    es.addEventListener("state", function (e) { applyState(JSON.parse(e.data)); });
    es.addEventListener("outage", function (e) { var d = JSON.parse(e.data); downSince = d.since; mode = "down"; showStatus(); });
    es.addEventListener("restored", function () { mode = "live"; downSince = null; showStatus(); poll(); });
    es.addEventListener("stopped", function () { stop(); });
    es.onerror = function () {
      // CLOSED: the server refused the stream (503: full) — poll; otherwise the browser retries by
      // itself with Last-Event-ID, and the server re-sends what it missed
      if (es && es.readyState === 2) { es.close(); es = null; if (!opened) { startPolling(); } else { setTimeout(connect, 2000); } }
      else if (mode === "live") { poll(); }
    };
  }

  // -- start --------------------------------------------------------------------------------------------
  if (downSince) { mode = "down"; }
  drawMap();
  (state.feed || []).forEach(function (it) { addFeed(it, false); });
  applyState(state);
  tickClock(); showStatus();
  timers.push(setInterval(tickClock, 1000));
  timers.push(setInterval(function () { rankIdx++; drawRank(); }, 8000));
  if (cfg.tour_s > 0) { timers.push(setInterval(tour, cfg.tour_s * 1000)); }
  if (!state.kpis) { poll(); }     // opened while the database was down: fetch when it answers
  timers.push(setInterval(function () { if (mode === "down" && !es) { poll(); } }, 5000));
  window.gridwatchWall = { lastId: function () { return lastId; }, mode: function () { return mode; } };
  connect();
})();
