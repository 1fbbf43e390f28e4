"""The page registry: each page has a folder (``ids``, ``layout``, ``presenters``, ``callbacks``)
and one :class:`Page` entry here — its path, its layout function and its callback registration. ``create_dash`` registers the shared components' callbacks once, then
every page's; the first page is the one served today (the map)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dash import Dash

from geodata.access.capabilities import VIEW_MAP

from ..components import outbox
from ..context import Context
from ..services import Services
from .map import callbacks as map_callbacks


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    layout: Callable[[Services, Context], Any]      # the page for one request's context
    register: Callable[[Dash, Services], None]      # its callbacks
    light_callbacks: frozenset[str] = frozenset()   # first-output ids of its near-free callbacks
    #: what a viewer needs to open the page (and, one page today, to call Dash's endpoints); the
    #: gate (dashboard.auth) checks it before the page or a callback runs
    capability: str = VIEW_MAP


PAGES: tuple[Page, ...] = (
    Page(name="map", path="/", layout=map_callbacks.page_layout, register=map_callbacks.register,
         light_callbacks=map_callbacks.LIGHT_CALLBACKS),
)

#: the callbacks of components several pages share (registered once, whichever pages use them)
COMPONENTS: tuple[Callable[[Dash, Services], None], ...] = (outbox.register,)


def home() -> Page:
    return PAGES[0]


def register_all(app: Dash, svc: Services) -> None:
    for register in COMPONENTS:
        register(app, svc)
    for page in PAGES:
        page.register(app, svc)


def light_callbacks() -> frozenset[str]:
    return frozenset().union(*(p.light_callbacks for p in PAGES))
