"""Component ids of the map page, all ``map-…`` (the shell's and header's are in
``dashboard.components.ids``). Tests, callbacks, the guard and ``assets/gridwatch_map.js`` use these."""

PREFIX = "map-"


def _id(name: str) -> str:
    return PREFIX + name


# page state
FILTER = _id("filter")           # IssueFilter.to_dict() and the metric
SELECTED = _id("selected")       # {code, level, parent, bbox, issue}
OVERLAYS = _id("overlays")       # ticked map overlays (names; written by gridwatch_map.js)
VIEW_SOURCE = _id("view-source")  # the URL query the filter and overlay stores were last read from
URL_NAV = _id("url-nav")        # the URL a grid click or search result wants (merged likewise)
URL_VIEW = _id("url-view")      # the URL the view writer wants (merged into the live URL, clientside)
VIEW = _id("view")               # the map's bounds once a move has settled (clientside, deduplicated)

# header slot
SEARCH = _id("search")

# filters
F_KIND = _id("f-kind")
F_DOMAINS = _id("f-domains")
F_STATUSES = _id("f-statuses")
F_DATE = _id("f-date")
F_RANGE = _id("f-range")         # custom date range (used when F_DATE is 'custom')
F_OVERDUE = _id("f-overdue")
METRIC = _id("metric")

# map and layers
MAP = _id("leaflet")
LAYERS = _id("layers")
L_STREET = _id("layer-street")
L_COMMUNITY = _id("layer-community")
L_BLOCK = _id("layer-block")
L_CHORO_COMMUNITY = _id("layer-choro-community")
L_CHORO_BLOCK = _id("layer-choro-block")
L_MARKERS = _id("layer-markers")
L_BINS = _id("layer-bins")
L_HEAT = _id("layer-heat")
LEGEND_CHORO = _id("legend-choro")
LEGEND_HEAT = _id("legend-heat")
LEGEND_MARKERS = _id("legend-markers")
MARKER_NOTE = _id("marker-note")

# side panel
BREADCRUMB = _id("breadcrumb")
NO_BASEMAP = _id("no-basemap")  # the note when no basemap is configured
NOT_FOUND = _id("not-found")    # the notice when the URL names a grid or issue that is not there
PANEL = _id("panel")
GRID_NAME = _id("grid-name")     # the selected grid's name in the panel
ISSUES = _id("issues")
TIMELINE = _id("timeline")
TIMELINE_TITLE = _id("timeline-title")
TIMELINE_BODY = _id("timeline-body")
TIMELINE_ISSUE = _id("timeline-issue")   # the issue's title inside the timeline body
TIMELINE_CLOSE = _id("timeline-close")
OPEN_ISSUE = _id("open-issue")     # {id, n}: a popup's "timeline" link asks for an issue's timeline
URL_IGNORED = _id("url-ignored")   # the notice: invalid view values in the URL were ignored
