"""The page registry: each page has a folder (``ids``, ``layout``, ``presenters``, ``callbacks``)
and one :class:`Page` entry here — its path, its layout function and its callback registration. ``create_dash`` registers the shared components' callbacks once, then
every page's; the first page is the one served today (the map)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dash import Dash

from geodata.access.capabilities import EDIT_BOUNDARIES, VIEW_ASSESSMENT, VIEW_MAP, VIEW_WALL

from ..components import outbox, widgets
from ..components import values as component_values
from ..context import Context
from ..services import Services
from .assessment import callbacks as assessment_callbacks
from .assessment import values as assessment_values
from .map import callbacks as map_callbacks
from .map import values as map_values
from .planner import callbacks as planner_callbacks
from .planner import values as planner_values
from .wall import callbacks as wall_callbacks
from .wall import values as wall_values


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    layout: Callable[[Services, Context], Any]      # the page for one request's context
    register: Callable[[Dash, Services], None]      # its callbacks
    light_callbacks: frozenset[str] = frozenset()   # first-output ids of its near-free callbacks
    #: (component id, property) → value type, for every property its server callbacks read
    values: Mapping[tuple[str, str], Any] = field(default_factory=dict)
    #: what a viewer needs to open the page (and, one page today, to call Dash's endpoints); the
    #: gate (dashboard.auth) checks it before the page or a callback runs
    capability: str = VIEW_MAP


PAGES: tuple[Page, ...] = (
    Page(name="map", path="/", layout=map_callbacks.page_layout, register=map_callbacks.register,
         light_callbacks=map_callbacks.LIGHT_CALLBACKS, values=map_values.VALUES),
    Page(name="planner", path="/planner", layout=planner_callbacks.page_layout, register=planner_callbacks.register,
         values=planner_values.VALUES, capability=EDIT_BOUNDARIES),
    Page(name="assessment", path="/assessment", layout=assessment_callbacks.page_layout,
         register=assessment_callbacks.register, light_callbacks=assessment_callbacks.LIGHT_CALLBACKS,
         values=assessment_values.VALUES, capability=VIEW_ASSESSMENT),
    # the wall: its own Flask routes (/wall, /wall/events, /wall/state) and display-token gate
    Page(name="wall", path="/wall", layout=wall_callbacks.page_layout, register=wall_callbacks.register,
         values=wall_values.VALUES, capability=VIEW_WALL),
)

#: the callbacks of components several pages share (registered once, whichever pages use them)
COMPONENTS: tuple[Callable[[Dash, Services], None], ...] = (outbox.register, widgets.register)


def home() -> Page:
    return PAGES[0]


def page_for(path: str) -> Page:
    """The page served at ``path`` (the home page for any other)."""
    return next((p for p in PAGES if p.path == path), home())


def register_all(app: Dash, svc: Services) -> None:
    for register in COMPONENTS:
        register(app, svc)
    for page in PAGES:
        page.register(app, svc)


def light_callbacks() -> frozenset[str]:
    return frozenset().union(*(p.light_callbacks for p in PAGES))


def callback_values() -> dict[tuple[str, str], Any]:
    """The value types of every property a server callback reads: the shared components' and every
    page's (a key declared twice is a start-up error: one component, one type)."""
    out: dict[tuple[str, str], Any] = dict(component_values.VALUES)
    for page in PAGES:
        clash = out.keys() & page.values.keys()
        if clash:
            raise RuntimeError(f"callback values declared twice: {sorted(clash)}")
        out.update(page.values)
    return out
