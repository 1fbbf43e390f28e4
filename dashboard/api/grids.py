"""/api/v1 boundary change sets: live validation of a draft, proposals (save, read, replace, apply,
discard, export), change sets (list, one, revert), the boundaries as of a time, the diff of two times.

Who may plan: the capability ``edit_boundaries`` (the planner's role), declared on each operation and
checked before it runs; reading the boundaries as of a date and their diffs needs ``view_map``."""
from __future__ import annotations

import datetime as dt

from geodata.access.capabilities import EDIT_BOUNDARIES, VIEW_MAP
from geodata.grids import changesets
from geodata.grids.changesets import Author

from .core import Call, Result
from .schemas.grids import (
    ApplyIn,
    ChangeSetList,
    ChangeSetOut,
    ChangeSetQuery,
    DiffOut,
    DiffQuery,
    DraftIn,
    DraftOut,
    GridsQuery,
    ProposalIn,
    ProposalOut,
    RevertIn,
)
from .v1 import ID, bp, registry

FeatureCollection = dict


def require_planner(call: Call) -> Author:
    """The author a change set records: the caller (its operation has already required
    ``edit_boundaries``) — their official, else their account's name."""
    call.require(EDIT_BOUNDARIES)
    p = call.principal
    name = p.actor.name or p.display_name or p.login or f"#{p.account_id}"
    return Author(p.official_id, name[:100])


def _aware(t: dt.datetime | None, call: Call) -> dt.datetime | None:
    """A time without offset is business time."""
    return t.replace(tzinfo=call.tz) if t is not None and t.tzinfo is None else t


def _spec(b: DraftIn) -> dict:
    return b.model_dump(include={"grids", "operations", "base"})


@registry.op("POST", bp, "/grid-proposals/validate", summary="Validate a draft against the current tiling "
             "(live, nothing saved): problems with their shapes, the changed grids, the impact", tag="grids",
             body=DraftIn, responses={200: DraftOut}, capability=EDIT_BOUNDARIES)
def validate_draft(call: Call) -> Result:
    """The boundary editor's live check: the same rules as the file import. ``impact: false`` skips
    the impact (validation only)."""
    require_planner(call)
    b: DraftIn = call.body
    return Result(200, DraftOut, changesets.check_draft(call.session, _spec(b), tolerance_m=b.tolerance_m,
                                                        with_impact=b.impact, at=_aware(b.effective_at, call)))


@registry.op("POST", bp, "/grid-proposals", summary="Save a draft as a proposal (problems and impact "
             "in the answer)", tag="grids", body=ProposalIn, responses={201: ProposalOut}, capability=EDIT_BOUNDARIES)
def create_proposal(call: Call) -> Result:
    author = require_planner(call)
    b: ProposalIn = call.body
    draft = changesets.build_draft(call.session, _spec(b))
    pid = changesets.save_proposal(call.session, draft, author, b.reason, effective_at=_aware(b.effective_at, call),
                                   bases=b.base)
    return Result(201, ProposalOut, changesets.proposal_data(call.session, pid, tolerance_m=b.tolerance_m),
                  headers={"Location": f"/api/v1/grid-proposals/{pid}"})


@registry.op("GET", bp, "/grid-proposals/<int:proposal_id>", summary="One proposal: its grids, problems "
             "and conflicts against the current tiling, its impact", tag="grids", responses={200: ProposalOut},
             path_params={"proposal_id": ID}, capability=EDIT_BOUNDARIES)
def one_proposal(call: Call) -> Result:
    require_planner(call)
    return Result(200, ProposalOut, changesets.proposal_data(call.session, call.path["proposal_id"]))


@registry.op("PUT", bp, "/grid-proposals/<int:proposal_id>", summary="Replace a draft proposal's edits",
             tag="grids", body=ProposalIn, responses={200: ProposalOut}, path_params={"proposal_id": ID}, capability=EDIT_BOUNDARIES)
def replace_proposal(call: Call) -> Result:
    author = require_planner(call)
    b: ProposalIn = call.body
    pid = call.path["proposal_id"]
    changesets.proposal_draft(call.session, pid)  # 404 before any work
    draft = changesets.build_draft(call.session, _spec(b))
    changesets.save_proposal(call.session, draft, author, b.reason, effective_at=_aware(b.effective_at, call),
                             proposal_id=pid, bases=b.base)
    return Result(200, ProposalOut, changesets.proposal_data(call.session, pid, tolerance_m=b.tolerance_m))


@registry.op("POST", bp, "/grid-proposals/<int:proposal_id>/apply", summary="Apply a proposal as one change "
             "set (atomic; 409 when its grids changed since, naming the change set)", tag="grids", body=ApplyIn,
             responses={201: ChangeSetOut}, path_params={"proposal_id": ID}, capability=EDIT_BOUNDARIES)
def apply_proposal(call: Call) -> Result:
    """Old versions close and new ones open at the effective time; open issues are re-assigned by
    location (when it has come); a proposal with problems is a 422 listing them in ``detail``."""
    author = require_planner(call)
    b: ApplyIn = call.body
    out = changesets.apply_proposal(call.session, call.path["proposal_id"], author,
                                    effective_at=_aware(b.effective_at, call))
    return Result(201, ChangeSetOut, out, headers={"Location": f"/api/v1/grid-change-sets/{out['id']}"})


@registry.op("POST", bp, "/grid-proposals/<int:proposal_id>/discard", summary="Discard a draft proposal",
             tag="grids", responses={200: ProposalOut}, path_params={"proposal_id": ID}, capability=EDIT_BOUNDARIES)
def discard_proposal(call: Call) -> Result:
    require_planner(call)
    changesets.discard_proposal(call.session, call.path["proposal_id"])
    return Result(200, ProposalOut, changesets.proposal_data(call.session, call.path["proposal_id"]))


@registry.op("GET", bp, "/grid-proposals/<int:proposal_id>/export", summary="A proposal's grids as GeoJSON "
             "(for QGIS)", tag="grids", responses={200: FeatureCollection}, path_params={"proposal_id": ID}, capability=EDIT_BOUNDARIES)
def export_proposal(call: Call) -> Result:
    require_planner(call)
    _prop, draft, bases = changesets.proposal_draft(call.session, call.path["proposal_id"])
    return Result(200, FeatureCollection, changesets.feature_collection(draft, bases))


@registry.op("GET", bp, "/grid-change-sets", summary="Change sets, newest first (of one grid with ?code=)",
             tag="grids", query=ChangeSetQuery, responses={200: ChangeSetList}, capability=EDIT_BOUNDARIES)
def list_change_sets(call: Call) -> Result:
    require_planner(call)
    q: ChangeSetQuery = call.query
    return Result(200, ChangeSetList, {"items": changesets.change_sets(call.session, q.code, limit=q.limit)})


@registry.op("GET", bp, "/grid-change-sets/<int:change_set_id>", summary="One change set", tag="grids",
             responses={200: ChangeSetOut}, path_params={"change_set_id": ID}, capability=EDIT_BOUNDARIES)
def one_change_set(call: Call) -> Result:
    require_planner(call)
    return Result(200, ChangeSetOut, changesets.change_set_data(call.session, call.path["change_set_id"]))


@registry.op("POST", bp, "/grid-change-sets/<int:change_set_id>/revert", summary="Revert a change set as a "
             "new one (409 when a later change set changed its grids)", tag="grids", body=RevertIn,
             responses={201: ChangeSetOut}, path_params={"change_set_id": ID}, capability=EDIT_BOUNDARIES)
def revert_change_set(call: Call) -> Result:
    author = require_planner(call)
    b: RevertIn = call.body
    out = changesets.revert(call.session, call.path["change_set_id"], author, reason=b.reason,
                            effective_at=_aware(b.effective_at, call))
    return Result(201, ChangeSetOut, out, headers={"Location": f"/api/v1/grid-change-sets/{out['id']}"})


@registry.op("GET", bp, "/grids", summary="The grid boundaries valid at a time (GeoJSON; default now)",
             tag="grids", query=GridsQuery, responses={200: FeatureCollection}, capability=VIEW_MAP)
def grids_as_of(call: Call) -> Result:
    """Public, like the map's layers: codes, names, levels, areas and validity of each version."""
    q: GridsQuery = call.query
    return Result(200, FeatureCollection, changesets.grids_geojson(call.session, q.level, as_of=_aware(q.as_of, call)))


@registry.op("GET", bp, "/grids/diff", summary="What changed between the tilings of two times: area gained "
             "and lost per grid, and their shapes", tag="grids", query=DiffQuery, responses={200: DiffOut}, capability=VIEW_MAP)
def grids_diff(call: Call) -> Result:
    require_planner(call)
    q: DiffQuery = call.query
    return Result(200, DiffOut, {"items": changesets.diff(call.session, q.from_, q.to, level=q.level)})
