"""The workflow service on a real PostGIS: the full state × action × role matrix (each refusal writes
nothing), deadlines and overdue across days and time zones, idempotency, concurrency, scope."""
from __future__ import annotations

import datetime as dt
import itertools
import threading
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from geodata.access.scope import Scope
from geodata.db import session_scope
from geodata.errors import ConflictError, DomainError, ForbiddenError, NotFoundError, TransitionError
from geodata.models import Domain, Issue
from geodata.workflow import rules as wf
from geodata.workflow.diary import diary_to_report, list_diary, record_diary
from geodata.workflow.filters import IssueFilter
from geodata.workflow.idempotency import idempotent, request_hash
from geodata.workflow.identity import Actor
from geodata.workflow.queries import get_issue, issue_timeline, query_issues, responsible_for_point
from geodata.workflow.service import apply_transition, evaluate, extend, reassign, report_issue
from tests.conftest import SUFFIX
from tests.world import (
    B11,
    B12,
    B21,
    B22,
    C1,
    C2,
    STREET,
    TZ,
    counts,
    rollback_session,
    savepoint,
    scratch_database,
    seed,
    snapshot,
)

UTC = dt.UTC
SH = TZ
T0 = dt.datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Beijing


@pytest.fixture(scope="module")
def msession(empty_engine):
    """One seeded world for the module; each test runs inside a savepoint that is rolled back."""
    for s in rollback_session(empty_engine):
        yield s, seed(s)


@pytest.fixture
def ms(msession):
    s, world = msession
    with savepoint(s):
        yield s, world


def report(s, w, who=None, *, lon=113.625, lat=34.755, now=T0, **kw):
    args = {"kind": "problem", "domain": "sanitation", "title": "垃圾堆放", "description": "楼下垃圾未清运"}
    args.update(kw)
    if who is None and "source" not in args:
        args["source"] = "resident"
    return report_issue(s, w.actor(s, who), lon=lon, lat=lat, now=now, **args, tz=TZ)


def put_in_state(s, w, status, *, now=T0, assignee="handler"):
    """An issue in block B11 forced into ``status`` (assigned ones to the unassigned 'handler')."""
    issue_id = report(s, w, "b11_leader", source="patrol")["id"]
    i = s.get(Issue, issue_id)
    i.status = status
    if status != wf.REPORTED:
        i.assignee_id = w.ids[assignee]
        i.assigned_at = now
        sign, due = wf.deadlines(now, wf.DeadlinePolicy(2, 2), TZ)
        i.sign_deadline, i.due_at = sign, due
    if status in wf.CLOSED_STATUSES:
        i.closed_at = now + dt.timedelta(days=1)
    s.flush()
    return issue_id


ROLE_ACTORS = {"resident": None, "grid_leader": "b11_leader", "sunk_member": "c1_member",
               "direct_responsible": "c1_secretary", "first_responsible": "c1_leader",
               "platform_maintainer": "c1_maintainer", "operator": "operator", "assignee": "handler"}
NON_REPORT = [a for a in wf.ACTIONS if a != "report"]


def _payload(s, w, issue_id, action):
    i = s.get(Issue, issue_id)
    payload = {"assignee_id": w.ids["handler2"], "satisfaction": 4}
    if i.due_at is not None:
        payload["new_due"] = i.due_at + dt.timedelta(days=3)
    return payload


@pytest.mark.parametrize("status,action,role", list(itertools.product(wf.STATUSES, NON_REPORT, wf.ROLES)))
def test_matrix_through_the_service(ms, status, action, role):
    s, w = ms
    issue_id = put_in_state(s, w, status)
    actor = w.actor(s, ROLE_ACTORS[role])
    before = snapshot(s, issue_id)
    sources, target = wf.TRANSITIONS[action]
    # the role table allows residents to evaluate, but a stranger's account grants no capability for
    # it (issue 10: the reporter's own token comes later; the centre evaluates on their behalf)
    stranger_evaluates = role == "resident" and action == "evaluate"
    legal = status in sources and role in wf.ALLOWED_ROLES[action] and not stranger_evaluates
    now = T0 + dt.timedelta(hours=1)
    if legal:
        out = apply_transition(s, issue_id, action, actor, expected_version=before[1], note="理由说明",
                               payload=_payload(s, w, issue_id, action), now=now, tz=TZ)
        assert out["status"] == (status if target is None else target)
        assert out["version"] == before[1] + 1
        after = snapshot(s, issue_id)
        assert after[-1] == before[-1] + 1  # exactly one event
        ev = s.execute(text("SELECT action, from_status, to_status, actor_role, actor_id FROM issue_event "
                            "WHERE issue_id = :i ORDER BY id DESC LIMIT 1"), {"i": issue_id}).one()
        assert tuple(ev[:4]) == (action, status, out["status"], role)
        assert ev[4] == (w.ids[ROLE_ACTORS[role]] if ROLE_ACTORS[role] else None)
    else:
        with pytest.raises(TransitionError) as err:
            apply_transition(s, issue_id, action, actor, expected_version=before[1], note="理由说明",
                             payload=_payload(s, w, issue_id, action), now=now, tz=TZ)
        assert err.value.code == ("illegal_transition" if status not in sources else
                                  "forbidden_capability" if stranger_evaluates else "forbidden")
        assert err.value.message_zh and err.value.message_en
        assert snapshot(s, issue_id) == before  # nothing written


@pytest.mark.parametrize("role", wf.ROLES)
def test_report_by_every_role(ms, role):
    s, w = ms
    who = ROLE_ACTORS[role]
    before = counts(s)
    out = report(s, w, who, source="resident" if who is None else "patrol")
    assert out["status"] == wf.REPORTED and out["grid"]["code"] == B11
    assert counts(s) == (before[0] + 1, before[1] + 1)
    tl = issue_timeline(s, out["id"], Scope.everything(), tz=TZ)
    assert [e["action"] for e in tl] == ["report"] and tl[0]["to_status"] == wf.REPORTED


def test_happy_path_with_rework_report_to_evaluation(ms):
    s, w = ms
    out = report(s, w, "b11_leader", source="patrol")
    iid, v = out["id"], out["version"]
    assert out["six_ones"]["grid_leader"]["id"] == w.ids["b11_leader"]
    assert out["six_ones"]["responsible"]["id"] == w.ids["c1_secretary"]
    assert out["six_ones"]["leader_in_charge"]["id"] == w.ids["c1_leader"]
    steps = [("assign", "c1_maintainer", {}), ("sign", "c1_secretary", {}), ("handle", "c1_secretary", {}),
             ("feedback", "c1_secretary", {}), ("rework", "operator", {}), ("feedback", "c1_secretary", {}),
             ("verify", "operator", {}), ("close", "operator", {}), ("evaluate", "operator", {"satisfaction": 5})]
    now = T0
    for action, who, payload in steps:
        now += dt.timedelta(hours=3)
        out = apply_transition(s, iid, action, w.actor(s, who), expected_version=v, note="已处理完毕",
                               payload=payload, now=now, tz=TZ)
        v = out["version"]
    assert out["status"] == wf.EVALUATED and out["satisfaction"] == 5 and out["rework_count"] == 1
    assert out["six_ones"]["assignee"]["id"] == w.ids["c1_secretary"]  # default assignee: 直接责任人
    assert out["actions"] == []
    tl = get_issue(s, out["number"], Scope.everything(), tz=TZ)["timeline"]
    assert [e["action"] for e in tl] == ["report"] + [a for a, _, _ in steps]
    assert [e["at"] for e in tl] == sorted(e["at"] for e in tl)
    assert tl[-1]["actor"]["name"] == "中心操作员" and tl[-1]["actor_role"] == "operator"   # on the resident's behalf


def test_stale_version_is_refused(ms):
    s, w = ms
    iid = put_in_state(s, w, wf.ASSIGNED)
    v = s.get(Issue, iid).version
    before = snapshot(s, iid)
    with pytest.raises(ConflictError) as err:
        apply_transition(s, iid, "sign", w.actor(s, "handler"), expected_version=v - 1, now=T0, tz=TZ)
    assert err.value.code == "changed_by_someone_else" and isinstance(err.value, ConflictError)
    assert "他人修改" in err.value.message_zh and "someone else" in err.value.message_en
    assert snapshot(s, iid) == before


def test_required_payloads_refused_without_writing(ms):
    s, w = ms
    cases = [
        (wf.HANDLING, "feedback", "handler", "", {}, "note"),
        (wf.FEEDBACK, "rework", "operator", "", {}, "note"),
        (wf.ASSIGNED, "reassign", "operator", "推诿", {}, "assignee_id"),
        (wf.ASSIGNED, "reassign", "operator", "", {"assignee_id": "handler2"}, "note"),
        (wf.ASSIGNED, "reassign", "operator", "x", {"assignee_id": "handler"}, "assignee_id"),
        (wf.ASSIGNED, "reassign", "operator", "x", {"assignee_id": 999999}, "assignee_id"),
        (wf.CLOSED, "evaluate", "operator", "", {"satisfaction": 6}, "satisfaction"),
        (wf.CLOSED, "evaluate", "operator", "", {"satisfaction": True}, "satisfaction"),
        (wf.CLOSED, "evaluate", "operator", "", {}, "satisfaction"),
        (wf.HANDLING, "extend", "operator", "", {"new_due": dt.date(2027, 1, 1)}, "note"),
        (wf.HANDLING, "extend", "operator", "材料未到", {}, "new_due"),
        (wf.HANDLING, "extend", "operator", "材料未到", {"new_due": dt.date(2026, 11, 1)}, "new_due"),
        (wf.REPORTED, "assign", "operator", "", {"assignee_id": 0}, "assignee_id"),
    ]
    for status, action, who, note, payload, fld in cases:
        iid = put_in_state(s, w, status)
        payload = {k: (w.ids[v] if k == "assignee_id" and isinstance(v, str) else v) for k, v in payload.items()}
        before = snapshot(s, iid)
        with pytest.raises(DomainError) as err:
            apply_transition(s, iid, action, w.actor(s, who), note=note, payload=payload, now=T0, tz=TZ)
        assert err.value.field == fld, (action, err.value)
        assert snapshot(s, iid) == before


def test_unknown_issue_action_and_report_via_transition(ms):
    s, w = ms
    with pytest.raises(NotFoundError):
        apply_transition(s, 987654321, "sign", w.actor(s, "operator"), now=T0, tz=TZ)
    iid = put_in_state(s, w, wf.REPORTED)
    with pytest.raises(TransitionError) as err:
        apply_transition(s, iid, "explode", w.actor(s, "operator"), now=T0, tz=TZ)
    assert err.value.code == "unknown_action"
    with pytest.raises(DomainError):
        apply_transition(s, iid, "report", w.actor(s, "operator"), now=T0, tz=TZ)


def test_roles_are_relative_to_the_issue_grid(ms):
    """A maintainer of the east community cannot dispatch a case in the west community."""
    s, w = ms
    iid = put_in_state(s, w, wf.REPORTED)
    with pytest.raises(TransitionError) as err:
        apply_transition(s, iid, "assign", w.actor(s, "c2_maintainer"), now=T0, tz=TZ)
    assert err.value.code == "forbidden"
    apply_transition(s, iid, "assign", w.actor(s, "c1_maintainer"), now=T0, tz=TZ)


# -- deadlines, overdue, time zones ---------------------------------------------------------------
def test_deadlines_per_domain_and_kind_across_the_new_year(ms):
    s, w = ms
    late_evening = dt.datetime(2026, 12, 31, 15, 30, tzinfo=UTC)  # 23:30 on 31 Dec in Beijing
    p = report(s, w, "b11_leader", source="patrol", now=late_evening)
    out = apply_transition(s, p["id"], "assign", w.actor(s, "operator"), now=late_evening, tz=TZ)
    # sanitation: sign within 2 h, handle within 2 local days → end of 2 Jan 2027 in Beijing
    assert out["sign_deadline"] == dt.datetime(2027, 1, 1, 1, 30, tzinfo=SH)
    assert out["due_at"] == dt.datetime(2027, 1, 2, 23, 59, 59, tzinfo=SH)
    assert out["due_at"].utcoffset() == dt.timedelta(hours=8)
    ws = out["six_ones"]["worksheet"]
    assert ws[0]["step"] == "sign" and dt.datetime.fromisoformat(ws[0]["due"]) == out["sign_deadline"]
    assert dt.datetime.fromisoformat(ws[-1]["due"]) == out["due_at"]
    assert [dt.datetime.fromisoformat(r["due"]) for r in ws] == sorted(dt.datetime.fromisoformat(r["due"]) for r in ws)
    # sentiment reports in the same domain use the sentiment deadline (5 days)
    p2 = report(s, w, "b11_leader", source="visit", kind="sentiment", now=late_evening)
    out2 = apply_transition(s, p2["id"], "assign", w.actor(s, "operator"), now=late_evening, tz=TZ)
    assert out2["due_at"] == dt.datetime(2027, 1, 5, 23, 59, 59, tzinfo=SH)
    # deadlines are configurable per domain
    s.get(Domain, "sanitation").handle_days = 10
    p3 = report(s, w, "b11_leader", source="patrol", now=late_evening)
    out3 = apply_transition(s, p3["id"], "assign", w.actor(s, "operator"), now=late_evening, tz=TZ)
    assert out3["due_at"] == dt.datetime(2027, 1, 10, 23, 59, 59, tzinfo=SH)


def test_numbers_follow_the_local_year(ms):
    s, w = ms
    a = report(s, w, now=dt.datetime(2026, 12, 31, 15, 59, tzinfo=UTC))  # 23:59 Beijing, 2026
    b = report(s, w, now=dt.datetime(2026, 12, 31, 16, 1, tzinfo=UTC))   # 00:01 Beijing, 2027
    assert a["number"].startswith("WT2026") and b["number"].startswith("WT2027")
    c = report(s, w, now=dt.datetime(2026, 12, 31, 16, 2, tzinfo=UTC))
    assert int(c["number"][6:]) == int(b["number"][6:]) + 1 and len(c["number"]) == 12


def test_overdue_is_derived_from_due_and_now(ms):
    s, w = ms
    assigned = dt.datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    iid = report(s, w, "b11_leader", source="patrol", now=assigned)["id"]
    out = apply_transition(s, iid, "assign", w.actor(s, "operator"), now=assigned, tz=TZ)
    due = out["due_at"]
    just_before, just_after = due - dt.timedelta(seconds=1), due + dt.timedelta(seconds=1)
    assert not get_issue(s, iid, Scope.everything(), now=just_before, tz=TZ)["overdue"]
    assert get_issue(s, iid, Scope.everything(), now=just_after, tz=TZ)["overdue"]
    f = IssueFilter(overdue=True, numbers=(out["number"],))
    assert query_issues(s, f, Scope.everything(), now=just_before, tz=TZ)["total"] == 0
    assert query_issues(s, f, Scope.everything(), now=just_after, tz=TZ)["total"] == 1
    assert query_issues(s, IssueFilter(overdue=False, numbers=(out["number"],)), Scope.everything(),
                        now=just_before, tz=TZ)["total"] == 1
    # the sign deadline is 2 hours after assignment
    assert get_issue(s, iid, Scope.everything(), now=assigned + dt.timedelta(hours=3), tz=TZ)["sign_overdue"]
    # closed before the due date: never overdue afterwards; closed late: overdue for good
    v = out["version"]
    for action, who in [("sign", "c1_secretary"), ("handle", "c1_secretary"), ("feedback", "c1_secretary"),
                        ("verify", "operator")]:
        v = apply_transition(s, iid, action, w.actor(s, who), expected_version=v, note="完成",
                             now=assigned + dt.timedelta(hours=1), tz=TZ)["version"]
    late = apply_transition(s, iid, "close", w.actor(s, "operator"), expected_version=v, now=just_after, tz=TZ)
    assert late["overdue"] and late["timeline" if False else "closed_at"] == just_after
    assert get_issue(s, iid, Scope.everything(), now=just_after + dt.timedelta(days=30), tz=TZ)["overdue"]


def test_sign_late_is_recorded(ms):
    s, w = ms
    iid = put_in_state(s, w, wf.ASSIGNED)
    late = T0 + dt.timedelta(hours=5)
    apply_transition(s, iid, "sign", w.actor(s, "handler"), now=late, tz=TZ)
    ev = issue_timeline(s, iid, Scope.everything(), tz=TZ)[-1]
    assert ev["action"] == "sign" and ev["data"]["late"] is True


def test_extend_reassign_and_evaluate_helpers(ms):
    s, w = ms
    iid = put_in_state(s, w, wf.HANDLING)
    old_due = s.get(Issue, iid).due_at
    out = extend(s, iid, w.actor(s, "c1_leader"), new_due=dt.date(2026, 11, 20), reason="需协调产权单位", now=T0, tz=TZ)
    assert out["due_at"] == dt.datetime(2026, 11, 20, 23, 59, 59, tzinfo=SH) and out["status"] == wf.HANDLING
    ev = issue_timeline(s, iid, Scope.everything(), tz=TZ)[-1]
    assert ev["action"] == "extend" and ev["data"]["approver_id"] == w.ids["c1_leader"]
    assert dt.datetime.fromisoformat(ev["data"]["old_due"]) == old_due
    assert dt.datetime.fromisoformat(out["six_ones"]["worksheet"][-1]["due"]) == out["due_at"]
    # 推诿: every reassignment is counted; the due date does not move
    for n, target in enumerate(["handler2", "handler", "handler2"], start=1):
        out = reassign(s, iid, w.actor(s, "operator"), assignee_id=w.ids[target], reason="不属于本单位职责",
                       now=T0 + dt.timedelta(hours=n), tz=TZ)
        assert out["reassign_count"] == n and out["status"] == wf.ASSIGNED and out["signed_at"] is None
        assert out["due_at"] == dt.datetime(2026, 11, 20, 23, 59, 59, tzinfo=SH)
    cid = put_in_state(s, w, wf.CLOSED)
    with pytest.raises(TransitionError) as refused:   # never by a stranger
        evaluate(s, cid, Actor.resident(), satisfaction=1, now=T0, tz=TZ)
    assert refused.value.code == "forbidden_capability"
    out = evaluate(s, cid, w.actor(s, "operator"), satisfaction=3, comment="居民电话反映处理较慢", now=T0, tz=TZ)
    assert out["status"] == wf.EVALUATED and out["satisfaction"] == 3


# -- reading, scope and personal data --------------------------------------------------------------
def test_personal_data_only_for_officials_in_scope(ms):
    s, w = ms
    out = report(s, w, None, reporter_name="王女士", reporter_phone="13912345678")
    assert out["reporter"] is None  # the report answer itself never carries personal data
    public = get_issue(s, out["id"], Scope.public(), tz=TZ)
    assert public["reporter"] is None and public["six_ones"]["grid_leader"]["phone"] is None
    assert public["six_ones"]["grid_leader"]["name"] == "网格长甲"
    op = get_issue(s, out["id"], w.actor(s, "operator").scope(), tz=TZ)
    assert op["reporter"] == {"name": "王女士", "phone": "13912345678"}
    assert op["six_ones"]["grid_leader"]["phone"]
    with pytest.raises(NotFoundError):  # outside the east community official's scope
        get_issue(s, out["id"], w.actor(s, "c2_secretary").scope(), tz=TZ)
    # the leader of this block sees it, with personal data
    assert get_issue(s, out["id"], w.actor(s, "b11_leader").scope(), tz=TZ)["reporter"]["name"] == "王女士"


def test_query_filters(ms):
    s, w = ms
    mk = [(113.625, 34.755, "sanitation", "problem"), (113.625, 34.745, "safety", "problem"),
          (113.635, 34.755, "sanitation", "sentiment"), (113.635, 34.745, "disputes", "problem")]
    nums = []
    for k, (lon, lat, dom, kind) in enumerate(mk):
        nums.append(report(s, w, "operator", lon=lon, lat=lat, domain=dom, kind=kind, source="platform",
                           now=T0 + dt.timedelta(days=k))["number"])
    every = Scope.everything()

    def q(**kw):
        return [i["number"] for i in query_issues(s, IssueFilter(numbers=tuple(nums), **kw), every,
                                                  sort="reported_at", now=T0, tz=TZ)["items"]]

    assert q() == nums
    assert q(grid=C1) == nums[:2] and q(grid=B22) == nums[3:] and q(grid=STREET) == nums
    assert q(bbox=(113.62, 34.74, 113.629, 34.759)) == nums[:2]
    assert q(domains=("sanitation",)) == [nums[0], nums[2]]
    assert q(kind="sentiment") == [nums[2]]
    assert q(statuses=("reported",)) == nums and q(statuses=("closed",)) == []
    assert q(reported_from=T0 + dt.timedelta(days=1), reported_to=T0 + dt.timedelta(days=3)) == nums[1:3]
    assert q(open=True) == nums
    page = query_issues(s, IssueFilter(numbers=tuple(nums)), every, page=2, page_size=3, sort="-reported_at", tz=TZ)
    assert page["total"] == 4 and page["pages"] == 2 and [i["number"] for i in page["items"]] == nums[:1]
    # scope: the east community's secretary sees only the east issues
    east = query_issues(s, IssueFilter(numbers=tuple(nums)), w.actor(s, "c2_secretary").scope(), tz=TZ)
    assert {i["number"] for i in east["items"]} == set(nums[2:])
    bad = [({"grid": "123"}, "grid"), ({"statuses": ("open",)}, "status"), ({"domains": ("x",)}, "domain"),
           ({"kind": "other"}, "kind"), ({"bbox": (113.64, 34.74, 113.62, 34.76)}, "bbox"),
           ({"bbox": (34.74, 113.62, 34.76, 113.64)}, "bbox.min_lat"),
           ({"reported_from": dt.datetime(2026, 1, 1)}, "from")]
    for kw, fld in bad:
        with pytest.raises(DomainError) as err:
            query_issues(s, IssueFilter(**kw), every, tz=TZ)
        assert err.value.field == fld, kw
    with pytest.raises(DomainError) as err:
        query_issues(s, IssueFilter(), every, sort="title", tz=TZ)
    assert err.value.field == "sort"
    with pytest.raises(DomainError) as err:
        query_issues(s, IssueFilter(), every, page_size=1000, tz=TZ)
    assert err.value.field == "page_size"


def test_report_validation_writes_nothing(ms):
    s, w = ms
    before = counts(s)
    bad = [({"kind": "bug"}, "kind"), ({"domain": "weather"}, "domain"), ({"title": "  "}, "title"),
           ({"lon": 34.755, "lat": 113.625}, "lat"), ({"lon": 113.70, "lat": 34.75}, "lon"),
           ({"source": "patrol"}, "source"), ({"crs": "bd09"}, "crs"), ({"title": "x" * 201}, "title"),
           ({"nearest_override": True, "lon": 113.645}, "nearest_override")]
    for kw, fld in bad:
        args = {"kind": "problem", "domain": "sanitation", "title": "t", "lon": 113.625, "lat": 34.755, "source": "resident"}
        args.update(kw)
        with pytest.raises(DomainError) as err:
            report_issue(s, Actor.resident(), now=T0, **args, tz=TZ)
        assert err.value.field == fld, (kw, err.value)
    assert counts(s) == before
    # the operator override attaches an outside point to the nearest block, distance recorded
    out = report_issue(s, w.actor(s, "operator"), kind="problem", domain="sanitation", title="界外", lon=113.645,
                       lat=34.745, source="platform", nearest_override=True, now=T0, tz=TZ)
    assert out["grid"]["code"] == B22 and out["placement"]["method"] == "nearest"
    assert 400 < out["placement"]["distance_m"] < 500
    assert issue_timeline(s, out["id"], Scope.everything(), tz=TZ)[0]["data"]["distance_m"] == out["placement"]["distance_m"]


def test_gcj02_report_and_shared_edge_recorded(ms):
    s, w = ms
    from geodata.geometry import wgs84_to_gcj02
    glon, glat = (float(v) for v in wgs84_to_gcj02(113.6395, 34.7405))
    out = report(s, w, lon=glon, lat=glat, crs="gcj02")
    assert out["grid"]["code"] == B22 and abs(out["lon"] - 113.6395) < 1e-6
    edge = report(s, w, lon=113.63, lat=34.75)
    assert edge["grid"]["code"] == B11 and edge["placement"]["candidates"] == [B11, B12, B21, B22]


def test_responsible_for_point(ms):
    s, w = ms
    card = responsible_for_point(s, 113.635, 34.745, Scope.public())
    assert card["block"]["code"] == B22 and card["community"]["code"] == C2 and card["street"]["code"] == STREET
    assert card["six_ones"]["grid_leader"]["name"] == "网格长丁"
    assert card["six_ones"]["responsible"]["title"] == "社区党支部书记"
    assert all(o["phone"] is None for o in card["officials"])
    assert {o["role"] for o in card["officials"]} >= {"first_responsible", "direct_responsible", "grid_leader"}
    priv = responsible_for_point(s, 113.635, 34.745, w.actor(s, "c2_secretary").scope())
    assert all(o["phone"] for o in priv["officials"])
    other = responsible_for_point(s, 113.635, 34.745, w.actor(s, "c1_secretary").scope())
    assert all(o["phone"] is None for o in other["officials"])


def test_patrol_diary_and_turning_a_finding_into_a_report(ms):
    s, w = ms
    track = {"type": "LineString", "coordinates": [[113.621, 34.751], [113.625, 34.755], [113.628, 34.758]]}
    d = record_diary(s, w.actor(s, "b11_leader"), kind="patrol", started_at=T0, ended_at=T0 + dt.timedelta(hours=1),
                     track=track, households=12, shops=3, findings="3号楼下水道堵塞", now=T0 + dt.timedelta(hours=2), tz=TZ)
    assert d["grid_code"] == B11 and d["track"]["type"] == "LineString"
    listed = list_diary(s, w.actor(s, "c1_secretary").scope(), grid=C1, tz=TZ)
    assert [x["id"] for x in listed["items"]] == [d["id"]]
    assert list_diary(s, w.actor(s, "c2_secretary").scope(), tz=TZ)["total"] == 0
    out = diary_to_report(s, d["id"], w.actor(s, "b11_leader"), kind="problem", domain="livelihood",
                          title="下水道堵塞", now=T0 + dt.timedelta(hours=2), tz=TZ)
    assert out["source"] == "patrol" and out["description"] == "3号楼下水道堵塞" and out["lon"] == 113.628
    with pytest.raises(ConflictError):
        diary_to_report(s, d["id"], w.actor(s, "b11_leader"), kind="problem", domain="livelihood", title="again", tz=TZ)
    with pytest.raises(ForbiddenError):
        record_diary(s, Actor.resident(), kind="patrol", started_at=T0, tz=TZ)
    with pytest.raises(ForbiddenError):  # no role in the east community
        record_diary(s, w.actor(s, "b11_leader"), kind="visit", started_at=T0, grid_code=B21, tz=TZ)
    with pytest.raises(DomainError) as err:
        record_diary(s, w.actor(s, "b11_leader"), kind="visit", started_at=T0, ended_at=T0 - dt.timedelta(hours=1), tz=TZ)
    assert err.value.field == "ended_at"
    v = record_diary(s, w.actor(s, "b12_leader"), kind="visit", started_at=T0, households=5, now=T0, tz=TZ)
    assert v["grid_code"] == B12 and v["track"] is None


def test_idempotent_same_key_same_result_one_row(ms):
    s, _w = ms
    before = counts(s)
    body = {"kind": "problem", "domain": "sanitation", "title": "重复上报", "lon": 113.625, "lat": 34.755, "source": "resident"}

    def compute():
        out = report_issue(s, Actor.resident(), now=T0, **body, tz=TZ)
        return 201, {"id": out["id"], "number": out["number"]}

    h = request_hash(sorted(body.items()))
    first = idempotent(s, "anon:report:k1", h, compute)
    second = idempotent(s, "anon:report:k1", h, compute)
    assert first[:2] == second[:2] and not first[2] and second[2]
    assert counts(s) == (before[0] + 1, before[1] + 1)
    with pytest.raises(DomainError) as err:
        idempotent(s, "anon:report:k1", request_hash("other"), compute)
    assert err.value.code == "idempotency_key_reused" and type(err.value) is DomainError
    assert counts(s) == (before[0] + 1, before[1] + 1)


# -- concurrency: real connections, committed data --------------------------------------------------
@pytest.fixture(scope="module")
def committed(server_url):
    from tests.world import drop_database
    name = f"gridwatch_test_conc{SUFFIX}"
    url = scratch_database(server_url, name)
    engine = create_engine(url, pool_size=6)
    with session_scope(engine) as s:
        world = seed(s)
    yield engine, world
    engine.dispose()
    drop_database(server_url, name)


def _assigned_issue(engine, world):
    with session_scope(engine) as s:
        iid = report(s, world, "b11_leader", source="patrol")["id"]
        out = apply_transition(s, iid, "assign", world.actor(s, "operator"), payload={"assignee_id": world.ids["handler"]},
                               now=T0, tz=TZ)
    return iid, out["version"]


def test_two_concurrent_transitions_exactly_one_wins(committed):
    engine, world = committed
    for _round in range(5):
        iid, v = _assigned_issue(engine, world)
        barrier = threading.Barrier(2)
        results: list = [None, None]

        def attempt(k: int, action: str, who: str) -> None:
            try:
                with session_scope(engine) as s:
                    actor = world.actor(s, who)
                    barrier.wait()
                    note = "改派" if action == "reassign" else ""
                    payload = {"assignee_id": world.ids["handler2"]}
                    results[k] = apply_transition(s, iid, action, actor, expected_version=v, note=note,
                                                  payload=payload, now=T0 + dt.timedelta(hours=1), tz=TZ)["status"]
            except ConflictError as exc:
                results[k] = exc

        threads = [threading.Thread(target=attempt, args=(0, "sign", "handler")),
                   threading.Thread(target=attempt, args=(1, "reassign", "operator"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        wins = [r for r in results if isinstance(r, str)]
        losses = [r for r in results if isinstance(r, ConflictError)]
        assert len(wins) == 1 and len(losses) == 1, results
        assert losses[0].code == "changed_by_someone_else"
        with Session(engine) as s:
            n = s.execute(text("SELECT count(*) FROM issue_event WHERE issue_id = :i"), {"i": iid}).scalar_one()
            assert n == 3  # report, assign, and the single winner
            assert s.get(Issue, iid).version == v + 1


def test_a_transition_waiting_on_an_uncommitted_one_gets_a_conflict(committed):
    engine, world = committed
    iid, v = _assigned_issue(engine, world)
    first = Session(engine)
    first.begin()
    apply_transition(first, iid, "sign", world.actor(first, "handler"), expected_version=v, now=T0, tz=TZ)  # not committed
    outcome: list = []

    def second() -> None:
        try:
            with session_scope(engine) as s:
                apply_transition(s, iid, "reassign", world.actor(s, "operator"), expected_version=v, note="改派",
                                 payload={"assignee_id": world.ids["handler2"]}, now=T0, tz=TZ)
            outcome.append("won")
        except ConflictError as exc:
            outcome.append(exc.code)

    t = threading.Thread(target=second)
    t.start()
    time.sleep(0.5)
    assert t.is_alive()  # blocked on the row the first transaction updated
    first.commit()
    first.close()
    t.join(10)
    assert outcome == ["changed_by_someone_else"]


def test_concurrent_retries_with_one_idempotency_key_make_one_issue(committed):
    engine, _world = committed
    with Session(engine) as s:
        before = s.execute(text("SELECT count(*) FROM issue")).scalar_one()
    body = {"kind": "problem", "domain": "sanitation", "title": "并发重试", "lon": 113.635, "lat": 34.755, "source": "resident"}
    barrier = threading.Barrier(3)
    answers: list = []

    def go() -> None:
        with session_scope(engine) as s:
            barrier.wait()

            def compute():
                out = report_issue(s, Actor.resident(), now=T0, **body, tz=TZ)
                return 201, {"id": out["id"]}

            answers.append(idempotent(s, "anon:report:same", request_hash(sorted(body.items())), compute))

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(answers) == 3 and len({a[1]["id"] for a in answers}) == 1
    assert sorted(a[2] for a in answers) == [False, True, True]
    with Session(engine) as s:
        assert s.execute(text("SELECT count(*) FROM issue")).scalar_one() == before + 1


# -- one visibility rule for every issue read -----------------------------------------------------
def test_the_responsibility_chain_sees_its_issue_in_every_read(ms):
    """An assignee who holds no grid (a functional department) sees the issue assigned to them in the
    API's page, its detail and timeline, and the map's list, markers, counts and panel — the same rule
    (geodata.access.visibility) everywhere; an official with no link to it sees it nowhere."""
    from geodata.maps import markers as map_markers
    from geodata.maps import metrics as map_metrics
    from geodata.workflow import queries

    s, w = ms
    iid = put_in_state(s, w, wf.HANDLING, assignee="handler")
    number = s.get(Issue, iid).number
    only = IssueFilter(numbers=(number,))
    box = (113.5, 34.6, 113.8, 34.9)
    for who, sees in (("handler", True), ("handler2", False), ("c2_secretary", False)):
        scope = w.actor(s, who).scope()
        assert scope.roots == frozenset() or who == "c2_secretary"
        page = query_issues(s, only, scope, now=T0, tz=TZ)
        assert (page["total"] == 1) is sees, who
        assert (queries.find_issue(s, iid, scope) is not None) is sees, who
        assert (queries.issue_detail(s, scope, iid, T0) is not None) is sees, who
        assert bool(queries.latest_issues(s, scope, only, None, as_of=T0, tz=TZ)) is sees, who
        assert (map_metrics.grid_counts(s, scope, only, None, T0, tz=TZ).counts.total == 1) is sees, who
        pts = map_markers.markers(s, scope, only, box, as_of=T0, tz=TZ).data["features"]
        assert (len(pts) == 1) is sees, who
        assert (map_markers.issue_popup(s, scope, iid, T0) is not None) is sees, who
        if sees:
            assert get_issue(s, iid, scope, tz=TZ)["six_ones"]["assignee"]["phone"]  # on the chain: personal data
        else:
            with pytest.raises(NotFoundError):
                issue_timeline(s, iid, scope, tz=TZ)
