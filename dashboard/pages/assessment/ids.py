"""Ids of the assessment page's components (prefix ``as-``)."""

P = "as-"

BODY = P + "body"                 # the page's body (rebuilt when the language changes)
KIND = P + "kind"                 # period kind: month | quarter | year | custom
PERIOD = P + "period"             # the period of the kind (dropdown: 2026-10, 2026Q3, 2026)
RANGE = P + "range"               # custom days (DatePickerRange)
LEVEL = P + "level"               # grid:2 | grid:3 | official:grid_leader
CHOSEN = P + "chosen"             # store: {"period": key, "level": level} (what every view reads)
PERIOD_NOTE = P + "period-note"   # a bad custom range is said here
RANKING = P + "ranking"           # dash-ag-grid of the ranking
EXPORT_CSV = P + "export-csv"
EXPORT_XLSX = P + "export-xlsx"
EXCELLENT = P + "excellent"       # 优秀网格 / 优秀网格长
NAMED = P + "named"               # 通报 list
KPIS = P + "kpis"                 # the level's totals
TREND_IND = P + "trend-indicator"
TREND = P + "trend"               # plotly: the indicator month by month (and a year earlier)
CHANGES = P + "changes"           # plotly: 环比 / 同比 of the selected subject
SCORES = P + "scores"             # plotly: final scores of the level
TRACE = P + "trace"               # modal: the records behind a number
TRACE_TITLE = P + "trace-title"
TRACE_BODY = P + "trace-body"
TRACE_CLOSE = P + "trace-close"
Q_SUBJECT = P + "q-subject"       # 定性 form: whom
Q_SCORE = P + "q-score"
Q_COMMENT = P + "q-comment"
Q_SAVE = P + "q-save"
Q_RESULT = P + "q-result"
Q_VERSION = P + "q-version"       # bumped when a 定性 score is saved: the ranking reloads
BULLETIN_PDF = P + "bulletin-pdf"
BULLETIN_XLSX = P + "bulletin-xlsx"
SUBJECT = P + "subject"           # store: the ranking row last clicked (the charts follow it)
MAP = P + "map"                   # dash-leaflet: the score choropleth
MAP_L2 = P + "map-l2"             # communities' polygons (restyled via hideout)
MAP_L3 = P + "map-l3"             # blocks' polygons
MAP_LEGEND = P + "map-legend"
CARD = P + "card"                 # the picked subject's scorecard
DOMAINS = P + "domains"           # plotly: cases by domain
HOURS = P + "hours"               # plotly: handling-time distribution
URL = P + "url"                   # dcc.Location: ?period=&level=&subject=&indicator= (a shareable view)
OPEN_TRACE = P + "open-trace"     # store: {subject, indicator} from the URL — opens that number's records
URL_WRITTEN = P + "url-written"   # the clientside URL writer's dummy output
