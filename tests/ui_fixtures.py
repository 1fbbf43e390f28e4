"""A small, hand-made dataset for map tests: 1 street, 2 communities, 4 blocks, officials, 40 issues.

Layout (lon 113.620–113.640, lat 34.740–34.760):

    +-----------+-----------+
    | 0101 (NW) | 0201 (NE) |
    +-----------+-----------+
    | 0102 (SW) | 0202 (SE) |
    +-----------+-----------+
      comm. 001   comm. 002
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from geoalchemy2 import WKTElement
from shapely.geometry import box
from sqlalchemy.orm import Session

from geodata.geometry import area_m2
from geodata.models import Grid, GridAssignment, Issue, IssueEvent, Official

UTC = dt.UTC
STREET = "41010200100000"
C1, C2 = "41010200100100", "41010200100200"
B11, B12, B21, B22 = "41010200100101", "41010200100102", "41010200100201", "41010200100202"
W, S, E, N = 113.620, 34.740, 113.640, 34.760
MX, MY = 113.630, 34.750
BOXES = {
    STREET: (W, S, E, N), C1: (W, S, MX, N), C2: (MX, S, E, N),
    B11: (W, MY, MX, N), B12: (W, S, MX, MY), B21: (MX, MY, E, N), B22: (MX, S, E, MY),
}
NAMES = {STREET: ("测试街道", "Test Street"), C1: ("东风社区", "Dongfeng Community"),
         C2: ("西华社区", "Xihua Community"), B11: ("东风一网格", "Dongfeng Grid 1"),
         B12: ("东风二网格", "Dongfeng Grid 2"), B21: ("西华一网格", "Xihua Grid 1"),
         B22: ("西华二网格", "Xihua Grid 2")}
DOMAINS = ("safety", "sanitation", "city_order", "disputes", "public_security", "livelihood",
           "illegal_building")
#: Fixed "now" for the small dataset.
NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@dataclass
class Small:
    officials: dict[str, int]      # key -> official id
    issues: list[int]


def _level(code: str) -> int:
    return 1 if code == STREET else (2 if code in (C1, C2) else 3)


def _parent(code: str) -> str | None:
    return None if code == STREET else (STREET if code in (C1, C2) else code[:12] + "00")


def load_small(session: Session, now: dt.datetime = NOW, n_issues: int = 40) -> Small:
    valid_from = now - dt.timedelta(days=800)
    for code, bb in BOXES.items():
        g = box(*bb)
        session.add(Grid(code=code, level=_level(code), parent_code=_parent(code), name=NAMES[code][0],
                         name_en=NAMES[code][1], geom=WKTElement(f"MULTIPOLYGON((({', '.join(f'{x} {y}' for x, y in g.exterior.coords)})))", srid=4326),
                         area_m2=area_m2(g), valid_from=valid_from))
    people = {
        "secretary": ("张书记", "13800000001", STREET, "first_responsible", "街道党委书记"),
        "director": ("李主任", "13800000002", STREET, "first_responsible", "办事处主任"),
        "c1_lead": ("王科长", "13800000011", C1, "first_responsible", "街道科级分包领导"),
        "c1_sec": ("赵书记", "13800000012", C1, "direct_responsible", "社区党支部书记"),
        "c1_dir": ("钱主任", "13800000013", C1, "direct_responsible", "居委会主任"),
        "c1_police": ("孙警官", "13800000014", C1, "direct_responsible", "警务室首席民警"),
        "c1_maint": ("周维护", "13800000015", C1, "platform_maintainer", "二级网格信息平台维护员"),
        "c2_lead": ("吴科长", "13800000021", C2, "first_responsible", "街道科级分包领导"),
        "c2_sec": ("郑书记", "13800000022", C2, "direct_responsible", "社区党支部书记"),
        "b11": ("冯网格长", "13800000101", B11, "grid_leader", "网格长"),
        "b12": ("陈网格长", "13800000102", B12, "grid_leader", "网格长"),
        "b21": ("褚网格长", "13800000201", B21, "grid_leader", "网格长"),
        "b22": ("卫网格长", "13800000202", B22, "grid_leader", "网格长"),
    }
    ids: dict[str, int] = {}
    for key, (name, phone, code, role, title) in people.items():
        o = Official(name=name, phone=phone, unit="测试街道办事处")
        session.add(o)
        session.flush()
        ids[key] = o.id
        session.add(GridAssignment(official_id=o.id, grid_code=code, role=role, title=title,
                                   valid_from=valid_from))
    session.flush()
    issue_ids = []
    blocks = (B11, B12, B21, B22)
    statuses = ("reported", "assigned", "handling", "closed", "evaluated", "closed", "feedback",
                "evaluated")
    for i in range(n_issues):
        block = blocks[i % 4]
        w, s, e, n = BOXES[block]
        x = w + (e - w) * (0.1 + 0.8 * ((i * 37) % 100) / 100)
        y = s + (n - s) * (0.1 + 0.8 * ((i * 53) % 100) / 100)
        status = statuses[i % len(statuses)]
        reported = now - dt.timedelta(days=(i * 7) % 200, hours=i)
        due = reported + dt.timedelta(days=5)
        closed = None
        if status in ("closed", "evaluated"):
            closed = reported + dt.timedelta(days=3 if i % 3 else 8)  # every third closed late
        community = block[:12] + "00"
        iss = Issue(number=f"UI2026{i:06d}", kind="problem" if i % 5 else "sentiment",
                    domain_code=DOMAINS[i % 7], title=f"测试问题{i}", description=f"描述{i}",
                    source="patrol", location=WKTElement(f"POINT({x} {y})", srid=4326),
                    grid_code=block, community_code=community,
                    leader_in_charge_id=ids["c1_lead" if community == C1 else "c2_lead"],
                    responsible_id=ids["c1_sec" if community == C1 else "c2_sec"],
                    grid_leader_id=ids["b" + block[11] + block[13]],
                    status=status, reported_at=reported, due_at=due, closed_at=closed,
                    updated_at=closed or reported)
        session.add(iss)
        session.flush()
        issue_ids.append(iss.id)
        session.add(IssueEvent(issue_id=iss.id, action="report", from_status=None,
                               to_status="reported", actor_id=ids["b" + block[11] + block[13]],
                               actor_role="grid_leader", at=reported, note=f"巡查发现{i}"))
        if status != "reported":
            session.add(IssueEvent(issue_id=iss.id, action="assign", from_status="reported",
                                   to_status="assigned", actor_id=ids["c1_maint"],
                                   actor_role="platform_maintainer",
                                   at=reported + dt.timedelta(hours=1), note="交办"))
    session.flush()
    return Small(officials=ids, issues=issue_ids)
