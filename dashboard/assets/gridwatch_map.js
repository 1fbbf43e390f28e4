/* Gridwatch map functions for dash-leaflet (referenced as {"variable": "gridwatch.map.<name>"}).
 *
 * All user text is put into the DOM with textContent (never innerHTML), so a title such as
 * <img src=x onerror=alert(1)> shows as text.
 */
(function () {
  "use strict";

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }

  function hideoutOf(context) {
    return (context && context.hideout) || {};
  }

  var STATE_COLORS = {o: "#f08c00", x: "#e03131", c: "#2f9e44"};

  function classOf(v, breaks) {
    var i = 0;
    while (i < breaks.length && v >= breaks[i]) { i += 1; }
    return i;
  }

  function gridName(p, lang) {
    return lang === "en" ? (p.name_en || p.name) : p.name;
  }

  var map = {
    escapeHtml: escapeHtml,

    /* outline layers: street, communities, blocks */
    gridStyle: function (feature, context) {
      var s = map.gridStyleBase(feature, context);
      s.className = "gw-grid gw-grid-l" + feature.properties.level + " gw-grid-" + feature.properties.code;
      return s;
    },

    gridStyleBase: function (feature, context) {
      var h = hideoutOf(context);
      var p = feature.properties;
      if (p.level === 1) {
        return {color: "#102a56", weight: 4, fill: false, opacity: 0.9};
      }
      if (p.level === 2) {
        if (!h.community) {
          return {color: "#1c4fa1", weight: 2, fillColor: "#1c4fa1", fillOpacity: 0.0, opacity: 0.9};
        }
        if (p.code === h.community) {
          return {color: "#0b2e6b", weight: 4, fillOpacity: 0.0, opacity: 1};
        }
        return {color: "#5c6f8c", weight: 1.5, fillColor: "#ffffff", fillOpacity: 0.25, opacity: 0.8};
      }
      if (p.code === h.block) {
        return {color: "#d9480f", weight: 4, fillOpacity: 0.0, opacity: 1};
      }
      return {color: "#1c4fa1", weight: 1.5, dashArray: "5 4", fillOpacity: 0.0, opacity: 0.9};
    },

    gridHover: function (feature, context) {
      return {weight: 4, color: "#e8590c"};
    },

    /* blocks: only those of the selected community are drawn */
    blockFilter: function (feature, context) {
      var h = hideoutOf(context);
      return !!h.community && feature.properties.parent_code === h.community;
    },

    gridLabel: function (feature, layer, context) {
      var h = hideoutOf(context);
      var p = feature.properties;
      if (p.level === 1) { return; }
      if (p.level === 2 && h.community === p.code) { return; }  // its blocks are labelled instead
      var span = el("span", null, gridName(p, h.lang));
      layer.bindTooltip(span, {permanent: true, direction: "center",
                               className: "gw-label gw-label-l" + p.level, interactive: false});
    },

    /* choropleth fills, from hideout.values {code: value} and hideout.breaks / colors */
    choroFilter: function (feature, context) {
      var h = hideoutOf(context);
      return !!h.values && Object.prototype.hasOwnProperty.call(h.values, feature.properties.code);
    },

    choroStyle: function (feature, context) {
      var h = hideoutOf(context);
      var v = h.values ? h.values[feature.properties.code] : null;
      if (v === null || v === undefined) {
        return {stroke: false, fillColor: "#adb5bd", fillOpacity: 0.35};
      }
      return {stroke: false, fillColor: h.colors[classOf(v, h.breaks || [])], fillOpacity: 0.62};
    },

    /* issue markers */
    markerPoint: function (feature, latlng, context) {
      var p = feature.properties;
      return L.circleMarker(latlng, {radius: 7, color: "#ffffff", weight: 1.5,
                                     fillColor: STATE_COLORS[p.st] || "#868e96", fillOpacity: 0.95,
                                     className: "gw-marker gw-marker-" + p.st});
    },

    markerCluster: function (feature, latlng, index, context) {
      // coloured by the most serious state among its markers: overdue > open > closed
      var n = feature.properties.point_count;
      var cls = "gw-cluster gw-cluster-c";
      try {
        var leaves = index.getLeaves(feature.properties.cluster_id, Infinity);
        var open = false;
        for (var i = 0; i < leaves.length; i++) {
          var st = leaves[i].properties.st;
          if (st === "x") { cls = "gw-cluster gw-cluster-x"; open = false; break; }
          if (st === "o") { open = true; }
        }
        if (open) { cls = "gw-cluster gw-cluster-o"; }
      } catch (e) { cls = "gw-cluster"; }
      var size = n < 10 ? 30 : (n < 100 ? 36 : (n < 1000 ? 44 : 52));
      var icon = L.divIcon({html: "<div><span>" + escapeHtml(n) + "</span></div>",
                            className: cls, iconSize: L.point(size, size)});
      return L.marker(latlng, {icon: icon});
    },

    popupContent: function (p, h) {
      var labels = h.labels || {};
      var box = el("div", "gw-popup-body");
      box.appendChild(el("div", "gw-popup-title", p.t));
      var meta = el("div", "gw-popup-meta");
      var rows = [
        [labels.domain || "Domain", (h.domains && h.domains[p.d]) || p.d],
        [labels.statusWord || "Status",
         ((labels.status && labels.status[p.s]) || p.s) +
         (p.st === "x" ? " · " + ((labels.state && labels.state.x) || "overdue") : "")],
        [labels.gridWord || "Grid", (h.grids && h.grids[p.g]) || p.g],
        // a closed issue has no age: the day it was closed (in the business time zone)
        p.c ? [labels.closedWord || "Closed on", map.day(p.c, labels)]
            : [labels.ageWord || "Age", map.age(p.r, labels)]
      ];
      rows.forEach(function (r) {
        var line = el("div", "gw-popup-row");
        line.appendChild(el("span", "gw-popup-key", r[0]));
        line.appendChild(el("span", "gw-popup-val", r[1]));
        meta.appendChild(line);
      });
      box.appendChild(meta);
      box.appendChild(el("div", "gw-popup-number", p.n));
      var link = el("button", "gw-popup-timeline", labels.timelineLink || "Timeline ›");
      link.type = "button";
      link.addEventListener("click", function () { map.openTimeline(p.id); });
      box.appendChild(link);
      return box;
    },

    /* the popup's link → the timeline (the map page's open-issue store; the counter makes
       the same issue asked for again a change) */
    openSeq: 0,
    openTimeline: function (id) {
      if (!window.dash_clientside || !window.dash_clientside.set_props) { return; }
      map.openSeq += 1;
      window.dash_clientside.set_props("map-open-issue", {data: {id: id, n: map.openSeq}});
    },

    day: function (epochSeconds, labels) {
      var lang = (labels && labels.lang) === "en" ? "en-GB" : "zh-CN";
      try {
        return new Intl.DateTimeFormat(lang, {timeZone: (labels && labels.tz) || undefined, year: "numeric",
                                              month: "2-digit", day: "2-digit"}).format(new Date(epochSeconds * 1000));
      } catch (e) {
        return new Date(epochSeconds * 1000).toISOString().slice(0, 10);
      }
    },

    age: function (epochSeconds, labels) {
      var words = (labels && labels.age) || [" d ago", " h ago", "just now"];
      var s = Date.now() / 1000 - epochSeconds;
      if (s >= 86400) { return Math.floor(s / 86400) + words[0]; }
      if (s >= 3600) { return Math.floor(s / 3600) + words[1]; }
      return words[2];
    },

    markerPopup: function (feature, layer, context) {
      var p = feature.properties;
      if (!p || p.cluster) { return; }
      var h = hideoutOf(context);
      // markers carry only id and state; the text is fetched each time the popup opens
      layer.bindPopup(el("div", "gw-popup gw-popup-loading", "…"), {maxWidth: 320, minWidth: 220});
      layer.on("popupopen", function () {
        fetch("/geo/issues/" + encodeURIComponent(p.id) + ".json", {credentials: "same-origin"})
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (data) {
            var box = el("div", "gw-popup");
            if (data) { box.appendChild(map.popupContent(data, h)); } else { box.textContent = "—"; }
            layer.setPopupContent(box);
          })
          .catch(function () { layer.setPopupContent(el("div", "gw-popup", "—")); });
      });
      if (h.focus && h.focus === p.id) {
        setTimeout(function () {
          try { layer.openPopup(); } catch (e) { /* layer not on the map (clustered) */ }
        }, 700);
      }
    },

    /* aggregated cells (server side) when the viewport holds more than max_markers issues;
       p.c all, p.x open and overdue, p.z closed. Coloured like a cluster: by the worst state. */
    binClass: function (p) {
      if (p.x > 0) { return "gw-bin gw-bin-x"; }
      if (p.c - p.z > 0) { return "gw-bin gw-bin-o"; }
      return "gw-bin gw-bin-c";
    },

    binTip: function (p, labels) {
      var st = (labels && labels.state) || {o: "open", x: "overdue", c: "closed"};
      var parts = [String(p.c)];
      var open = p.c - p.z - p.x;
      if (p.x > 0) { parts.push(st.x + " " + p.x); }
      if (open > 0) { parts.push(st.o + " " + open); }
      if (p.z > 0) { parts.push(st.c + " " + p.z); }
      return parts.join(" · ");
    },

    /* A count bubble takes no click or tap: it passes through to the grid below, so a bubble on a
       community's name or area never stands between a user and the drill-down (its counts are
       what the number says; binTip's breakdown is its accessible name). */
    binPoint: function (feature, latlng, context) {
      var p = feature.properties;
      var h = hideoutOf(context);
      var size = Math.round(22 + 6 * Math.log10(Math.max(p.c, 1)));
      var icon = L.divIcon({html: "<div role=\"img\" aria-label=\"" + escapeHtml(map.binTip(p, h.labels)) +
                                  "\"><span>" + escapeHtml(p.c) + "</span></div>",
                            className: map.binClass(p), iconSize: L.point(size, size)});
      return L.marker(latlng, {icon: icon, interactive: false, keyboard: false});
    }
  };

  /* The ticked overlays of the layer control, read from its check boxes whenever one changes, go
     to the overlays store (names as shown; the server maps them to keys in either language). The
     store drives the legends and is what a body rebuilt in another language ticks again.
     (dash-leaflet's own LayersControl.overlays prop loses the other overlays on a tick.) */
  map.checkedOverlays = function (control) {
    var names = [];
    control.querySelectorAll(".leaflet-control-layers-overlays label").forEach(function (label) {
      var input = label.querySelector("input");
      if (input && input.checked) { names.push(label.textContent.trim()); }
    });
    return names;
  };

  map.onOverlayTick = function (ev) {
    var t = ev.target;
    if (!t || !t.classList || !t.classList.contains("leaflet-control-layers-selector")) { return; }
    var control = t.closest(".leaflet-control-layers");
    if (!control || !window.dash_clientside || !window.dash_clientside.set_props) { return; }
    window.dash_clientside.set_props("map-overlays", {data: map.checkedOverlays(control)});
  };

  if (typeof document !== "undefined") {
    document.addEventListener("change", map.onOverlayTick);
  }

  window.gridwatch = window.gridwatch || {};
  window.gridwatch.map = map;

  /* Clientside callback: map.bounds -> map-view. The map reports its bounds on every moveend
   * (several per fly-to, resize or layout change); pass on only the last of a burst, and only when
   * it differs from the view already passed on, so the markers query runs once per settled view. */
  var SETTLE_MS = 90;
  var boundsSeq = 0;
  function sameBounds(a, b) {
    if (!a || !b) { return false; }
    for (var i = 0; i < 2; i += 1) {
      for (var j = 0; j < 2; j += 1) {
        if (Math.abs(a[i][j] - b[i][j]) > 1e-7) { return false; }
      }
    }
    return true;
  }
  /* A map removed soon after it was made, or while it is still animating (the body is rebuilt when
   * the language changes, maybe in the middle of a fly-to), can still be asked for its view: by
   * dash-leaflet's viewport tracking (a timer set when the map became ready, and "moveend" from a
   * late zoom-animation timer). Leaflet then throws "Cannot read properties of undefined (reading
   * '_leaflet_pos')", since a removed map has no map pane (a live one has it from its constructor
   * on). So: a removed map fires no more events, and reports its last view instead of throwing. */
  function guardRemovedMaps(tries) {
    if (!window.L || !L.Map || !L.Evented) {  // Leaflet comes with dash-leaflet's bundle
      if (tries > 0 && typeof document !== "undefined") { setTimeout(guardRemovedMaps, 20, tries - 1); }
      return;
    }
    if (L.Map.prototype._gridwatchGuard) { return; }
    var fire = L.Evented.prototype.fire;
    var panePos = L.Map.prototype._getMapPanePos;
    L.Map.include({
      _gridwatchGuard: true,
      fire: function () { return this._mapPane ? fire.apply(this, arguments) : this; },
      _getMapPanePos: function () { return this._mapPane ? panePos.call(this) : L.point(0, 0); }
    });
    L.Map.addInitHook(keepFitted);
  }

  /* A map fitted to a grid (the selection's flyToBounds) stays fitted while its box changes size
   * — the header or filters reflowing after the fonts or the account menu arrive, a phone turned,
   * a window resized — until the user pans or zooms it themselves. */
  function keepFitted() {
    var m = this, fitting = false;
    var fly = m.flyToBounds, fit = m.fitBounds;
    function remember(bounds, options) {
      m._gwFit = {bounds: L.latLngBounds(bounds), options: options || {}};
      m._gwMoved = false;
      fitting = true;
      m.once("moveend", function () { fitting = false; });
    }
    m.flyToBounds = function (bounds, options) { remember(bounds, options); return fly.call(m, bounds, options); };
    m.fitBounds = function (bounds, options) {
      if (!fitting) { remember(bounds, options); }
      return fit.call(m, bounds, options);
    };
    m.on("dragstart", function () { m._gwMoved = true; });
    m.on("zoomstart", function () { if (!fitting) { m._gwMoved = true; } });
    if (typeof ResizeObserver === "undefined") { return; }
    new ResizeObserver(function () {
      if (!m._mapPane || !m._loaded) { return; }
      m.invalidateSize({pan: false});
      if (m._gwFit && !m._gwMoved) {
        fitting = true;
        var opts = Object.assign({}, m._gwFit.options, {animate: false});
        delete opts.duration;
        fit.call(m, m._gwFit.bounds, opts);
        fitting = false;
      }
    }).observe(m.getContainer());
  }
  guardRemovedMaps(1500);

  // a URL query from the grid and issue of ``place`` and the view keys (all the others) of ``view``
  function composeQuery(place, view) {
    var at = new URLSearchParams(place), parts = [];
    ['grid', 'issue'].forEach(function (k) {
      if (at.get(k)) { parts.push(k + '=' + encodeURIComponent(at.get(k))); }
    });
    (view || '').replace(/^\?/, '').split('&').forEach(function (kv) {
      var k = kv.split('=')[0];
      if (kv && k !== 'grid' && k !== 'issue') { parts.push(kv); }
    });
    return parts.length ? '?' + parts.join('&') : '';
  }

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.gridwatch = Object.assign(window.dash_clientside.gridwatch || {}, {
    settledBounds: function (bounds, current) {
      var nu = window.dash_clientside.no_update;
      if (!bounds) { return nu; }
      boundsSeq += 1;
      var mine = boundsSeq;
      return new Promise(function (resolve) {
        setTimeout(function () {
          resolve(mine !== boundsSeq || sameBounds(bounds, current) ? nu : bounds);
        }, SETTLE_MS);
      });
    },
    // The server's new view (filters, layers) as a whole query, merged into the URL as it is now:
    // its view keys with the grid and issue of the live URL. The server computed it from the URL
    // as it was when the layer was ticked or the filter changed; a grid clicked meanwhile stays.
    mergeView: function (wanted) {
      var nu = window.dash_clientside.no_update;
      if (typeof wanted !== 'string') { return nu; }
      var out = composeQuery(window.location.search, wanted);
      return out === window.location.search ? nu : out;
    },
    // The other way round: a grid clicked or a search result picked ({q: the server's URL}) takes
    // its grid and issue, with the view of the live URL (a layer ticked meanwhile stays).
    mergeNav: function (wanted) {
      var nu = window.dash_clientside.no_update;
      if (!wanted || typeof wanted.q !== 'string') { return nu; }
      var out = composeQuery(wanted.q, window.location.search);
      return out === window.location.search ? nu : out;
    }
  });
}());
