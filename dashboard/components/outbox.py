"""The weekly-notice outbox: a header button with the count, a modal with the latest messages
(loaded when opened, ``geodata.notices.latest_outbox`` in the viewer's scope) and the selected
message's full text."""
from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, html, no_update
from dash import ctx as dash_ctx

from geodata.workflow import notices

from ..context import Context, current_context
from ..i18n import fmt_dt, fmt_int, grid_name, t
from ..services import Services
from . import ids, widgets

OUTBOX_LIMIT = 200   # rows loaded into the modal (newest first)


# -- layout ----------------------------------------------------------------------------------------
def button_label(lang: str, count: int | None) -> list[Any]:
    badge = "—" if count is None else f"{count:,}"
    return [html.Span(t("outbox", lang)), html.Span(badge, className="gw-badge")]


def button(lang: str, count: int | None) -> dbc.Button:
    """The header button (``count``: messages the viewer may see; None: unknown)."""
    return dbc.Button(button_label(lang, count), id=ids.OUTBOX_OPEN, color="light", outline=True,
                      size="sm", className="gw-outbox-open", n_clicks=0)


def columns(lang: str) -> list[dict[str, Any]]:
    return [
        {"field": "created", "headerName": t("col_time", lang), "width": 190,
         "comparator": {"function": "nodeA.data.created_ts - nodeB.data.created_ts"}},
        {"field": "recipient", "headerName": t("col_recipient", lang), "width": 130},
        {"field": "subject", "headerName": t("col_subject", lang), "flex": 1, "minWidth": 180},
        {"field": "status", "headerName": t("col_status", lang), "width": 110,
         "cellClassRules": {"gw-cell-pending": "!params.data.sent"}},
    ]


def modal(lang: str) -> dbc.Modal:
    """The latest messages (loaded when opened) and the selected one's text."""
    return dbc.Modal(id=ids.OUTBOX, is_open=False, size="xl", scrollable=True, className="gw-outbox",
                     children=[
        dbc.ModalHeader(dbc.ModalTitle(t("outbox_title", lang)), close_button=True),
        dbc.ModalBody(children=[
            html.Div(id=ids.OUTBOX_NOTE, className="gw-outbox-note"),
            widgets.data_grid(
                lang, id=ids.OUTBOX_GRID, className="gw-outbox-grid", rowData=[], columnDefs=columns(lang),
                defaultColDef={"sortable": True, "resizable": True, "filter": False},
                dashGridOptions={"animateRows": False,
                                 "rowSelection": {"mode": "singleRow", "checkboxes": False,
                                                  "enableClickSelection": True}},
                getRowId="params.data.id", style={"height": "300px"}),
            html.Div(id=ids.OUTBOX_MESSAGE, className="gw-outbox-message",
                     children=html.P(t("outbox_pick", lang), className="gw-muted")),
        ]),
        dbc.ModalFooter(dbc.Button(t("close", lang), id=ids.OUTBOX_CLOSE, color="secondary")),
    ])


# -- presenters (pure) -----------------------------------------------------------------------------
def rows(items: list[notices.OutboxItem], lang: str, tz: ZoneInfo) -> list[dict[str, Any]]:
    """Outbox items → the modal's grid rows (the body travels with the row, shown when selected)."""
    return [{"id": str(i.id), "created": fmt_dt(i.created_at, lang, tz),
             "created_ts": int(i.created_at.timestamp()),
             "recipient": i.recipient or "—", "subject": i.subject,
             "status": t("outbox_sent" if i.sent else "outbox_pending", lang), "sent": i.sent,
             "sent_at": fmt_dt(i.sent_at, lang, tz) if i.sent_at else "",
             "grids": t("list_sep", lang).join(grid_name((n, en), lang, c) for c, n, en in i.grids),
             "body": i.body}
            for i in items]


def note(shown: int, total: int, pending: int, lang: str) -> str:
    if not total:
        return t("outbox_empty", lang)
    return t("outbox_shown", lang, n=fmt_int(shown, lang), total=fmt_int(total, lang),
             pending=fmt_int(pending, lang))


def message(selected: list[dict[str, Any]] | None, lang: str) -> list[Any]:
    """The selected grid row → its full message (subject, facts, text); a hint when none is selected."""
    row = (selected or [None])[0]
    if not row:
        return [html.P(t("outbox_pick", lang), className="gw-muted")]
    facts = [(t("col_recipient", lang), row.get("recipient") or "—")]
    if row.get("grids"):
        facts.append((t("outbox_grids", lang), row["grids"]))
    facts += [(t("col_time", lang), row.get("created") or "—"),
              (t("col_status", lang), row.get("status") or "—")]
    if row.get("sent_at"):
        facts.append((t("col_sent_at", lang), row["sent_at"]))
    return [html.H4(row.get("subject") or "", className="gw-outbox-subject"),
            html.Dl(className="gw-meta", children=[x for k, v in facts for x in (html.Dt(k), html.Dd(v))]),
            html.Pre(row.get("body") or "", className="gw-outbox-text", id=ids.OUTBOX_TEXT)]


# -- data and callbacks ----------------------------------------------------------------------------
def count(s: Any, ctx: Context) -> int:
    """Messages the viewer may see (the button's badge), in an open session ``s``."""
    return notices.latest_outbox(s, ctx.scope, limit=0, tz=ctx.tz).total


def outputs(svc: Services, ctx: Context) -> tuple[list[dict[str, Any]], str, list[Any]]:
    """Opening the outbox → (grid rows, note, header button label with the count)."""
    with svc.session(ctx) as s:
        view = notices.latest_outbox(s, ctx.scope, limit=OUTBOX_LIMIT, tz=ctx.tz)
    return (rows(view.items, ctx.lang, ctx.tz), note(len(view.items), view.total, view.pending, ctx.lang),
            button_label(ctx.lang, view.total))


def register(app: Dash, svc: Services) -> None:
    @app.callback(Output(ids.OUTBOX, "is_open"), Output(ids.OUTBOX_GRID, "rowData"),
                  Output(ids.OUTBOX_GRID, "selectedRows"), Output(ids.OUTBOX_NOTE, "children"),
                  Output(ids.OUTBOX_MESSAGE, "children", allow_duplicate=True),
                  Output(ids.OUTBOX_OPEN, "children"),
                  Input(ids.OUTBOX_OPEN, "n_clicks"), Input(ids.OUTBOX_CLOSE, "n_clicks"),
                  State(ids.LANG, "value"), prevent_initial_call=True)
    def _outbox(_open, _close, lang):
        if dash_ctx.triggered_id != ids.OUTBOX_OPEN:
            return False, no_update, no_update, no_update, no_update, no_update
        ctx = current_context(svc.settings, lang)
        grid_rows, text, label = outputs(svc, ctx)
        return True, grid_rows, [], text, message(None, ctx.lang), label

    @app.callback(Output(ids.OUTBOX_MESSAGE, "children"), Input(ids.OUTBOX_GRID, "selectedRows"),
                  State(ids.LANG, "value"), prevent_initial_call=True)
    def _outbox_message(selected, lang):
        return message(selected, current_context(svc.settings, lang).lang)


