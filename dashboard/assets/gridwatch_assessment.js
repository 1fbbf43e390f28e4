/* The assessment page's score choropleth (dash-leaflet functional props, referenced as
 * {"variable": "gridwatch.assessment.<name>"}). The polygons come once from /geo/grids/<level>.json;
 * the scores, the class breaks and the picked subject come in ``hideout`` (presenters.score_map):
 *   {show: bool, values: {code: final}, labels: {code: "name\nscore"}, breaks: [..], colors: [..],
 *    picked: [codes], none: colour of a grid with no score}
 * Text goes into the DOM with textContent only.
 */
(function () {
  "use strict";

  function hideoutOf(context) {
    return (context && context.hideout) || {};
  }

  function classOf(v, breaks) {
    var i = 0;
    while (i < breaks.length && v >= breaks[i]) { i += 1; }
    return i;
  }

  function picked(h, code) {
    return (h.picked || []).indexOf(code) >= 0;
  }

  window.gridwatch = window.gridwatch || {};
  window.gridwatch.assessment = {
    scoreFilter: function (feature, context) {
      return !!hideoutOf(context).show;
    },

    scoreStyle: function (feature, context) {
      var h = hideoutOf(context);
      var code = feature.properties.code;
      var v = h.values ? h.values[code] : null;
      var on = picked(h, code);
      var fill = (v === null || v === undefined) ? (h.none || "#ced4da")
        : h.colors[classOf(v, h.breaks || [])];
      return {color: on ? "#0b1f44" : "#ffffff", weight: on ? 4 : 1.2, opacity: 1,
              fillColor: fill, fillOpacity: on ? 0.9 : 0.75,
              className: "gw-score gw-score-" + code + (on ? " gw-score-picked" : "")};
    },

    scoreLabel: function (feature, layer, context) {
      var h = hideoutOf(context);
      var text = h.labels ? h.labels[feature.properties.code] : null;
      layer.unbindTooltip();
      if (!text) { return; }
      var box = document.createElement("span");
      String(text).split("\n").forEach(function (line, i) {
        if (i > 0) { box.appendChild(document.createElement("br")); }
        box.appendChild(document.createTextNode(line));
      });
      layer.bindTooltip(box, {permanent: true, direction: "center", interactive: false,
                              className: "gw-score-label gw-score-label-l" + feature.properties.level});
    }
  };
}());
