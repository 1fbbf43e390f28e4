"""The one small, hand-made test world (independent of the demo dataset): workflow, API and map tests.

Street 41010200100000 = [113.62, 113.64] × [34.74, 34.76]; two communities split at lon 113.63
(001 west, 002 east); each split into two blocks at lat 34.75 (01 north, 02 south). So the four
blocks meet at the vertex (113.63, 34.75) and share edges along lon 113.63 and lat 34.75.

    +-----------+-----------+
    | 0101 (NW) | 0201 (NE) |
    +-----------+-----------+
    | 0102 (SW) | 0202 (SE) |
    +-----------+-----------+
      comm. 001   comm. 002

``seed`` inserts the grids, officials and assignments; ``seed_issues`` adds a deterministic set of
issues with their first events (the map tests' data).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from geoalchemy2 import WKTElement
from sqlalchemy import text
from sqlalchemy.orm import Session

from geodata.access import accounts
from geodata.access.capabilities import grant_for_assignment
from geodata.clock import zone
from geodata.db.admin import create_database, drop_database
from geodata.db.migrate import upgrade
from geodata.db.roles import APP_ROLE, OWNER_ROLE, role_url
from geodata.models import Issue, IssueEvent
from geodata.settings import DEFAULT_TIMEZONE
from geodata.workflow.identity import Actor

STREET = "41010200100000"
C1, C2 = "41010200100100", "41010200100200"
B11, B12, B21, B22 = "41010200100101", "41010200100102", "41010200100201", "41010200100202"
SINCE = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)

# code, level, parent, name, name_en, (xmin, ymin, xmax, ymax)
GRIDS = [
    (STREET, 1, None, "测试街道", "Test Street", (113.62, 34.74, 113.64, 34.76)),
    (C1, 2, STREET, "西社区", "West Community", (113.62, 34.74, 113.63, 34.76)),
    (C2, 2, STREET, "东社区", "East Community", (113.63, 34.74, 113.64, 34.76)),
    (B11, 3, C1, "西社区一网格", "West Grid 1", (113.62, 34.75, 113.63, 34.76)),
    (B12, 3, C1, "西社区二网格", "West Grid 2", (113.62, 34.74, 113.63, 34.75)),
    (B21, 3, C2, "东社区一网格", "East Grid 1", (113.63, 34.75, 113.64, 34.76)),
    (B22, 3, C2, "东社区二网格", "East Grid 2", (113.63, 34.74, 113.64, 34.75)),
]
BOXES = {code: bb for code, _level, _parent, _name, _en, bb in GRIDS}
DOMAINS = ("safety", "sanitation", "city_order", "disputes", "public_security", "livelihood",
           "illegal_building")
#: Fixed "now" for the issues of ``seed_issues``.
NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)

# key, name, grid, role, title, rank
OFFICIALS = [
    ("secretary", "街道书记", STREET, "first_responsible", "街道党委书记", 0),
    ("director", "办事处主任", STREET, "first_responsible", "办事处主任", 1),
    ("operator", "中心操作员", STREET, "operator", "网格化管理中心操作员", 0),
    ("c1_leader", "西分包领导", C1, "first_responsible", "街道科级分包领导", 0),
    ("c1_secretary", "西支书", C1, "direct_responsible", "社区党支部书记", 0),
    ("c1_chair", "西主任", C1, "direct_responsible", "居委会主任", 1),
    ("c1_police", "西民警", C1, "direct_responsible", "警务室首席民警", 2),
    ("c1_member", "西两委", C1, "sunk_member", "社区两委成员", 0),
    ("c1_maintainer", "西维护员", C1, "platform_maintainer", "二级网格信息平台维护员", 0),
    ("c2_leader", "东分包领导", C2, "first_responsible", "街道科级分包领导", 0),
    ("c2_secretary", "东支书", C2, "direct_responsible", "社区党支部书记", 0),
    ("c2_member", "东两委", C2, "sunk_member", "社区两委成员", 0),
    ("c2_maintainer", "东维护员", C2, "platform_maintainer", "二级网格信息平台维护员", 0),
    ("b11_leader", "网格长甲", B11, "grid_leader", "网格长", 0),
    ("b12_leader", "网格长乙", B12, "grid_leader", "网格长", 0),
    ("b21_leader", "网格长丙", B21, "grid_leader", "网格长", 0),
    ("b22_leader", "网格长丁", B22, "grid_leader", "网格长", 0),
]
#: Officials not assigned to any grid (e.g. a functional department's handler).
UNASSIGNED = [("handler", "职能部门承办人"), ("handler2", "另一承办人")]

#: The business time zone the tests run in (the settings' default).
TZ = zone(DEFAULT_TIMEZONE)


@dataclass
class World:
    ids: dict[str, int] = field(default_factory=dict)          # official key → official id
    issues: list[int] = field(default_factory=list)
    accounts: dict[str, int] = field(default_factory=dict)     # official key → their account's id
    tokens: dict[str, str] = field(default_factory=dict)       # official key → an API token of it

    def principal(self, session: Session, key: str | None, as_of: dt.datetime | None = None):
        """The signed-in principal of an official's account (None key: anonymous)."""
        if key is None:
            return accounts.Principal.anonymous()
        return accounts.load_principal(session, self.accounts[key], as_of=as_of)

    def actor(self, session: Session, key: str | None, as_of: dt.datetime | None = None) -> Actor:
        return self.principal(session, key, as_of).actor


def seed(session: Session) -> World:
    """Insert the grids, officials and assignments (inside the caller's transaction)."""
    world = World()
    for code, level, parent, name, name_en, (x0, y0, x1, y1) in GRIDS:
        session.execute(text("""
            INSERT INTO grid (code, level, parent_code, name, name_en, geom, area_m2, valid_from)
            VALUES (:code, :level, :parent, :name, :name_en, ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)),
                    ST_Area(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)::geography), :since)
        """), {"code": code, "level": level, "parent": parent, "name": name, "name_en": name_en,
               "x0": x0, "y0": y0, "x1": x1, "y1": y1, "since": SINCE})
    for i, (key, name, *_rest) in enumerate(OFFICIALS + [(k, n, None, None, None, None) for k, n in UNASSIGNED]):
        oid = session.execute(text("INSERT INTO official (name, unit) VALUES (:n, '测试街道') RETURNING id"),
                              {"n": name}).scalar_one()
        session.execute(text("INSERT INTO official_contact (official_id, phone) VALUES (:o, :p)"),
                        {"o": oid, "p": f"1380000{i:04d}"})
        world.ids[key] = oid
    for key, _name, grid, role, title, rank in OFFICIALS:
        session.execute(text("""
            INSERT INTO grid_assignment (official_id, grid_code, role, title, rank, valid_from)
            VALUES (:o, :g, :r, :t, :k, :since)"""),
            {"o": world.ids[key], "g": grid, "r": role, "t": title, "k": rank, "since": SINCE})
    session.flush()
    seed_accounts(session, world)
    return world


def seed_accounts(session: Session, world: World) -> None:
    """An account per official (login = its key), granted what its assignments suggest
    (``capabilities.grant_for_assignment``; the unassigned: ``handler``), each with an API token."""
    grants: dict[str, list] = {k: [] for k in world.ids}
    for key, _name, grid, role, *_rest in OFFICIALS:
        g = grant_for_assignment(role, grid)
        if g is not None and (g.role, g.grid_code) not in grants[key]:
            grants[key].append((g.role, g.grid_code))
    for key, _name in UNASSIGNED:
        grants[key].append(("handler", None))
    for key, oid in world.ids.items():
        aid = accounts.create_account(session, key, official_id=oid, grants=tuple(grants[key]))
        world.accounts[key] = aid
        world.tokens[key] = accounts.issue_token(session, aid, "tests")
    # staff who are no officials: the street's grid planner (boundaries), an assessor
    for key, role in (("planner", "planner"), ("assessor", "assessor")):
        aid = accounts.create_account(session, key, grants=((role, None),))
        world.accounts[key] = aid
        world.tokens[key] = accounts.issue_token(session, aid, "tests")


def seed_issues(session: Session, world: World, now: dt.datetime = NOW, n: int = 40) -> list[int]:
    """``n`` issues spread over the four blocks (statuses, kinds and domains in turn; every third
    closed one closed late), each with its report event and, past 上报, its 交办 event. Their ids."""
    ids = world.ids
    issue_ids = []
    blocks = (B11, B12, B21, B22)
    statuses = ("reported", "assigned", "handling", "closed", "evaluated", "closed", "feedback", "evaluated")
    for i in range(n):
        block = blocks[i % 4]
        w, s, e, nn = BOXES[block]
        x = w + (e - w) * (0.1 + 0.8 * ((i * 37) % 100) / 100)
        y = s + (nn - s) * (0.1 + 0.8 * ((i * 53) % 100) / 100)
        status = statuses[i % len(statuses)]
        reported = now - dt.timedelta(days=(i * 7) % 200, hours=i)
        closed = None
        if status in ("closed", "evaluated"):
            closed = reported + dt.timedelta(days=3 if i % 3 else 8)
        community = block[:12] + "00"
        c = "c1" if community == C1 else "c2"
        leader = ids[f"b{block[11]}{block[13]}_leader"]
        iss = Issue(number=f"UI2026{i:06d}", kind="problem" if i % 5 else "sentiment",
                    domain_code=DOMAINS[i % 7], title=f"测试问题{i}", description=f"描述{i}",
                    source="patrol", location=WKTElement(f"POINT({x} {y})", srid=4326),
                    grid_code=block, community_code=community, leader_in_charge_id=ids[f"{c}_leader"],
                    responsible_id=ids[f"{c}_secretary"], grid_leader_id=leader, status=status,
                    reported_at=reported, due_at=reported + dt.timedelta(days=5), closed_at=closed,
                    updated_at=closed or reported)
        session.add(iss)
        session.flush()
        issue_ids.append(iss.id)
        session.add(IssueEvent(issue_id=iss.id, action="report", from_status=None, to_status="reported",
                               actor_id=leader, actor_role="grid_leader", at=reported, note=f"巡查发现{i}"))
        if status != "reported":
            session.add(IssueEvent(issue_id=iss.id, action="assign", from_status="reported",
                                   to_status="assigned", actor_id=ids["c1_maintainer"],
                                   actor_role="platform_maintainer", at=reported + dt.timedelta(hours=1),
                                   note="交办"))
    session.flush()
    return issue_ids


def counts(session: Session) -> tuple[int, int]:
    """(issues, events) — to check that a refused request wrote nothing."""
    return (session.execute(text("SELECT count(*) FROM issue")).scalar_one(),
            session.execute(text("SELECT count(*) FROM issue_event")).scalar_one())


def scratch_database(server_url: str, name: str, template: str | None = None) -> str:
    """A fresh database (migrated, or copied from ``template``) for tests that commit."""
    return create_database(server_url, name, template=template)


def event_count(session: Session, issue_id: int) -> int:
    return session.execute(text("SELECT count(*) FROM issue_event WHERE issue_id = :i"), {"i": issue_id}).scalar_one()


def snapshot(session: Session, issue_id: int) -> tuple:
    session.expire_all()
    i = session.get(Issue, issue_id)
    return (i.status, i.version, i.assignee_id, i.due_at, i.signed_at, i.closed_at, i.rework_count,
            i.reassign_count, i.satisfaction, event_count(session, issue_id))




# -- sessions rolled back -------------------------------------------------------------------------
#: the columns a copied demo issue keeps (``copy_issue``)
COPIED = ("kind, domain_code, description, source, location, address, grid_code, community_code, "
          "leader_in_charge_id, responsible_id, grid_leader_id, assignee_id, worksheet, status, "
          "due_at, closed_at, rework_count, reassign_count, satisfaction, version, updated_at")


def copy_issue(session: Session, community: str, number: str, title: str, reported_at: dt.datetime) -> int:
    """A copy of one of ``community``'s demo issues with its own number, title and report time."""
    return session.execute(text(
        f"INSERT INTO issue (number, title, reported_at, {COPIED}) "
        f"SELECT :n, :t, CAST(:at AS timestamptz), {COPIED} FROM issue WHERE community_code = :c "
        "ORDER BY id LIMIT 1 RETURNING id"),
        {"n": number, "t": title, "at": reported_at, "c": community}).scalar_one()


def rollback_session(engine) -> Iterator[Session]:
    """A Session in one transaction that is rolled back at the end (its commits are savepoints)."""
    conn = engine.connect()
    trans = conn.begin()
    session = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        trans.rollback()
        conn.close()


@contextmanager
def savepoint(session: Session) -> Iterator[None]:
    """Everything written inside is rolled back (one test inside a module-wide world)."""
    nested = session.begin_nested()
    try:
        yield
    finally:
        if nested.is_active:
            nested.rollback()
        session.expire_all()


# -- API apps on scratch databases -----------------------------------------------------------------
def png_bytes(size: int = 8, color: tuple = (200, 30, 30)) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, "PNG")
    return buf.getvalue()


@dataclass
class ApiWorld:
    app: object
    engine: object        # the test's own view (superuser: no row-level security)
    settings: object      # settings.database_url: the app role's URL, as the app connects
    world: World | None
    url: str              # the superuser's URL of the scratch database
    app_engine: object = None   # what the app runs on (the app role)

    def dispose(self) -> None:
        self.engine.dispose()
        if self.app_engine is not None:
            self.app_engine.dispose()

    def client(self, key: str | None = None):
        """A test client; with ``key`` every request carries official ``key``'s bearer token."""
        c = self.app.test_client()
        if key is not None:
            c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {self.world.tokens[key]}"
        return c

    def hdr(self, key: str | None, **extra: str) -> dict:
        """Request headers acting as official ``key`` (their account's bearer token; None: anonymous)."""
        h = {k.replace("_", "-"): v for k, v in extra.items()}
        if key is not None:
            h["Authorization"] = f"Bearer {self.world.tokens[key]}"
        return h


def official_token(engine, official_id: int) -> str:
    """An API token of ``official_id``'s account (made, granted what their assignments suggest, if
    they have none): for worlds without seeded accounts, such as the demo dataset."""
    from sqlalchemy import select

    from geodata.access.models import Account
    from geodata.db import session_scope
    from geodata.models import GridAssignment

    with session_scope(engine) as s:
        aid = s.scalar(select(Account.id).where(Account.official_id == official_id))
        if aid is None:
            rows = s.execute(select(GridAssignment.role, GridAssignment.grid_code)
                             .where(GridAssignment.official_id == official_id, GridAssignment.valid_to.is_(None))).all()
            grants = {(g.role, g.grid_code) for r, c in rows if (g := grant_for_assignment(r, c)) is not None}
            aid = accounts.create_account(s, f"official-{official_id}", official_id=official_id,
                                          grants=tuple(sorted(grants, key=str)) or (("handler", None),))
        return accounts.issue_token(s, aid, "tests")


def session_id(engine, role: str = "operator", grid: str | None = None, official_id: int | None = None) -> str:
    """A web session of a fresh account holding ``role`` on ``grid`` (linked to ``official_id``):
    the value of the session cookie, as the sign-in page would set it."""
    import secrets

    from geodata.db import session_scope

    with session_scope(engine) as s:
        aid = accounts.create_account(s, f"t-{role.replace('_', '-')}-{secrets.token_hex(4)}",
                                      kind="display" if role == "display" else "user", official_id=official_id,
                                      grants=((role, grid),))
        return accounts.start_session(s, aid)


def sign_in(client, engine, role: str = "operator", grid: str | None = None, official_id: int | None = None):
    """``client`` (a Flask test client of the dashboard), signed in as :func:`session_id`'s account."""
    from dashboard.auth import SESSION_COOKIE

    client.set_cookie(SESSION_COOKIE, session_id(engine, role, grid, official_id))
    return client


def sign_in_every_client(server, engine, role: str = "operator", grid: str | None = None) -> None:
    """Every ``server.test_client()`` from now on is signed in, to the dashboard (a session cookie)
    and to the API (a bearer token), as a fresh account holding ``role`` on ``grid`` — for tests of
    something else than who may do what."""
    from flask.testing import FlaskClient

    from dashboard.auth import SESSION_COOKIE
    from geodata.access.models import WebSession
    from geodata.db import session_scope

    sid = session_id(engine, role, grid)
    with session_scope(engine) as s:
        aid = s.get(WebSession, accounts._digest(sid)).account_id
        token = accounts.issue_token(s, aid, "tests")

    class SignedIn(FlaskClient):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.set_cookie(SESSION_COOKIE, sid)
            self.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"

    server.test_client_class = SignedIn


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def scratch_api(server_url: str, name: str, var_dir, **kw) -> Iterator[ApiWorld]:
    """:func:`make_api` for the length of a ``with``: disposes the engine and drops the database."""
    a = make_api(server_url, name, var_dir, **kw)
    try:
        yield a
    finally:
        a.dispose()
        drop_database(server_url, name)


def make_api(server_url: str, name: str, var_dir, *, template: str | None = None, seed_world: bool = True,
             dash: bool = False, **settings_kw) -> ApiWorld:
    """A Flask app with the API registered, on a fresh scratch database (seeded, or copied from
    ``template``); with ``dash`` the whole server as ``create_app`` wires it (Dash pages, assets,
    tiles and the API), connecting as the app role. Caller calls ``dispose()`` and drops the database."""
    from flask import Flask
    from sqlalchemy import create_engine

    from dashboard.api import register_api
    from geodata.db import session_scope
    from geodata.settings import Settings

    url = scratch_database(server_url, name, template=template)
    if template:
        upgrade(role_url(url, OWNER_ROLE))
    engine = create_engine(url, pool_size=8, connect_args={"options": "-c timezone=UTC"})
    world = None
    if seed_world and not template:
        with session_scope(engine) as s:
            world = seed(s)
    settings = Settings(database_url=app_url(url), owner_database_url=role_url(url, OWNER_ROLE), var_dir=var_dir,
                        **settings_kw)
    app_engine = create_engine(settings.database_url, pool_size=8, connect_args={"options": "-c timezone=UTC"})
    if dash:
        from dashboard import create_dash

        app = create_dash(settings, app_engine).server
    else:
        app = Flask(f"gridwatch-{name}")
    register_api(app, settings, app_engine)
    return ApiWorld(app, engine, settings, world, url, app_engine)


def app_url(url: str) -> str:
    """``url``'s database as the web server connects to it: the app role (row-level security)."""
    return role_url(url, APP_ROLE)


def run_gridwatch(url: str, *args: str, stdin: str | None = None, env: dict | None = None):
    """The ``gridwatch`` console script against database ``url`` (plain output, wide lines; ``stdin``
    its input, ``env`` more environment)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    exe = root / ".venv" / "bin" / "gridwatch"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "app"]
    env = {**os.environ, "GRIDWATCH_DATABASE_URL": url, "COLUMNS": "250", "NO_COLOR": "1", **(env or {})}
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=env, cwd=root, timeout=120,
                          check=False, input=stdin)


def block_or_none(session: Session, lon: float, lat: float) -> str | None:
    """The single-point rule's block for a point, None outside every grid (the yardstick of bulk tests)."""
    from geodata.errors import OutsideGridsError
    from geodata.grids.assignment import locate_block

    try:
        return locate_block(session, float(lon), float(lat)).grid_code
    except OutsideGridsError:
        return None
