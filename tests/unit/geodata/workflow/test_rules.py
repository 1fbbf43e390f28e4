"""Pure workflow rules: the full state × action × role matrix, deadlines and overdue arithmetic."""
import datetime as dt
import itertools

import pytest

from geodata.clock import zone
from geodata.settings import DEFAULT_TIMEZONE
from geodata.workflow import rules as wf

TZ = zone(DEFAULT_TIMEZONE)

UTC = dt.UTC


@pytest.mark.parametrize("status,action,role", list(itertools.product(
    (None, *wf.STATUSES), wf.ACTIONS, wf.ROLES)))
def test_matrix(status, action, role):
    sources, target = wf.TRANSITIONS[action]
    legal_state = status in sources
    legal_role = role in wf.ALLOWED_ROLES[action]
    if legal_state and legal_role:
        new = wf.transition(status, action, {role})
        assert new == (status if target is None else target)
    else:
        with pytest.raises(wf.TransitionError) as err:
            wf.transition(status, action, {role})
        assert err.value.code == ("illegal_transition" if not legal_state else "forbidden")
        assert err.value.message_zh and err.value.message_en


def test_happy_path_and_rework():
    s = None
    for action, role in [("report", "grid_leader"), ("assign", "operator"), ("sign", "assignee"),
                         ("handle", "assignee"), ("feedback", "assignee"), ("rework", "operator"),
                         ("feedback", "assignee"), ("verify", "platform_maintainer"),
                         ("close", "operator"), ("evaluate", "resident")]:
        s = wf.transition(s, action, {role})
    assert s == wf.EVALUATED
    assert wf.available_actions(s, set(wf.ROLES)) == []


def test_unknown_action():
    with pytest.raises(wf.TransitionError) as err:
        wf.next_status("reported", "explode")
    assert err.value.code == "unknown_action"


def test_deadlines_local_days():
    # 23:30 Beijing time on 31 Dec is 15:30 UTC; handling days count in Asia/Shanghai calendar days
    assigned = dt.datetime(2026, 12, 31, 15, 30, tzinfo=UTC)
    sign, due = wf.deadlines(assigned, wf.DeadlinePolicy(sign_hours=2, handle_days=3), TZ)
    assert sign == dt.datetime(2026, 12, 31, 17, 30, tzinfo=UTC)
    assert due.astimezone(TZ) == dt.datetime(2027, 1, 3, 23, 59, 59, tzinfo=TZ)
    assert due.astimezone(UTC) == dt.datetime(2027, 1, 3, 15, 59, 59, tzinfo=UTC)
    with pytest.raises(ValueError):
        wf.deadlines(dt.datetime(2026, 1, 1), wf.DeadlinePolicy(1, 1), TZ)


def test_overdue_is_derived():
    due = dt.datetime(2026, 5, 1, 15, 59, 59, tzinfo=UTC)
    before, after = due - dt.timedelta(seconds=1), due + dt.timedelta(seconds=1)
    assert not wf.is_overdue("handling", due, None, before)
    assert wf.is_overdue("handling", due, None, after)
    assert not wf.is_overdue("closed", due, before, after)
    assert wf.is_overdue("closed", due, after, after)
    assert not wf.is_overdue("reported", None, None, after)


def test_worksheet_backwards_from_due():
    assigned = dt.datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    sign, due = wf.deadlines(assigned, wf.DeadlinePolicy(2, 10), TZ)
    rows = wf.worksheet(assigned, sign, due)
    dues = [dt.datetime.fromisoformat(r["due"]) for r in rows]
    assert dues == sorted(dues) and dues[-1] == due and rows[0]["step"] == "sign"


def test_one_role_list():
    """The workflow's roles, the acting preference and the grid-assignment roles are the vocabulary's."""
    from geodata import vocab

    assert wf.ROLES == vocab.ROLES == tuple(vocab.WORKFLOW_ROLE_LABELS)
    assert sorted(wf.ROLE_PREFERENCE) == sorted(vocab.ROLES) and len(set(wf.ROLE_PREFERENCE)) == len(vocab.ROLES)
    assert set(vocab.GRID_ROLES) == set(vocab.ROLES) - {"assignee", "resident"}
    assert set().union(*wf.ALLOWED_ROLES.values()) <= set(vocab.ROLES)
