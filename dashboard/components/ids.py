"""Ids of the shared components: the app shell (``app-…``: URL, language, body, live poll, outbox)
and the header (``hdr-…``). A page's own components carry its prefix (``dashboard/pages/<page>/ids.py``)."""

APP = "app-"
HDR = "hdr-"

# the shell (every page)
URL = APP + "url"
LANG = APP + "lang"                   # dbc.RadioItems: 'zh' | 'en' (also remembered in a cookie)
BODY = APP + "body"                   # re-rendered when the language changes
BODY_VERSION = APP + "body-version"   # bumped on every body re-render (the page re-applies its URL state)
STAMP = APP + "stamp"                 # the live data stamp (mapdata.latest_change)
OUTAGE = APP + "outage"               # True while the page shows the database outage note
LIVE = APP + "live"                   # the live poll (dcc.Interval)
WIDGET_LOCALE = APP + "widget-locale" # the third-party widgets' language (set in the browser)

# the header
TITLE = HDR + "title"
LIVE_NOTE = HDR + "live-note"
OUTBOX_OPEN = HDR + "outbox-open"     # header button, its label carries the count

# the weekly-notice outbox (header button → modal)
OUTBOX = APP + "outbox"
OUTBOX_GRID = APP + "outbox-grid"           # dash-ag-grid of the latest messages
OUTBOX_MESSAGE = APP + "outbox-message"     # the selected row's full text
OUTBOX_TEXT = APP + "outbox-text"           # the message body inside it
OUTBOX_NOTE = APP + "outbox-note"           # "showing n of N"
OUTBOX_CLOSE = APP + "outbox-close"
