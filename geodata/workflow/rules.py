"""Pure workflow rules (no I/O): states, transitions, roles, deadlines, overdue, worksheets, input text.

上报 report → 交办 assign → 签收 sign → 办理 handle → 反馈 feedback → 认定 verify → 办结 close →
综合评价 evaluate; a failed verification sends the case back to handling (返工 rework); deadlines may
be extended (延期) by an approver, asked for by the assignee (申请延期); reassignment (改派) is recorded every time (the 推诿 signal).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from geodata import vocab
from geodata.errors import DomainError, IllegalTransitionError, TransitionError, TransitionForbiddenError
from geodata.vocab import ACTION_LABELS, KINDS, STATUS_LABELS

# states, in workflow order
REPORTED, ASSIGNED, SIGNED, HANDLING, FEEDBACK, VERIFIED, CLOSED, EVALUATED = (
    "reported", "assigned", "signed", "handling", "feedback", "verified", "closed", "evaluated")
STATUSES = (REPORTED, ASSIGNED, SIGNED, HANDLING, FEEDBACK, VERIFIED, CLOSED, EVALUATED)
OPEN_STATUSES = frozenset({REPORTED, ASSIGNED, SIGNED, HANDLING, FEEDBACK, VERIFIED})
CLOSED_STATUSES = frozenset({CLOSED, EVALUATED})


ACTIONS = ("report", "assign", "reassign", "sign", "handle", "feedback", "verify", "rework", "close",
           "evaluate", "request_extension", "extend")

#: action -> (allowed from-states, resulting state; None keeps the state)
TRANSITIONS: dict[str, tuple[frozenset[str | None], str | None]] = {
    "report": (frozenset({None}), REPORTED),
    "assign": (frozenset({REPORTED}), ASSIGNED),
    "reassign": (frozenset({ASSIGNED, SIGNED, HANDLING}), ASSIGNED),
    "sign": (frozenset({ASSIGNED}), SIGNED),
    "handle": (frozenset({SIGNED}), HANDLING),
    "feedback": (frozenset({HANDLING}), FEEDBACK),
    "verify": (frozenset({FEEDBACK}), VERIFIED),   # verification passed
    "rework": (frozenset({FEEDBACK}), HANDLING),   # verification failed: 返工
    "close": (frozenset({VERIFIED}), CLOSED),
    "evaluate": (frozenset({CLOSED}), EVALUATED),
    "request_extension": (frozenset({ASSIGNED, SIGNED, HANDLING}), None),   # 申请延期: the approver decides
    "extend": (frozenset({ASSIGNED, SIGNED, HANDLING}), None),
}

# Actor roles. "assignee" is relational: the official the case is currently assigned to.
RESIDENT, OPERATOR, ASSIGNEE = "resident", "operator", "assignee"
ROLES = vocab.ROLES
#: When an actor holds several roles that may perform an action, the event records the first here
#: (the most specific duty first: the assignee, then the dispatchers, then the chain). Every role once.
ROLE_PREFERENCE = ("assignee", "operator", "platform_maintainer", "first_responsible", "direct_responsible",
                   "grid_leader", "sunk_member", "resident")
REPORTERS = frozenset({"resident", "grid_leader", "sunk_member", "direct_responsible",
                       "first_responsible", "platform_maintainer", "operator"})
DISPATCHERS = frozenset({"operator", "platform_maintainer"})
ALLOWED_ROLES: dict[str, frozenset[str]] = {
    "report": REPORTERS,
    "assign": DISPATCHERS,
    "reassign": DISPATCHERS,
    "sign": frozenset({ASSIGNEE}),
    "handle": frozenset({ASSIGNEE}),
    "feedback": frozenset({ASSIGNEE}),
    "verify": DISPATCHERS,
    "rework": DISPATCHERS,
    "close": DISPATCHERS,
    "evaluate": frozenset({"operator", "platform_maintainer", "first_responsible", "resident"}),
    "request_extension": frozenset({ASSIGNEE}),   # the one who has to meet the deadline asks
    "extend": frozenset({"operator", "first_responsible"}),  # the approver
}


def status_label(status: str | None, lang: str = "zh") -> str:
    if status is None:
        return "—"
    zh, en = STATUS_LABELS[status]
    return zh if lang == "zh" else en


def next_status(status: str | None, action: str) -> str:
    """The state after ``action`` from ``status``; raises TransitionError when not allowed."""
    if action not in TRANSITIONS:
        raise TransitionError("unknown_action", f"未知操作“{action}”", f"unknown action '{action}'")
    sources, target = TRANSITIONS[action]
    if status not in sources:
        zh_a, en_a = ACTION_LABELS[action]
        raise IllegalTransitionError(
            "illegal_transition",
            f"当前状态“{status_label(status)}”不能执行“{zh_a}”",
            f"cannot {en_a.lower()} an issue in state '{status_label(status, 'en')}'")
    return status if target is None else target  # type: ignore[return-value]


def check_role(action: str, roles: frozenset[str] | set[str]) -> None:
    """Raises TransitionError unless one of ``roles`` may perform ``action``."""
    allowed = ALLOWED_ROLES.get(action, frozenset())
    if not allowed & set(roles):
        zh_a, en_a = ACTION_LABELS.get(action, (action, action))
        raise TransitionForbiddenError("forbidden", f"无权执行“{zh_a}”", f"not allowed to {en_a.lower()} this issue")


def transition(status: str | None, action: str, roles: frozenset[str] | set[str]) -> str:
    """Check both the state machine and the role, return the new state."""
    new = next_status(status, action)
    check_role(action, roles)
    return new


def available_actions(status: str | None, roles: frozenset[str] | set[str]) -> list[str]:
    out = []
    for action in ACTIONS:
        sources, _ = TRANSITIONS[action]
        if status in sources and ALLOWED_ROLES[action] & set(roles):
            out.append(action)
    return out


# -- deadlines ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeadlinePolicy:
    sign_hours: int
    handle_days: int


def policy_for(domain: Any, kind: str) -> DeadlinePolicy:
    """Deadlines per domain and kind (configurable in the ``domain`` table: a ``models.Domain``)."""
    days = domain.handle_days if kind == "problem" else domain.sentiment_handle_days
    return DeadlinePolicy(sign_hours=domain.sign_hours, handle_days=days)


def deadlines(assigned_at: dt.datetime, policy: DeadlinePolicy,
              tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """(sign deadline, due). Signing: within ``sign_hours`` of assignment. Handling: by the end of
    the local day (business time zone ``tz``) ``handle_days`` calendar days after assignment."""
    if assigned_at.tzinfo is None:
        raise ValueError("assigned_at must be timezone-aware")
    sign_deadline = assigned_at + dt.timedelta(hours=policy.sign_hours)
    due_day = assigned_at.astimezone(tz).date() + dt.timedelta(days=policy.handle_days)
    due = dt.datetime.combine(due_day, dt.time(23, 59, 59), tzinfo=tz)
    return sign_deadline, due


def is_overdue(status: str, due_at: dt.datetime | None, closed_at: dt.datetime | None,
               now: dt.datetime) -> bool:
    """超期: open past the deadline, or closed after it. Derived, never stored."""
    if due_at is None:
        return False
    if status in CLOSED_STATUSES:
        return closed_at is not None and closed_at > due_at
    return now > due_at


def is_sign_overdue(status: str, sign_deadline: dt.datetime | None, signed_at: dt.datetime | None,
                    now: dt.datetime) -> bool:
    if sign_deadline is None:
        return False
    if signed_at is not None:
        return signed_at > sign_deadline
    return status == ASSIGNED and now > sign_deadline


WORKSHEET_STEPS = (
    # key, zh, en, fraction of the time from assignment to due at which it falls
    ("plan", "制定处置方案", "Plan the work", 0.2),
    ("midpoint", "中期进度检查", "Midpoint check", 0.5),
    ("complete", "完成办理", "Finish the work", 0.85),
    ("feedback", "反馈结果", "Report the result", 1.0),
)


def worksheet(assigned_at: dt.datetime, sign_deadline: dt.datetime, due_at: dt.datetime) -> list[dict]:
    """倒排工作表: milestones scheduled backwards from the due date."""
    span = due_at - assigned_at
    rows = [{"step": "sign", "zh": "签收", "en": "Sign for the case", "due": sign_deadline.isoformat()}]
    for key, zh, en, frac in WORKSHEET_STEPS:
        rows.append({"step": key, "zh": zh, "en": en, "due": (assigned_at + span * frac).isoformat()})
    return rows


# -- input ----------------------------------------------------------------------------------------
MAX_TEXT = {"title": 200, "description": 5000, "note": 2000, "address": 200}
MAX_PAGE_SIZE = 200


def clean_text(value: str | None, field: str, *, required: bool = False, max_len: int | None = None) -> str:
    """``value`` stripped; refused when required and empty, longer than ``max_len`` or holding NUL."""
    value = (value or "").strip()
    if required and not value:
        raise DomainError("required", f"{field} 不能为空", f"{field} is required", field=field)
    if max_len and len(value) > max_len:
        raise DomainError("too_long", f"{field} 最长 {max_len} 字", f"{field} is longer than {max_len} characters",
                          field=field)
    if "\x00" in value:
        raise DomainError("invalid_text", f"{field} 含有非法字符", f"{field} contains a NUL character", field=field)
    return value


def check_kind(kind: str, field: str = "kind") -> None:
    """``kind`` is one of :data:`geodata.vocab.KINDS` (problem 问题 / sentiment 社情)."""
    if kind not in KINDS:
        raise DomainError("unknown_kind", f"未知类型“{kind}”（problem 问题 / sentiment 社情）",
                          f"unknown kind '{kind}' (problem or sentiment)", field=field)
