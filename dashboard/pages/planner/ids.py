"""Component ids of the planner page, all ``planner-…``; ``assets/planner.js`` writes EDIT, SELECTED
and LINE (dash_clientside.set_props) and draws into MAP."""

PREFIX = "planner-"


def _id(name: str) -> str:
    return PREFIX + name


# stores
GRIDS = _id("grids")           # the grids of every level as GeoJSON (+ bbox): what the JS topology is built from
EDIT = _id("edit")             # the JS's edit: {grids: [{code, geometry}], base: {code: version id}}
SELECTED = _id("selected")     # {codes: [...]} (one, or two for a merge)
LINE = _id("line")             # the drawn line (GeoJSON LineString) for split / subdivide
OPS = _id("ops")               # the coverage operations so far (split, merge, move, subdivide)
CHECK = _id("check")           # the server's check: valid, problems (+ GeoJSON), changed grids, impact
DIFF = _id("diff")             # the diff of a change set, gained/lost shapes (GeoJSON)
ASOF = _id("asof")             # the boundaries as of a date (GeoJSON)
RENDERED = _id("rendered")     # the clientside render's dummy output
RELOAD = _id("reload")         # dcc.Location: the page loaded again in the language switched to
LANG_NOTE = _id("lang-note")   # why the language was not switched (an edit in progress)

# controls
MAP = _id("map")               # the div planner.js makes its Leaflet map in (id "planner-map")
LEVEL = _id("level")
SNAP = _id("snap")             # snap tolerance, pixels
DRAW = _id("draw")             # the line-drawing switch
OP_SPLIT = _id("op-split")
OP_SUBDIVIDE = _id("op-subdivide")
OP_MERGE = _id("op-merge")
OP_MOVE = _id("op-move")
MOVE_TO = _id("move-to")       # the community a block moves to
RESET = _id("reset")
STATUS = _id("status")         # the selection and the operations, in words
PROBLEMS = _id("problems")     # the problem list
IMPACT = _id("impact")         # the impact table (dash-ag-grid)
IMPACT_SUMMARY = _id("impact-summary")
REASON = _id("reason")
WHEN = _id("when")             # now | later
EFFECTIVE = _id("effective")   # the later day
SAVE = _id("save")
SAVED = _id("saved")           # the outcome of a save (change set, or a conflict)

# history
HISTORY = _id("history")       # the change sets (dash-ag-grid)
CHANGE_SET = _id("change-set") # the change set picked for diff / revert
SHOW_DIFF = _id("show-diff")
REVERT = _id("revert")
DIFF_TABLE = _id("diff-table")
ASOF_DAY = _id("asof-day")

# proposals: drafts saved from the editor, files from QGIS (GeoPackage, Shapefile zipped, GeoJSON)
SAVE_DRAFT = _id("save-draft")     # save the edit as a draft proposal (not applied)
PROPOSALS = _id("proposals")       # dropdown: the draft proposals (open one)
PROPOSAL = _id("proposal")         # store: the proposal at hand (saved as a draft, imported or opened)
APPLY_PROPOSAL = _id("apply-proposal")
DISCARD_PROPOSAL = _id("discard-proposal")
EXPORT_PROPOSAL = _id("export-proposal")
EXPORT_FILE = _id("export-file")   # dcc.Download of the export
UPLOAD = _id("upload")             # dcc.Upload: contents (data URL) and filename
UPLOAD_CRS = _id("upload-crs")     # the file's CRS when it declares none (e.g. EPSG:4547)
UPLOAD_RESULT = _id("upload-result")   # what happened to the proposal at hand
