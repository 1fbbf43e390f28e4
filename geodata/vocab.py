"""The one vocabulary: every status, action, role, kind, chain link and level with its zh/en label.

Used by the workflow rules, the API, the dashboard, the notices and the bulletins, so a word means
the same on every screen. Terms follow ../shared/GLOSSARY.md and the source article (下沉人员,
网格化管理中心, 社情)."""
from __future__ import annotations

Label = tuple[str, str]  # (zh-CN, en)

STATUS_LABELS: dict[str, Label] = {
    "reported": ("已上报", "Reported"), "assigned": ("已交办", "Assigned"), "signed": ("已签收", "Signed"),
    "handling": ("办理中", "Handling"), "feedback": ("已反馈", "Feedback given"),
    "verified": ("已认定", "Verified"), "closed": ("已办结", "Closed"), "evaluated": ("已评价", "Evaluated"),
}

ACTION_LABELS: dict[str, Label] = {
    "report": ("上报", "Report"), "assign": ("交办", "Assign"), "reassign": ("改派", "Reassign"),
    "sign": ("签收", "Sign"), "handle": ("办理", "Handle"), "feedback": ("反馈", "Feedback"),
    "verify": ("认定", "Verify"), "rework": ("返工", "Rework"), "close": ("办结", "Close"),
    "evaluate": ("综合评价", "Evaluate"), "extend": ("延期", "Extend deadline"),
    "request_extension": ("申请延期", "Request an extension"),
}

#: The workflow roles, in the order officials are listed (a grid's panel, contact cards).
WORKFLOW_ROLE_LABELS: dict[str, Label] = {
    "first_responsible": ("第一责任人", "First responsible"),
    "direct_responsible": ("直接责任人", "Directly responsible"),
    "platform_maintainer": ("平台维护员", "Platform maintainer"),
    "sunk_member": ("下沉人员", "Sunk-in member"),
    "grid_leader": ("网格长", "Grid leader"),
    "operator": ("网格化管理中心", "Grid management centre"),
    "assignee": ("承办人", "Assignee"),
    "resident": ("居民", "Resident"),
}
#: The account roles (geodata.access.capabilities.ROLES) beyond the workflow's.
ACCOUNT_ROLE_LABELS: dict[str, Label] = {
    "system_admin": ("系统管理员", "System administrator"),
    "street_leader": ("街道领导", "Street leader"),
    "community_leader": ("社区领导", "Community leader"),
    "handler": ("职能部门承办人", "Department handler"),
    "planner": ("网格规划员", "Grid planner"),
    "assessor": ("考核员", "Assessor"),
    "display": ("大屏显示", "Wall display"),
}
#: Every role's label: the workflow's, then the accounts' own.
ROLE_LABELS: dict[str, Label] = {**WORKFLOW_ROLE_LABELS, **ACCOUNT_ROLE_LABELS}
#: The workflow roles, in display order.
ROLES: tuple[str, ...] = tuple(WORKFLOW_ROLE_LABELS)
#: The roles an official holds on a grid (``grid_assignment.role``); the other two are relational
#: (``assignee``: the official a case is assigned to) or nobody's (``resident``).
GRID_ROLES: tuple[str, ...] = tuple(r for r in ROLES if r not in ("assignee", "resident"))

#: What an account may do (geodata.access.capabilities): the names of the permissions.
CAPABILITY_LABELS: dict[str, Label] = {
    "view_map": ("查看网格地图", "View the grid map"),
    "view_issues": ("查看问题", "Read issues"),
    "view_wall": ("大屏显示", "Show the wall display"),
    "view_personal_data": ("查看个人信息", "View personal data"),
    "report": ("上报", "Report"),
    "assign": ("交办与改派", "Assign and reassign"),
    "sign": ("签收", "Sign for"),
    "handle": ("办理与反馈", "Handle and give feedback"),
    "verify": ("认定、返工与办结", "Verify, send back, close"),
    "extend": ("批准延期", "Approve extensions"),
    "evaluate_on_behalf": ("代居民评价", "Evaluate on a resident's behalf"),
    "edit_boundaries": ("编辑网格边界", "Edit grid boundaries"),
    "send_notices": ("发送周通报", "Send weekly notices"),
    "assess": ("考核评分", "Assessment scores"),
    "manage_accounts": ("管理账号", "Manage accounts"),
    "read_audit": ("查看审计日志", "Read the audit log"),
    "view_assessment": ("查看考核排名", "View the assessment"),
}

#: Kinds of account: a person signs in; a display screen shows the wall with a token.
ACCOUNT_KIND_LABELS: dict[str, Label] = {"user": ("用户", "User"), "display": ("显示屏", "Display screen")}

#: The six-ones chain of a block, as the panel and notices name its links.
CHAIN_LABELS: dict[str, Label] = {
    "grid_leader": ("网格长", "Grid leader"),
    "responsible": ("直接责任人", "Directly responsible"),
    "leader_in_charge": ("主管领导", "Leader in charge"),
}

KIND_LABELS: dict[str, Label] = {"problem": ("问题", "Problem"), "sentiment": ("社情", "Public sentiment")}
#: The issue kinds, in display order (问题, 社情).
KINDS: tuple[str, ...] = tuple(KIND_LABELS)

LEVEL_LABELS: dict[int, Label] = {1: ("街道", "Street"), 2: ("社区", "Community"), 3: ("楼院", "Block")}


def label(table: dict, key, lang: str = "zh") -> str:
    """``key``'s label in ``lang`` ('zh' or 'en'); an unknown key is shown as it is."""
    pair = table.get(key)
    if pair is None:
        return "—" if key is None else str(key)
    return pair[1] if lang == "en" else pair[0]
