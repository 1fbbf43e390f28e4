"""Every component id of the dashboard, in one place (tests and callbacks import them from here)."""

# page state
URL = "url"
LANG = "lang"                   # dbc.RadioItems: 'zh' | 'en' (persisted in localStorage)
BODY = "body"                   # re-rendered when the language changes
BODY_VERSION = "body-version"   # bumped on every body re-render (re-applies the URL selection)
FILTER = "filter-store"         # IssueFilter.to_dict()
SELECTED = "selected-store"     # {code, level, parent, bbox, issue}
STAMP = "stamp-store"           # geodata.maps.live.latest_change
OVERLAYS = "overlays-store"     # ticked map overlays, as layout.OVERLAY_KEYS (kept across languages)
OUTAGE = "outage-store"         # True while the page shows the database outage note
LIVE = "live-interval"
LIVE_NOTE = "live-note"

# header
TITLE = "title"
SEARCH = "search"

# filters
F_KIND = "f-kind"
F_DOMAINS = "f-domains"
F_STATUSES = "f-statuses"
F_DATE = "f-date"
F_RANGE = "f-range"             # custom date range (used when F_DATE is 'custom')
F_OVERDUE = "f-overdue"
METRIC = "metric"

# map and layers
MAP = "map"
VIEW = "view-store"              # the map's bounds once a move has settled (clientside, deduplicated)
LAYERS = "layers"
L_STREET = "layer-street"
L_COMMUNITY = "layer-community"
L_BLOCK = "layer-block"
L_CHORO_COMMUNITY = "layer-choro-community"
L_CHORO_BLOCK = "layer-choro-block"
L_MARKERS = "layer-markers"
L_BINS = "layer-bins"
L_HEAT = "layer-heat"
LEGEND_CHORO = "legend-choro"
LEGEND_HEAT = "legend-heat"
LEGEND_MARKERS = "legend-markers"
MARKER_NOTE = "marker-note"

# side panel
BREADCRUMB = "breadcrumb"
PANEL = "panel"
ISSUES = "issues-grid"
TIMELINE = "timeline-modal"
TIMELINE_TITLE = "timeline-title"
TIMELINE_BODY = "timeline-body"
TIMELINE_CLOSE = "timeline-close"

# weekly-notice outbox (header button → modal)
OUTBOX_OPEN = "outbox-open"          # header button, label carries the count
OUTBOX = "outbox-modal"
OUTBOX_GRID = "outbox-grid"          # dash-ag-grid of the latest messages
OUTBOX_MESSAGE = "outbox-message"    # the selected row's full text
OUTBOX_NOTE = "outbox-note"          # "showing n of N"
OUTBOX_CLOSE = "outbox-close"
