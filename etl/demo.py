"""The synthetic, deterministic 三官庙街道 demo dataset (``gridwatch demo``).

One street (level 1), 14 communities (level 2) and 59 block grids (level 3) that tile each other
exactly; every role of every level staffed; one year of problems (3134, of which 3130 closed) and
public-sentiment reports (1214, of which 1209 closed) with full workflow histories, patrol diaries
and 三谈/三访/三诊 activities. Everything is labelled synthetic (合成演示数据). The article's numbers
are not stored anywhere: they come out of the records.

Same ``seed`` and ``end`` → identical rows. The records run up to ``AS_OF_TIME`` (07:30 Beijing
time) on the end date, so a default load (end = today) never holds future timestamps after the
working day has begun, and "this week" always has activity. One transaction, bulk COPY.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import random
import time
from dataclasses import dataclass, field

import numpy as np
import shapely
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from etl.progress import Steps
from geodata.access import rls
from geodata.access.capabilities import Grant
from geodata.access.scope import Scope
from geodata.clock import zone
from geodata.geometry import area_m2
from geodata.models import GridAssignment, Outbox
from geodata.settings import DEFAULT_TIMEZONE
from geodata.workflow import notices
from geodata.workflow import rules as wf
from geodata.workflow.identity import actor_for
from geodata.workflow.rules import DeadlinePolicy

from . import demo_text as T
from .demo_geometry import HOTSPOTS, STREET_OUTLINE, DemoGeometry, build_geometry, to_lonlat

SYNTHETIC_NOTE = "合成演示数据 / synthetic demo data"
UNIT_SUFFIX = "（合成演示）"
AS_OF_TIME = dt.time(7, 30)

N_PROBLEMS, N_PROBLEMS_OPEN = 3134, 4
N_SENTIMENT, N_SENTIMENT_OPEN = 1214, 5
BACKGROUND_SHARE = 0.25
UTC = dt.UTC
#: The demo is a Zhengzhou street with a fixed, deterministic clock: its records are written in the
#: default business time zone whatever GRIDWATCH_TIMEZONE says.
DEMO_TZ = zone(DEFAULT_TIMEZONE)


class DemoError(RuntimeError):
    """The demo cannot be loaded (e.g. grids already exist); the message is bilingual."""


@dataclass
class DemoSummary:
    loaded: bool
    seed: int
    end: dt.date
    as_of: dt.datetime | None = None
    grids: dict[int, int] = field(default_factory=dict)
    officials: int = 0
    assignments: int = 0
    problems: int = 0
    problems_closed: int = 0
    sentiments: int = 0
    sentiments_closed: int = 0
    events: int = 0
    diaries: int = 0
    activities: int = 0
    notices: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        if not self.loaded:
            return ("已有网格数据，未加载演示数据 / grids already present: demo dataset not loaded "
                    f"(street={self.grids.get(1, 0)}, community={self.grids.get(2, 0)}, block={self.grids.get(3, 0)})")

        def rate(a: int, b: int) -> str:
            return f"{100 * a / b:.2f}%" if b else "—"

        as_of = self.as_of.astimezone(DEMO_TZ).strftime("%Y-%m-%d %H:%M") if self.as_of else "—"
        return "\n".join([
            "三官庙街道演示数据（合成）/ Sanguanmiao demo dataset (synthetic)",
            f"  网格 Grids: 街道 street {self.grids.get(1, 0)} · 社区 community {self.grids.get(2, 0)}"
            f" · 楼院 block {self.grids.get(3, 0)}",
            f"  人员 Officials: {self.officials} · 岗位 role assignments: {self.assignments}",
            f"  问题 Problems: {self.problems}, 办结 closed {self.problems_closed} "
            f"({rate(self.problems_closed, self.problems)})",
            f"  社情 Sentiment reports: {self.sentiments}, 办结 closed {self.sentiments_closed} "
            f"({rate(self.sentiments_closed, self.sentiments)})",
            f"  流程事件 Events: {self.events} · 民情日记 Patrol diaries: {self.diaries}"
            f" · 三谈三访三诊 Activities: {self.activities}"
            f" · 周报短信 Weekly notices: {self.notices}",
            f"  截至 As of: {as_of} (北京时间 Beijing time) · 种子 seed {self.seed}"
            f" · 用时 {self.seconds:.1f} s",
        ])

    __repr__ = __str__


# -- small helpers ----------------------------------------------------------------------------------
def _local(d: dt.date, t: dt.time = dt.time(0)) -> dt.datetime:
    return dt.datetime.combine(d, t, tzinfo=DEMO_TZ).astimezone(UTC)


def _ewkb(geom) -> str:
    return shapely.to_wkb(shapely.set_srid(geom, 4326), hex=True, include_srid=True)


#: tables under row-level security: COPY FROM is refused there (even to the owner, FORCE), so their
#: rows are copied into a temporary table and inserted from it
_RLS_TABLES = frozenset({"issue", "issue_event", "issue_photo", "patrol_diary", "official_contact",
                         "issue_reporter"})


def _copy(cur, table: str, columns: list[str], rows: list[tuple]) -> None:
    target = f"_stage_{table}" if table in _RLS_TABLES else table
    if target != table:
        cur.execute(f"CREATE TEMP TABLE {target} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
    with cur.copy(f"COPY {target} ({', '.join(columns)}) FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)
    if target != table:
        cols = ", ".join(columns)
        cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {target}")


# -- people ---------------------------------------------------------------------------------------
@dataclass
class _Staff:
    officials: list[tuple] = field(default_factory=list)       # id, name, phone, unit, active
    assignments: list[tuple] = field(default_factory=list)     # official_id, grid, role, title, rank
    street_leaders: list[int] = field(default_factory=list)
    operators: list[int] = field(default_factory=list)
    first: dict[str, int] = field(default_factory=dict)        # community → first_responsible
    direct: dict[str, list[int]] = field(default_factory=dict)  # community → [secretary, director, police]
    sunk: dict[str, list[int]] = field(default_factory=dict)
    maintainer: dict[str, int] = field(default_factory=dict)
    leader: dict[str, int] = field(default_factory=dict)       # block → grid leader
    names: dict[int, str] = field(default_factory=dict)


def _make_staff(geo: DemoGeometry, rng: random.Random, id0: int) -> _Staff:
    s = _Staff()
    used: set[str] = set()
    phones = rng.sample(range(10000), 400)

    def person(unit: str) -> int:
        while True:
            name = rng.choice(T.SURNAMES) + rng.choice(T.GIVEN)
            if name not in used:
                used.add(name)
                break
        oid = id0 + len(s.officials) + 1
        s.officials.append((oid, name, f"1380371{phones[len(s.officials)]:04d}", unit + UNIT_SUFFIX, True))
        s.names[oid] = name
        return oid

    def assign(oid: int, grid: str, role: str, title: str, rank: int = 0) -> None:
        s.assignments.append((oid, grid, role, title, rank))

    street = geo.street.code
    for rank, (title, unit) in enumerate([("街道党委书记", "三官庙街道党工委"), ("街道办事处主任", "三官庙街道办事处")]):
        oid = person(unit)
        s.street_leaders.append(oid)
        assign(oid, street, "first_responsible", title, rank)
    for rank in range(3):
        oid = person("三官庙街道网格化管理中心")
        s.operators.append(oid)
        assign(oid, street, "operator", "网格化管理中心操作员", rank)
    for c in geo.communities:
        village = c.name.endswith("村")
        committee = f"{c.name}{'村委会' if village else '居委会'}"
        oid = person("三官庙街道办事处")
        s.first[c.code] = oid
        assign(oid, c.code, "first_responsible", "街道科级分包领导")
        direct = [(f"{'村' if village else '社区'}党支部书记", f"{c.name}党支部"),
                  ("村委主任" if village else "居委会主任", committee),
                  ("警务室首席民警", "郑州市公安局中原分局三官庙派出所")]
        s.direct[c.code] = []
        for rank, (title, unit) in enumerate(direct):
            oid = person(unit)
            s.direct[c.code].append(oid)
            assign(oid, c.code, "direct_responsible", title, rank)
        s.sunk[c.code] = []
        sunk = [("村两委成员" if village else "社区两委成员", committee), ("街道分包干部", "三官庙街道办事处")]
        if rng.random() < 0.5:
            sunk.append(sunk[0])
        for rank, (title, unit) in enumerate(sunk):
            oid = person(unit)
            s.sunk[c.code].append(oid)
            assign(oid, c.code, "sunk_member", title, rank)
        oid = person(committee)
        s.maintainer[c.code] = oid
        assign(oid, c.code, "platform_maintainer", "二级网格信息平台维护员")
    for b in geo.blocks:
        oid = person("三官庙街道办事处")
        s.leader[b.code] = oid
        assign(oid, b.code, "grid_leader", "网格长")
    return s


# -- locations ------------------------------------------------------------------------------------
def _sample_points(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, hotspot index or -1) in the metric frame, all inside the street."""
    outline = shapely.Polygon(STREET_OUTLINE)
    weights = np.array([h[4] for h in HOTSPOTS] + [BACKGROUND_SHARE])
    comp = rng.choice(len(weights), size=n, p=weights / weights.sum())
    x = np.empty(n)
    y = np.empty(n)
    todo = np.arange(n)
    minx, miny, maxx, maxy = outline.bounds
    centres = np.array([h[2] for h in HOTSPOTS] + [(0, 0)], dtype=float)
    sig = np.array([h[3] for h in HOTSPOTS] + [0], dtype=float)
    while todo.size:
        c = comp[todo]
        bg = c == len(HOTSPOTS)
        gx = centres[c, 0] + rng.normal(0, 1, todo.size) * sig[c]
        gy = centres[c, 1] + rng.normal(0, 1, todo.size) * sig[c]
        ux = rng.uniform(minx, maxx, todo.size)
        uy = rng.uniform(miny, maxy, todo.size)
        x[todo] = np.where(bg, ux, gx)
        y[todo] = np.where(bg, uy, gy)
        todo = todo[~shapely.contains_xy(outline, x[todo], y[todo])]
    comp = np.where(comp == len(HOTSPOTS), -1, comp)
    return x, y, comp


def _day_weights(days: list[dt.date], domain: str) -> np.ndarray:
    peak, amp = T.SEASON[domain]
    doy = np.array([d.timetuple().tm_yday for d in days], dtype=float)
    wd = np.array([d.weekday() for d in days])
    w = 1 + amp * np.cos(2 * math.pi * (doy - peak) / 365.25)
    w *= np.select([wd == 0, wd < 5, wd == 5], [1.15, 1.05, 0.75], 0.7)
    return w / w.sum()


HOUR_WORK = np.array([0, 0, 0, 0, 0, 0, 0.2, 0.6, 1.6, 2.2, 2.2, 1.6, 0.5, 0.5, 1.6, 2.0, 1.9, 1.3,
                      0.5, 0.3, 0.2, 0.1, 0, 0])
HOUR_PUBLIC = np.array([0.1, 0.05, 0.05, 0.05, 0.05, 0.1, 0.3, 0.8, 1.5, 1.8, 1.8, 1.4, 0.9, 0.9, 1.3,
                        1.5, 1.5, 1.3, 1.1, 1.2, 1.2, 0.9, 0.5, 0.2])
SOURCES = ("patrol", "visit", "resident", "hotline", "higher_level")
SOURCE_P = {"problem": [.42, .13, .20, .17, .08], "sentiment": [.05, .35, .30, .25, .05]}


# -- the loader -----------------------------------------------------------------------------------
def load_demo(engine: Engine, *, end: dt.date | None = None, seed: int = 20131, progress: bool = True,
              if_empty: bool = False, weekly_notices: bool = False) -> DemoSummary:
    """Load the demo dataset in one transaction; raises DemoError if grids exist (unless if_empty).

    ``weekly_notices``: also write the last complete week's weekly notices to the outbox
    (:func:`add_weekly_notices`)."""
    t0 = time.perf_counter()
    if end is None:  # today, or yesterday before the records' cut-off time: never a future timestamp
        now = dt.datetime.now(DEMO_TZ)
        end = now.date() if now.time() >= AS_OF_TIME else now.date() - dt.timedelta(days=1)
    bar = Steps(False, 0)
    try:
        with engine.begin() as conn:
            rls.apply(conn, Scope.everything())   # the loader works on every grid (row-level security)
            conn.execute(text("SELECT pg_advisory_xact_lock(20131005)"))
            existing = dict(conn.execute(text(
                "SELECT level, count(*) FROM grid GROUP BY level")).all())
            if existing:
                if if_empty:
                    return DemoSummary(False, seed, end, grids={int(k): int(v) for k, v in existing.items()})
                raise DemoError("数据库中已有网格，拒绝加载演示数据（可用 --if-empty 跳过）/ the database "
                                "already holds grids; refusing to load the demo dataset (use --if-empty to skip)")
            domains = {r.code: r for r in conn.execute(text(
                "SELECT code, sign_hours, handle_days, sentiment_handle_days FROM domain")).all()}
            missing = [c for c in T.DOMAIN_CODES if c not in domains]
            if missing:
                raise DemoError(f"缺少重点领域：{', '.join(missing)} / missing domains: {', '.join(missing)}")
            ids = {t: conn.execute(text(f"SELECT coalesce(max(id), 0) FROM {t}")).scalar_one()
                   for t in ("official", "grid_assignment", "grid", "issue", "issue_event",
                             "patrol_diary", "activity")}
            bar = Steps(progress, 8, "演示数据 demo data")
            bar.step("生成网格 geometry")
            geo = build_geometry()
            gen = _Generator(geo, domains, end, seed, ids)
            bar.step("生成人员 officials")
            gen.staff = _make_staff(geo, gen.rnd, ids["official"])
            bar.step("生成问题与社情 issues")
            gen.make_issues()
            bar.step("生成流程事件 events")
            gen.make_events()
            bar.step("生成民情日记与活动 diaries, activities")
            gen.make_diaries()
            gen.make_activities()
            bar.step("写入数据库 writing")
            gen.write(conn, bar)
            if weekly_notices:
                with Session(bind=conn, join_transaction_mode="create_savepoint") as session:
                    add_weekly_notices(session, end)
                    session.commit()   # the savepoint; the load's transaction commits below
            bar.step("统计 summary")
            summary = _summarise(conn, seed, end, gen.as_of)
            bar.step("完成 done")
    finally:
        bar.close()
    summary.seconds = time.perf_counter() - t0
    return summary


#: the gateway's delay between writing a notice to the outbox and sending it (demo: all sent)
NOTICE_SEND_DELAY = dt.timedelta(minutes=2)


def last_complete_week(end: dt.date) -> dt.date:
    """Monday of the last complete week before ``end`` (records stop on ``end`` at AS_OF_TIME, so the
    week holding ``end`` is never complete, not even on a Sunday)."""
    return notices.week_bounds(end)[0] - dt.timedelta(days=7)


def add_weekly_notices(session: Session, end: dt.date) -> list[int]:
    """The weekly notices (周通报) for the last complete week (Monday–Sunday) before ``end``, through
    geodata.workflow.notices and its default outbox delivery, as the demo's operator at the records' cut-off
    (``end`` at AS_OF_TIME, so counts agree with the records). Created then and marked sent two
    minutes later: that week is over, so its SMS has gone out. Deterministic for the same records
    and ``end``. Returns the outbox ids written (none if that week was already sent)."""
    as_of = dt.datetime.combine(end, AS_OF_TIME, tzinfo=DEMO_TZ)
    week_of = last_complete_week(end)
    operator = session.execute(select(GridAssignment.official_id).where(GridAssignment.role == "operator")
                               .order_by(GridAssignment.official_id).limit(1)).scalar()
    if operator is None:
        return []
    actor = actor_for(session, operator, grants=(Grant("operator"),), as_of=as_of)   # the centre's operator
    run = notices.send_weekly_notices(session, actor, week_of=week_of, now=as_of, tz=DEMO_TZ)
    ids = [n["outbox_id"] for n in run["notices"] if n["delivered"]]
    if ids:
        session.execute(update(Outbox).where(Outbox.id.in_(ids))
                        .values(created_at=as_of, sent_at=as_of + NOTICE_SEND_DELAY))
    return ids


def _summarise(conn, seed: int, end: dt.date, as_of: dt.datetime) -> DemoSummary:
    q = lambda sql: conn.execute(text(sql)).scalar_one()
    grids = dict(conn.execute(text("SELECT level, count(*) FROM grid WHERE valid_to IS NULL GROUP BY level")).all())
    closed = "status IN ('closed', 'evaluated')"
    return DemoSummary(
        True, seed, end, as_of, {int(k): int(v) for k, v in grids.items()},
        officials=q("SELECT count(*) FROM official"), assignments=q("SELECT count(*) FROM grid_assignment"),
        problems=q("SELECT count(*) FROM issue WHERE kind = 'problem'"),
        problems_closed=q(f"SELECT count(*) FROM issue WHERE kind = 'problem' AND {closed}"),
        sentiments=q("SELECT count(*) FROM issue WHERE kind = 'sentiment'"),
        sentiments_closed=q(f"SELECT count(*) FROM issue WHERE kind = 'sentiment' AND {closed}"),
        events=q("SELECT count(*) FROM issue_event"), diaries=q("SELECT count(*) FROM patrol_diary"),
        activities=q("SELECT count(*) FROM activity"), notices=q("SELECT count(*) FROM outbox"))


#: Open issues at the end of the year: (kind, domain, source, age in hours, event offsets in hours
#: after the report, actions after 'report'). Three are overdue at the end (sign or handling).
OPEN_SPECS = [
    ("problem", "city_order", "hotline", 0.7, [], []),
    ("problem", "public_security", "patrol", 26, [0.6], ["assign"]),
    ("problem", "sanitation", "patrol", 86, [1.0, 1.6, 2.0], ["assign", "sign", "handle"]),
    ("problem", "livelihood", "resident", 53, [0.8, 1.5, 2.0, 40], ["assign", "sign", "handle", "feedback"]),
    ("sentiment", "disputes", "visit", 20, [1.5, 3.0], ["assign", "sign"]),
    ("sentiment", "safety", "resident", 156, [0.7, 2.0, 3.0, 80, 100],
     ["assign", "sign", "handle", "feedback", "rework"]),
    ("sentiment", "livelihood", "visit", 60, [1, 2, 3, 30, 50], ["assign", "sign", "handle", "feedback", "verify"]),
    ("sentiment", "city_order", "hotline", 3, [2.5], ["assign"]),
    ("sentiment", "illegal_building", "hotline", 96, [2, 3, 4, 24], ["assign", "sign", "handle", "extend"]),
]


class _Generator:
    def __init__(self, geo: DemoGeometry, domains: dict, end: dt.date, seed: int, ids: dict[str, int]):
        self.geo, self.domains, self.end, self.seed, self.ids = geo, domains, end, seed, ids
        self.rng = np.random.default_rng(seed)
        self.rnd = random.Random(seed)
        self.start = end - dt.timedelta(days=364)
        self.valid_from = _local(self.start)
        self.as_of = _local(end, AS_OF_TIME)
        self.staff: _Staff
        self.block_tree = shapely.STRtree([b.geom for b in geo.blocks])
        self.community = {c.code: c for c in geo.communities}
        self.hot_community = {b.hotspot: b.parent_code for b in geo.blocks if b.hotspot is not None}
        self.place = {}
        for b in geo.blocks:
            comm = self.community[b.parent_code]
            stem = b.name.removeprefix(comm.name).removesuffix("网格")
            self.place[b.code] = stem if not stem[0].isdigit() else f"{comm.name}{stem}"
        self.issues: list[dict] = []
        self.events: list[tuple] = []
        self.diaries: list[tuple] = []
        self.activities: list[tuple] = []

    # issues ------------------------------------------------------------------------------------
    def make_issues(self) -> None:
        rng = self.rng
        n_closed = {"problem": N_PROBLEMS - N_PROBLEMS_OPEN, "sentiment": N_SENTIMENT - N_SENTIMENT_OPEN}
        days = [self.start + dt.timedelta(days=i) for i in range(364)]  # closed ones: up to end - 1
        day_w = {d: _day_weights(days, d) for d in T.DOMAIN_CODES}
        kinds = ["problem"] * n_closed["problem"] + ["sentiment"] * n_closed["sentiment"]
        kinds += [s[0] for s in OPEN_SPECS]
        n = len(kinds)
        x, y, comp = _sample_points(n, rng)
        pts = to_lonlat(shapely.points(x, y))
        pairs = self.block_tree.query(pts, predicate="intersects")
        block_idx = np.full(n, 10**6)
        np.minimum.at(block_idx, pairs[0], pairs[1])
        if (block_idx == 10**6).any():
            raise RuntimeError("demo: a point lies in no block")
        u = rng.random(n)
        open_start = n - len(OPEN_SPECS)
        for i, kind in enumerate(kinds):
            htype = HOTSPOTS[comp[i]][1] if comp[i] >= 0 else "background"
            mix = np.array(T.DOMAIN_MIX[htype])
            if kind == "sentiment":
                mix = 0.5 * mix + 0.5 * np.array(T.SENTIMENT_MIX)
            mix = np.cumsum(mix / mix.sum())
            domain = T.DOMAIN_CODES[int(np.searchsorted(mix, u[i], side="right"))]
            block = self.geo.blocks[int(block_idx[i])]
            rec = {"kind": kind, "domain": domain, "point": pts[i], "block": block.code,
                   "community": block.parent_code, "hotspot": int(comp[i])}
            if i >= open_start:
                spec = OPEN_SPECS[i - open_start]
                rec.update(domain=spec[1], source=spec[2], open_spec=spec,
                           reported_at=self.as_of - dt.timedelta(hours=spec[3] + float(rng.uniform(0, 0.2))))
            else:
                day = days[int(rng.choice(364, p=day_w[domain]))]
                source = SOURCES[int(rng.choice(5, p=SOURCE_P[kind]))]
                hours = HOUR_WORK if source in ("patrol", "visit", "higher_level") else HOUR_PUBLIC
                hour = int(rng.choice(24, p=hours / hours.sum()))
                secs = int(rng.integers(0, 3600))
                rec.update(source=source, reported_at=_local(day, dt.time(hour)) + dt.timedelta(seconds=secs))
            self.issues.append(rec)
        self.issues.sort(key=lambda r: (r["reported_at"], r["kind"]))
        seq: dict[tuple[str, int], int] = {}
        for i, rec in enumerate(self.issues):
            rec["id"] = self.ids["issue"] + i + 1
            year = rec["reported_at"].astimezone(DEMO_TZ).year
            key = (rec["kind"], year)
            seq[key] = seq.get(key, 0) + 1
            rec["number"] = f"{'WT' if rec['kind'] == 'problem' else 'SQ'}{year}{seq[key]:06d}"
            self._texts(rec)

    def _texts(self, rec: dict) -> None:
        r = self.rnd
        # a hotspot's name only for points in the hotspot's own community (its spread crosses borders)
        named = rec["hotspot"] >= 0 and self.hot_community.get(rec["hotspot"]) == rec["community"]
        place = HOTSPOTS[rec["hotspot"]][0] if named and r.random() < 0.7 else self.place[rec["block"]]
        pool = (T.PROBLEM_TITLES if rec["kind"] == "problem" else T.SENTIMENT_TITLES)[rec["domain"]]
        rec["title"] = r.choice(pool).format(p=place)
        rec["description"] = (f"{T.SOURCE_LEAD[rec['source']]}：{rec['title']}。"
                              f"{r.choice(T.DETAILS[rec['domain']])}")
        comm = self.community[rec["community"]]
        road = comm.name.removesuffix("社区").removesuffix("村")
        road = road if road.endswith("路") else f"{road}{'街' if comm.name.endswith('社区') else '路'}"
        rec["address"] = f"郑州市中原区{road}{r.randint(1, 199)}号（{self.place[rec['block']]}）"
        rec["reporter_name"] = rec["reporter_phone"] = None
        if rec["source"] in ("resident", "hotline") and r.random() < 0.7:
            rec["reporter_name"] = r.choice(T.SURNAMES) + r.choice(["先生", "女士", "阿姨", "大爷"])
            rec["reporter_phone"] = f"1390371{r.randrange(10000):04d}"

    # events ------------------------------------------------------------------------------------
    def _policy(self, rec: dict) -> DeadlinePolicy:
        d = self.domains[rec["domain"]]
        days = d.handle_days if rec["kind"] == "problem" else d.sentiment_handle_days
        return DeadlinePolicy(d.sign_hours, days)

    def make_events(self) -> None:
        eid = self.ids["issue_event"]
        for rec in self.issues:
            plan = self._open_plan(rec) if "open_spec" in rec else self._closed_plan(rec)
            status = None
            rows = []
            for at, action, actor, role, note, data in plan:
                to = wf.next_status(status, action)
                eid += 1
                rows.append((eid, rec["id"], action, status, to, actor, role, at, note,
                             json.dumps(data, ensure_ascii=False)))
                status = to
            rec["status"] = status
            rec["updated_at"] = rows[-1][7]
            self.events.extend(rows)

    def _actors(self, rec: dict) -> dict:
        s, r = self.staff, self.rnd
        comm, block = rec["community"], rec["block"]
        central = rec["source"] in ("hotline", "higher_level")
        dispatcher = ((s.operators[rec["id"] % len(s.operators)], "operator") if central
                      else (s.maintainer[comm], "platform_maintainer"))
        src = rec["source"]
        if src == "patrol":
            reporter = (s.leader[block], "grid_leader")
        elif src == "visit":
            reporter = (s.leader[block], "grid_leader") if r.random() < 0.5 else (r.choice(s.sunk[comm]), "sunk_member")
        elif src == "resident":
            reporter = (None, "resident")
        else:
            reporter = (s.operators[(rec["id"] + 1) % len(s.operators)], "operator")
        assignee = s.leader[block]
        x = r.random()
        if rec["domain"] == "public_security" and x < 0.2:
            assignee = s.direct[comm][2]
        elif rec["domain"] == "disputes" and x < 0.15:
            assignee = s.direct[comm][0]
        elif x < 0.05:
            assignee = r.choice(s.sunk[comm])
        rec["leader_in_charge_id"] = s.first[comm]
        rec["responsible_id"] = s.direct[comm][0]
        rec["grid_leader_id"] = s.leader[block]
        return {"dispatcher": dispatcher, "reporter": reporter, "assignee": assignee}

    def _assign_time(self, reported: dt.datetime) -> dt.datetime:
        r = self.rnd
        local = reported.astimezone(DEMO_TZ)
        if local.hour < 8 or local.hour >= 21:
            day = local.date() if local.hour < 8 else local.date() + dt.timedelta(days=1)
            return _local(day, dt.time(8)) + dt.timedelta(minutes=r.uniform(5, 90))
        return reported + dt.timedelta(minutes=min(r.lognormvariate(math.log(35), 0.7), 600))

    def _closed_plan(self, rec: dict) -> list[tuple]:
        r = self.rnd
        a = self._actors(rec)
        policy = self._policy(rec)
        rep = rec["reported_at"]
        reassign = r.random() < 0.02
        rework = r.random() < 0.05
        extend = r.random() < 0.015
        late = r.random() < 0.075
        # times, relative to each other; deadlines follow from the assignment time
        t_assign = self._assign_time(rep)
        t_reassign = t_assign + dt.timedelta(minutes=r.uniform(10, 100)) if reassign else None
        base = t_reassign or t_assign
        sign_late = r.random() < 0.03
        t_sign = base + dt.timedelta(hours=policy.sign_hours * (r.uniform(1.1, 2.5) if sign_late else r.uniform(0.05, 0.9)))
        t_handle = t_sign + dt.timedelta(minutes=r.uniform(5, 90))
        _, due0 = wf.deadlines(t_assign, policy, DEMO_TZ)
        ext_days = r.choice([3, 5, 7]) if extend else 0
        due = due0 + dt.timedelta(days=ext_days)
        if late:
            t_close = max(due, t_handle) + dt.timedelta(hours=max(0.2, r.lognormvariate(math.log(16), 0.8)))
        else:
            frac = min(0.95, max(0.04, r.betavariate(1.5, 3.5)))
            t_close = t_handle + (due - t_handle) * frac
            if t_close - t_handle < dt.timedelta(minutes=40):
                t_close = t_handle + dt.timedelta(minutes=40)
        middle = ["feedback"] + (["rework", "feedback"] if rework else []) + ["verify"]
        fr = sorted(r.uniform(0.05, 0.97) for _ in middle)
        t_ext = None
        if extend:
            t_ext = t_handle + (min(due0, t_close) - t_handle) * r.uniform(0.05, 0.3)
            lo = t_ext
        else:
            lo = t_handle
        t_middle = [lo + (t_close - lo) * f for f in fr]
        satisfaction = None
        t_eval = None
        if r.random() < 0.6:
            t_eval = t_close + dt.timedelta(hours=r.uniform(1, 72))
            w = [2, 3, 10, 30, 55] if not (late or rework) else [6, 10, 24, 32, 28]
            satisfaction = r.choices([1, 2, 3, 4, 5], weights=w)[0]
        times = [rep, t_assign] + ([t_reassign] if reassign else []) + [t_sign, t_handle] + \
                ([t_ext] if extend else []) + t_middle + [t_close] + ([t_eval] if t_eval else [])
        # the office works by day: later steps fall between 08:00 and 20:00 on their own day (so a
        # case closed on or before its due day stays on time, and a late one stays late)
        k0 = 4 + int(reassign)
        for k in range(k0, len(times)):
            times[k] = max(_office_hours(times[k]), times[k - 1] + dt.timedelta(minutes=1))
        limit = self.as_of - dt.timedelta(minutes=10)
        if t_eval and t_eval > limit and t_close < limit - dt.timedelta(minutes=30):
            times.pop()
            t_eval = satisfaction = None
        if times[-1] > limit:  # recent report: the whole case ran faster
            k = (limit - rep) / (times[-1] - rep)
            times = [rep + (t - rep) * k for t in times]
        times = _strictly_increasing([_whole_seconds(t) for t in times])
        it = iter(times)
        t_rep, t_assign = next(it), next(it)
        t_reassign = next(it) if reassign else None
        t_sign, t_handle = next(it), next(it)
        t_ext = next(it) if extend else None
        t_middle = [next(it) for _ in middle]
        t_close = next(it)
        t_eval = next(it) if satisfaction is not None else None

        sign_deadline, due0 = wf.deadlines(t_assign, policy, DEMO_TZ)
        due = due0 + dt.timedelta(days=ext_days)
        # 改派 restarts the sign-for clock from the reassignment; the due date stays (推诿 buys no time)
        current_assign = t_reassign or t_assign
        current_sign_deadline = current_assign + dt.timedelta(hours=policy.sign_hours)
        disp_id, disp_role = a["dispatcher"]
        rep_id, rep_role = a["reporter"]
        first_assignee = a["assignee"]
        final_assignee = first_assignee
        plan = [(t_rep, "report", rep_id, rep_role, T.REPORT_NOTES[rec["source"]], {"source": rec["source"]})]
        if reassign:
            final_assignee = self.staff.leader[rec["block"]]
            if first_assignee == final_assignee:
                first_assignee = self.staff.direct[rec["community"]][0]
        plan.append((t_assign, "assign", disp_id, disp_role,
                     f"交办{self.staff.names[first_assignee]}办理，限{_fmt(due0)}前办结",
                     {"assignee_id": first_assignee, "sign_deadline": sign_deadline.isoformat(),
                      "due_at": due0.isoformat()}))
        if reassign:
            reason = r.choice(T.REASSIGN_REASONS)
            plan.append((t_reassign, "reassign", disp_id, disp_role,
                         f"{reason}，改派{self.staff.names[final_assignee]}办理",
                         {"from_assignee_id": first_assignee, "assignee_id": final_assignee, "reassign_count": 1,
                          "sign_deadline": current_sign_deadline.isoformat(), "reason": reason}))
        plan.append((t_sign, "sign", final_assignee, wf.ASSIGNEE, "已签收",
                     {"late": t_sign > current_sign_deadline}))
        plan.append((t_handle, "handle", final_assignee, wf.ASSIGNEE, r.choice(T.HANDLE_NOTES), {}))
        if extend:
            reason = r.choice(T.EXTEND_REASONS)
            approver = self.staff.first[rec["community"]]
            plan.append((t_ext, "extend", approver, "first_responsible",
                         f"因{reason}申请延期{ext_days}天，经{self.staff.names[approver]}批准",
                         {"reason": reason, "days": ext_days, "requested_by": final_assignee,
                          "approver_id": approver, "old_due": due0.isoformat(), "new_due": due.isoformat()}))
        fb_note = T.FEEDBACK_NOTES[rec["domain"]]
        for t, action in zip(t_middle, middle):
            if action == "feedback":
                plan.append((t, "feedback", final_assignee, wf.ASSIGNEE, fb_note, {}))
            elif action == "rework":
                reason = r.choice(T.REWORK_REASONS)
                plan.append((t, "rework", disp_id, disp_role, f"核查未通过：{reason}，退回返工",
                             {"reason": reason, "rework_count": 1}))
            else:
                plan.append((t, "verify", disp_id, disp_role, "经现场核查，处置到位", {}))
        plan.append((t_close, "close", disp_id, disp_role, "办结", {"overdue": t_close > due}))
        if satisfaction is not None:
            if rec["source"] in ("resident", "hotline"):
                ev = (None, "resident")
            elif r.random() < 0.3:
                ev = (self.staff.first[rec["community"]], "first_responsible")
            else:
                ev = (disp_id, disp_role)
            plan.append((t_eval, "evaluate", ev[0], ev[1], f"回访评价：{'★' * satisfaction}",
                         {"satisfaction": satisfaction}))
        rec.update(assignee_id=final_assignee, assigned_at=current_assign, sign_deadline=current_sign_deadline,
                   signed_at=t_sign, due_at=due, closed_at=t_close, rework_count=int(rework),
                   reassign_count=int(reassign), satisfaction=satisfaction,
                   worksheet=wf.worksheet(current_assign, current_sign_deadline, due))
        return plan

    def _open_plan(self, rec: dict) -> list[tuple]:
        r = self.rnd
        _kind, domain, source, _age, offsets, actions = rec["open_spec"]
        a = self._actors(rec)
        policy = self._policy(rec)
        rep = _whole_seconds(rec["reported_at"])
        rec["reported_at"] = rep
        times = _strictly_increasing([rep] + [_whole_seconds(rep + dt.timedelta(hours=h, minutes=r.uniform(0, 10)))
                                              for h in offsets])
        disp_id, disp_role = a["dispatcher"]
        rep_id, rep_role = a["reporter"]
        assignee = a["assignee"]
        plan = [(times[0], "report", rep_id, rep_role, T.REPORT_NOTES[source], {"source": source})]
        rec.update(assignee_id=None, assigned_at=None, sign_deadline=None, signed_at=None, due_at=None,
                   closed_at=None, rework_count=0, reassign_count=0, satisfaction=None, worksheet=[])
        due = None
        for t, action in zip(times[1:], actions):
            if action == "assign":
                sign_deadline, due = wf.deadlines(t, policy, DEMO_TZ)
                rec.update(assignee_id=assignee, assigned_at=t, sign_deadline=sign_deadline, due_at=due,
                           worksheet=wf.worksheet(t, sign_deadline, due))
                plan.append((t, "assign", disp_id, disp_role,
                             f"交办{self.staff.names[assignee]}办理，限{_fmt(due)}前办结",
                             {"assignee_id": assignee, "sign_deadline": sign_deadline.isoformat(),
                              "due_at": due.isoformat()}))
            elif action == "sign":
                rec["signed_at"] = t
                plan.append((t, "sign", assignee, wf.ASSIGNEE, "已签收", {"late": t > rec["sign_deadline"]}))
            elif action == "handle":
                plan.append((t, "handle", assignee, wf.ASSIGNEE, r.choice(T.HANDLE_NOTES), {}))
            elif action == "feedback":
                plan.append((t, "feedback", assignee, wf.ASSIGNEE, T.FEEDBACK_NOTES[domain], {}))
            elif action == "rework":
                reason = r.choice(T.REWORK_REASONS)
                rec["rework_count"] += 1
                plan.append((t, "rework", disp_id, disp_role, f"核查未通过：{reason}，退回返工",
                             {"reason": reason, "rework_count": rec["rework_count"]}))
            elif action == "verify":
                plan.append((t, "verify", disp_id, disp_role, "经现场核查，处置到位", {}))
            elif action == "extend":
                reason = r.choice(T.EXTEND_REASONS)
                approver = self.staff.first[rec["community"]]
                new_due = due + dt.timedelta(days=7)
                plan.append((t, "extend", approver, "first_responsible",
                             f"因{reason}申请延期7天，经{self.staff.names[approver]}批准",
                             {"reason": reason, "days": 7, "requested_by": assignee, "approver_id": approver,
                              "old_due": due.isoformat(), "new_due": new_due.isoformat()}))
                due = new_due
                rec["due_at"] = due
                rec["worksheet"] = wf.worksheet(rec["assigned_at"], rec["sign_deadline"], due)
        return plan

    # diaries and activities --------------------------------------------------------------------
    def make_diaries(self) -> None:
        rng, r = self.rng, self.rnd
        did = self.ids["patrol_diary"]
        rows: list[list] = []
        tracks_m = []
        owners = []
        pools = {b.code: _interior_points(b.geom_m, rng) for b in self.geo.blocks}
        block_m = {b.code: b.geom_m for b in self.geo.blocks}
        weeks = 52
        for b in self.geo.blocks:
            leader = self.staff.leader[b.code]
            for w in range(weeks):
                week_start = self.start + dt.timedelta(days=7 * w)
                for kind in ("patrol", "patrol", "visit"):
                    day = week_start + dt.timedelta(days=int(rng.integers(0, 5)))
                    started = _local(day, dt.time(int(rng.integers(8, 16)))) + dt.timedelta(minutes=int(rng.integers(0, 60)))
                    ended = started + dt.timedelta(minutes=int(rng.integers(40, 150)))
                    if ended > self.as_of:
                        continue
                    if kind == "patrol":
                        h, sh, f = int(rng.integers(0, 6)), int(rng.integers(3, 16)), int(rng.integers(0, 4))
                        findings = f"巡查{self.place[b.code]}，" + r.choice(
                            ["未发现异常", "提醒商户门前三包", "劝离流动摊贩一处", "检查消防通道畅通", "排查楼道杂物"])
                    else:
                        h, sh, f = int(rng.integers(5, 21)), int(rng.integers(0, 5)), int(rng.integers(0, 3))
                        findings = f"走访居民{h}户，" + r.choice(
                            ["了解独居老人生活情况", "宣传反诈知识", "收集老旧小区改造意见", "发放联系卡", "登记群众诉求"])
                    rows.append([b.code, leader, kind, started, ended, h, sh, f, findings, None])
                    tracks_m.append(_track(pools[b.code], rng))
                    owners.append(b.code)
        for rec in self.issues:
            if rec["source"] != "patrol" or rec["kind"] != "problem":
                continue
            started = rec["reported_at"] - dt.timedelta(minutes=r.uniform(20, 60))
            ended = min(rec["reported_at"] + dt.timedelta(minutes=r.uniform(5, 30)), self.as_of)
            rows.append([rec["block"], self.staff.leader[rec["block"]], "patrol", started, ended,
                         r.randint(0, 4), r.randint(2, 12), r.randint(0, 2), f"发现问题并上报：{rec['title']}", rec["id"]])
            tracks_m.append(_track(pools[rec["block"]], rng))
            owners.append(rec["block"])
        tracks = np.array(tracks_m, dtype=object)
        inside = shapely.within(tracks, np.array([block_m[o] for o in owners], dtype=object))
        for i in np.flatnonzero(~inside):  # a concave block: fall back to a short straight walk
            tracks[i] = _track(pools[owners[i]], rng, 2)
            while not block_m[owners[i]].contains(tracks[i]):
                tracks[i] = _track(pools[owners[i]], rng, 2)
        hexes = _ewkb(to_lonlat(tracks))
        order = sorted(range(len(rows)), key=lambda i: (rows[i][3], rows[i][0]))
        for i in order:
            did += 1
            self.diaries.append((did, *rows[i][:5], hexes[i], *rows[i][5:]))

    def make_activities(self) -> None:
        r = self.rnd
        aid = self.ids["activity"]
        rows = []
        for c in self.geo.communities:
            blocks = [b.code for b in self.geo.blocks_of(c.code)]
            for m in range(12):
                month_start = self.start + dt.timedelta(days=30 * m)
                for cat in ("talk", "visit", "clinic"):
                    for _ in range(r.randint(0, 2) if cat != "visit" else r.randint(1, 2)):
                        kind = r.choice(T.ACTIVITIES[cat])
                        topic = r.choice(T.ACTIVITY_TOPICS)
                        day = month_start + dt.timedelta(days=r.randint(0, 29))
                        held = _local(day, dt.time(r.choice([9, 10, 14, 15, 16]))) + dt.timedelta(minutes=r.choice([0, 30]))
                        if held >= self.as_of:
                            continue
                        grid = c.code if cat == "talk" else r.choice(blocks)
                        official = (self.staff.direct[c.code][0] if cat == "talk"
                                    else self.staff.leader.get(grid, self.staff.first[c.code]))
                        participants = {"talk": r.randint(15, 60), "visit": r.randint(3, 20), "clinic": r.randint(5, 40)}[cat]
                        rows.append([grid, cat, kind, f"{kind}：{topic}", held, participants,
                                     f"{c.name}开展{kind}活动，围绕“{topic}”听取群众意见（合成演示数据）", official])
        rows.sort(key=lambda x: (x[4], x[0]))
        for row in rows:
            aid += 1
            self.activities.append((aid, *row))

    # writing -----------------------------------------------------------------------------------
    def write(self, conn, bar: Steps) -> None:
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            gid = self.ids["grid"]
            grid_rows = []
            for g in self.geo.all:
                gid += 1
                grid_rows.append((gid, g.code, g.level, g.parent_code, g.name, g.name_en, _ewkb(g.geom),
                                  area_m2(g.geom), self.valid_from, None, SYNTHETIC_NOTE))
            _copy(cur, "grid", ["id", "code", "level", "parent_code", "name", "name_en", "geom", "area_m2",
                                "valid_from", "valid_to", "note"], grid_rows)
            _copy(cur, "official", ["id", "name", "unit", "active"],
                  [(oid, name, unit, active) for oid, name, _phone, unit, active in self.staff.officials])
            _copy(cur, "official_contact", ["official_id", "phone"],
                  [(oid, phone) for oid, _name, phone, _unit, _active in self.staff.officials if phone])
            aid = self.ids["grid_assignment"]
            arows = []
            for oid, grid, role, title, rank in self.staff.assignments:
                aid += 1
                arows.append((aid, oid, grid, role, title, rank, self.valid_from, None))
            _copy(cur, "grid_assignment", ["id", "official_id", "grid_code", "role", "title", "rank",
                                           "valid_from", "valid_to"], arows)
            cols = ["id", "number", "kind", "domain_code", "title", "description", "source", "location", "address",
                    "grid_code", "community_code", "leader_in_charge_id", "responsible_id", "grid_leader_id",
                    "assignee_id", "worksheet", "status", "reported_at", "assigned_at", "sign_deadline",
                    "signed_at", "due_at", "closed_at", "rework_count", "reassign_count", "satisfaction",
                    "version", "updated_at", "synthetic"]
            locs = _ewkb(np.array([rec["point"] for rec in self.issues], dtype=object))
            irows = []
            for rec, loc in zip(self.issues, locs):
                irows.append((rec["id"], rec["number"], rec["kind"], rec["domain"], rec["title"], rec["description"],
                              rec["source"], loc, rec["address"], rec["block"], rec["community"],
                              rec["leader_in_charge_id"], rec["responsible_id"], rec["grid_leader_id"],
                              rec["assignee_id"], json.dumps(rec["worksheet"], ensure_ascii=False), rec["status"],
                              rec["reported_at"], rec["assigned_at"], rec["sign_deadline"], rec["signed_at"],
                              rec["due_at"], rec["closed_at"], rec["rework_count"], rec["reassign_count"],
                              rec["satisfaction"], 1, rec["updated_at"], True))
            _copy(cur, "issue", cols, irows)
            _copy(cur, "issue_reporter", ["issue_id", "name", "phone"],
                  [(rec["id"], rec["reporter_name"], rec["reporter_phone"]) for rec in self.issues
                   if rec["reporter_name"] or rec["reporter_phone"]])
            _copy(cur, "issue_event", ["id", "issue_id", "action", "from_status", "to_status", "actor_id",
                                       "actor_role", "at", "note", "data"], self.events)
            _copy(cur, "patrol_diary", ["id", "grid_code", "official_id", "kind", "started_at", "ended_at", "track",
                                        "households", "shops", "firms", "findings", "issue_id"], self.diaries)
            _copy(cur, "activity", ["id", "grid_code", "category", "kind", "title", "held_at", "participants",
                                    "note", "official_id"], self.activities)
            for table in ("grid", "official", "grid_assignment", "issue", "issue_event", "patrol_diary", "activity"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT coalesce(max(id), 1) FROM {table}))")
            cur.execute("ANALYZE grid; ANALYZE issue; ANALYZE issue_event")


def _fmt(t: dt.datetime) -> str:
    return t.astimezone(DEMO_TZ).strftime("%m月%d日%H:%M")


def _office_hours(t: dt.datetime) -> dt.datetime:
    """Map a local day's 24 hours monotonically onto its 08:00–20:00."""
    local = t.astimezone(DEMO_TZ)
    day0 = dt.datetime.combine(local.date(), dt.time(0), tzinfo=DEMO_TZ)
    return (day0 + dt.timedelta(hours=8) + (local - day0) / 2).astimezone(UTC)


def _whole_seconds(t: dt.datetime) -> dt.datetime:
    return t.replace(microsecond=0)


def _strictly_increasing(times: list[dt.datetime]) -> list[dt.datetime]:
    out = [times[0]]
    for t in times[1:]:
        out.append(t if t > out[-1] else out[-1] + dt.timedelta(seconds=1))
    return out


def _interior_points(poly, rng: np.random.Generator, n: int = 40) -> np.ndarray:
    inner = poly.buffer(-8)
    minx, miny, maxx, maxy = inner.bounds
    out = np.empty((0, 2))
    while len(out) < n:
        xy = rng.uniform((minx, miny), (maxx, maxy), size=(4 * n, 2))
        out = np.vstack([out, xy[shapely.contains_xy(inner, xy[:, 0], xy[:, 1])]])
    return out[:n]


def _track(pool: np.ndarray, rng: np.random.Generator, k: int | None = None):
    k = k or int(rng.integers(3, 8))
    idx = rng.choice(len(pool), size=k, replace=False)
    return shapely.LineString(pool[idx])
