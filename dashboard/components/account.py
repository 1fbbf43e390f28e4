"""The header's account menu: who is signed in, the change-password page, the sign-out button (a
plain form with its CSRF token, posted to ``/logout``); for an anonymous viewer of a public map, a
link to sign in."""
from __future__ import annotations

from dash import dcc, html

from ..auth import csrf_field
from ..context import Context
from ..i18n import t


def account_menu(ctx: Context) -> html.Div:
    lang = ctx.lang
    if ctx.viewer.account_id is None:
        return html.Div(className="gw-account", children=html.A(t("sign_in", lang), href="/login",
                                                                className="btn btn-outline-light btn-sm"))
    name, value = csrf_field()
    return html.Div(className="gw-account", children=[
        html.Span(ctx.viewer.name, className="gw-account-name", title=t("signed_in_as", lang, name=ctx.viewer.name)),
        html.A(t("change_password", lang), href="/account/password", className="gw-account-link"),
        html.Form(action="/logout", method="POST", className="gw-account-form", children=[
            dcc.Input(type="hidden", name=name, value=value),
            html.Button(t("sign_out", lang), type="submit", className="btn btn-outline-light btn-sm",
                        **{"data-testid": "sign-out"}),
        ]),
    ])
