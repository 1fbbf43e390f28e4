"""The text table: every user-facing string of the dashboard, zh-CN (default) and English; numbers
and dates formatted for the locale, clock times in the business time zone the caller passes
(``Context.tz``). Labels of statuses, actions, roles, chain links and kinds come from
``geodata.vocab`` only."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from geodata.vocab import ACTION_LABELS, CHAIN_LABELS, KIND_LABELS, ROLE_LABELS, STATUS_LABELS

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"

TEXT: dict[str, tuple[str, str]] = {
    "html_title": ("Gridwatch 网格化管理", "Gridwatch grid management"),
    "not_found_title": ("找不到该页面", "Page not found"),
    "not_found_text": ("地址有误，或该页面已不存在。", "The address is wrong, or the page no longer exists."),
    "not_found_back": ("返回地图", "Back to the map"),
    "grid_not_found": ("未找到网格 {code}（或无权查看），显示的是{shown}", "No grid {code} (or not yours to see); showing {shown}"),
    "issue_not_found": ("未找到问题 {id}（或无权查看）", "No issue {id} (or not yours to see)"),
    # signing in (dashboard.auth)
    "sign_in_title": ("登录", "Sign in"),
    "login_name": ("登录名", "Login"),
    "password": ("密码", "Password"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出登录", "Sign out"),
    "signed_out": ("已退出登录", "You have signed out"),
    "signed_in_as": ("当前账号：{name}", "Signed in as {name}"),
    "bad_credentials": ("登录名或密码错误", "Wrong login or password"),
    "locked": ("登录失败次数过多，账号已锁定，请于 {t} 后再试", "Too many failed sign-ins: the account is locked until {t}"),
    "wait": ("尝试过于频繁，请 {s} 秒后再试", "Too many attempts: try again in {s} s"),
    "csrf_failed": ("表单已过期，请刷新页面后重试", "The form has expired; reload the page and try again"),
    "change_password": ("修改密码", "Change password"),
    "current_password": ("当前密码", "Current password"),
    "new_password": ("新密码", "New password"),
    "confirm_password": ("确认新密码", "Confirm the new password"),
    "password_required": ("请填写所有密码栏", "Fill in every password field"),
    "password_mismatch": ("两次输入的新密码不一致", "The new passwords do not match"),
    "password_changed": ("密码已修改，其他设备上的登录已退出", "Password changed; your other sessions were signed out"),
    "no_map_access": ("该账号无权查看地图", "This account may not view the map"),
    "back_to_map": ("返回地图", "Back to the map"),
    "lang_name": ("中文", "English"),   # each language named in itself (the language switch)
    "list_sep": ("、", "、"),
    "app_title": ("网格化管理地图", "Grid management map"),
    "synthetic": ("演示数据（虚构）", "demo data (synthetic)"),
    "search": ("搜索网格编码/名称、人员、问题编号…", "Search grid code/name, official, issue number…"),
    # dcc.Dropdown's own texts (its ``labels``); {num_selected} is filled in by the widget
    "dd_select_all": ("全选", "Select all"),
    "dd_deselect_all": ("取消全选", "Deselect all"),
    "dd_selected_count": ("已选 {num_selected} 项", "{num_selected} selected"),
    "dd_search": ("搜索", "Search"),
    "dd_clear_search": ("清除搜索", "Clear search"),
    "dd_clear_selection": ("清除已选", "Clear selection"),
    "dd_no_options": ("无匹配项", "No matches"),
    # dash-ag-grid: the few texts said better than the widget's own translation
    "grid_no_rows": ("暂无数据", "No rows"),
    "grid_loading": ("加载中…", "Loading…"),
    "kind": ("类别", "Kind"),
    "kind_all": ("全部", "All"),
    "domains": ("领域", "Domains"),
    "domains_all": ("全部领域", "All domains"),
    "statuses": ("状态", "Status"),
    "statuses_all": ("全部状态", "All statuses"),
    "date": ("时间", "Period"),
    "date_all": ("全部", "All"),
    "week": ("本周", "This week"),
    "month": ("本月", "This month"),
    "quarter": ("本季度", "This quarter"),
    "year": ("本年", "This year"),
    "custom": ("自定义", "Custom"),
    "date_start": ("开始日期", "Start date"),
    "date_end": ("结束日期", "End date"),
    "basemap": ("底图", "Basemap"),
    "no_basemap": ("未配置底图", "No basemap configured"),
    "no_basemap_how": ("在线：设置 GRIDWATCH_BASEMAP_URL，如天地图 "
                       "https://t{s}.tianditu.gov.cn/vec_w/wmts?…&tk=<您的密钥>；离线：设置 GRIDWATCH_BASEMAP_PATH "
                       "为瓦片目录（{z}/{x}/{y}.png）或 MBTiles 文件。",
                       "Online: set GRIDWATCH_BASEMAP_URL, e.g. Tianditu "
                       "https://t{s}.tianditu.gov.cn/vec_w/wmts?…&tk=<your key>; offline: set GRIDWATCH_BASEMAP_PATH "
                       "to a tile directory ({z}/{x}/{y}.png) or an MBTiles file."),
    "tianditu": ("© 天地图 Tianditu", "© 天地图 Tianditu"),   # the basemap's attribution (its name)
    "cluster": ("聚合：数字为件数，颜色取最严重状态", "Cluster: count, coloured by worst state"),
    "overdue_only": ("仅超期", "Overdue only"),
    "metric": ("分级设色", "Choropleth"),
    "metric_open": ("未办结问题数", "Open issues"),
    "metric_overdue_open": ("超期未办结数", "Open and overdue"),
    "metric_closed_late": ("超期办结数", "Closed late"),
    "metric_closure_rate": ("结案率", "Closure rate"),
    "metric_per_km2": ("每平方公里问题数", "Issues per km²"),
    "layer_choro": ("分级设色", "Choropleth"),
    "layer_heat": ("热力图", "Heat map"),
    "layer_markers": ("问题标记", "Issue markers"),
    "heat_legend": ("问题密度（件/平方公里）", "Issue density (per km²)"),
    "state_open": ("办理中", "Open"),
    "state_overdue": ("超期", "Overdue"),
    "state_closed": ("已办结", "Closed"),
    "no_data": ("无数据", "No data"),
    "level_1": ("一级网格（街道）", "Level 1 (street)"),
    "level_2": ("二级网格（社区）", "Level 2 (community)"),
    "level_3": ("三级网格（楼院）", "Level 3 (block)"),
    "code": ("编码", "Code"),
    "level": ("层级", "Level"),
    "area": ("面积", "Area"),
    "children_2": ("下辖社区", "Communities"),
    "children_3": ("下辖网格", "Blocks"),
    "officials": ("责任人", "Responsible officials"),
    "six_ones": ("“六个一”责任链", "Six-ones chain"),
    "total": ("问题总数", "Issues"),
    "open": ("未办结", "Open"),
    "closed": ("已办结", "Closed"),
    "overdue": ("超期", "Overdue"),
    "overdue_open": ("超期未办结", "Open and overdue"),
    "closed_late": ("超期办结", "Closed late"),
    # what each number means (shown on hover / tap); the closure rate after the national formula
    "help_total": ("筛选条件内的问题与社情件数", "Problems and public-sentiment reports matching the filters"),
    "help_open": ("尚未办结的件数（已上报至已认定）", "Not closed yet (reported up to verified)"),
    "help_closed": ("已办结或已评价的件数", "Closed or evaluated"),
    "help_overdue_open": ("现在仍未办结、且已过办理期限的件数", "Open now and past their deadline"),
    "help_closed_late": ("已办结、但办结晚于办理期限的件数", "Closed, but after their deadline"),
    "help_closure_rate": ("结案率 = 结案数 ÷ 应结案数。应结案数 = 已办结件数 + 已过期限仍未办结件数；"
                          "未到期限的在办件不计入",
                          "Closure rate = closed ÷ due to be closed (closed, plus open past their "
                          "deadline); open issues not yet due do not count"),
    "help_per_km2": ("问题总数 ÷ 网格面积（平方公里）", "Issues ÷ the grid's area (km²)"),
    "help_heat": ("每 100 米见方内的问题数折算为每平方公里；颜色越深越密集",
                  "Issues per 100 m square, as per km²; the darker, the denser"),
    "closure_rate": ("结案率", "Closure rate"),
    "by_status": ("按状态", "By status"),
    "by_domain": ("按领域", "By domain"),
    "latest": ("最新问题", "Latest issues"),
    "col_number": ("编号", "No."),
    "col_title": ("标题", "Title"),
    "col_domain": ("领域", "Domain"),
    "col_status": ("状态", "Status"),
    "col_reported": ("上报时间", "Reported"),
    "col_grid": ("网格", "Grid"),
    "timeline": ("办理过程", "Timeline"),
    "close": ("关闭", "Close"),
    "col_time": ("时间", "Time"),
    "col_action": ("环节", "Step"),
    "col_actor": ("经办人", "By"),
    "col_note": ("说明", "Note"),
    "due": ("办理期限", "Due"),
    "closed_at": ("办结时间", "Closed"),
    "address": ("地址", "Address"),
    "markers_points": ("视野内 {n} 个问题", "{n} issues in view"),
    "markers_bins": ("视野内问题较多，已按区域汇总（数字为件数）",
                     "Many issues in view: totalled by area (numbers are counts)"),
    "live": ("实时", "Live"),
    "updated": ("更新于 {t}", "updated {t}"),
    "data_down": ("数据中断 自 {t}", "Data interrupted since {t}"),
    "data_down_hint": ("数据库暂不可用，显示的是中断前的数据；恢复后自动更新",
                       "The database is unavailable; showing the data from before the interruption. "
                       "It updates by itself once the database is back"),
    "not_found": ("未找到该网格", "Grid not found"),
    "hit_grid": ("网格", "Grid"),
    "hit_official": ("人员", "Official"),
    "hit_issue": ("问题", "Issue"),
    "phone_hidden": ("（电话不公开）", "(phone not shown)"),
    "none": ("暂无", "None"),
    "km2": ("平方公里", "km²"),
    "overdue_flag": ("超期", "overdue"),
    "outbox": ("周报短信", "Weekly notices"),
    "outbox_title": ("周报短信发件箱", "Weekly notice outbox"),
    "outbox_pending": ("待发送", "Pending"),
    "outbox_sent": ("已发送", "Sent"),
    "col_recipient": ("收件人", "Recipient"),
    "col_subject": ("主题", "Subject"),
    "col_sent_at": ("发送时间", "Sent at"),
    "outbox_pick": ("选择一条短信查看全文", "Select a message to read it in full"),
    "outbox_empty": ("发件箱中暂无短信", "The outbox is empty"),
    "outbox_shown": ("最新 {n} 条，共 {total} 条（待发送 {pending} 条）",
                     "Latest {n} of {total} ({pending} pending)"),
    "outbox_grids": ("负责网格", "Grids"),
    # the map's browser-side popups (js_labels)
    "js_days_ago": ("天前", " d ago"),
    "js_hours_ago": ("小时前", " h ago"),
    "js_just_now": ("刚刚", "just now"),
    "js_domain": ("领域", "Domain"),
    "js_status": ("状态", "Status"),
    "js_grid": ("网格", "Grid"),
    "js_age": ("时长", "Age"),
    "js_closed": ("办结于", "Closed on"),
    "js_timeline": ("查看办理过程 ›", "Timeline ›"),
    # --- wall ---
    "wall_title": ("网格化管理中心", "Grid management centre"),
    "wall_today": ("今日", "Today"),
    "wall_month": ("本月", "This month"),
    "wall_total": ("累计", "Total"),
    "wall_found": ("发现", "Found"),
    "wall_closed": ("办结", "Closed"),
    "wall_rate": ("办结率", "Closure rate"),
    "wall_on_time": ("按期结案率", "On-time closure"),
    "wall_overdue_now": ("当前超期", "Overdue now"),
    "wall_new_today": ("今日新增", "New today"),
    "wall_handling": ("平均处置时长", "Avg. handling time"),
    "wall_hours": ("小时", "h"),
    "wall_feed": ("实时动态", "Live events"),
    "wall_ranking": ("本月排行（按期结案率）", "This month's ranking (on-time closure)"),
    "wall_rank_communities": ("社区", "Communities"),
    "wall_rank_blocks": ("楼院网格", "Blocks"),
    "wall_rank_top": ("前五", "Top 5"),
    "wall_rank_bottom": ("后五", "Bottom 5"),
    "wall_trend": ("近30天上报", "Reports, last 30 days"),
    "wall_fresh": ("数据更新于 {time}", "Data as of {time}"),
    "wall_live": ("● 实时推送", "● Live push"),
    "wall_polling": ("◐ 轮询模式", "◐ Polling"),
    "wall_outage": ("⚠ 数据中断 自 {time}", "⚠ Data interrupted since {time}"),
    "wall_stopped_title": ("已停用", "Stopped"),
    "wall_stopped_text": ("此大屏的显示令牌已停用或无效，请联系网格化管理中心重新开通。",
                          "This wall's display token is revoked or invalid; ask the centre for a new one."),
    "wall_need_token": ("请使用显示令牌打开大屏（gridwatch wall-url）",
                        "Open the wall with a display token (gridwatch wall-url)"),
    "wall_ev_report": ("新上报", "New report"),
    "wall_ev_assign": ("交办", "Assigned"),
    "wall_ev_close": ("办结", "Closed"),
    "wall_ev_rework": ("返工", "Rework"),
    "wall_ev_evaluate": ("评价", "Evaluated"),
    "wall_ev_overdue": ("超期", "Overdue"),
    "wall_legend_red": ("有超期", "Overdue work"),
    "wall_legend_amber": ("待办较多", "Much open work"),
    "wall_legend_green": ("正常", "Normal"),
    "wall_problem": ("问题", "Problems"),
    "wall_sentiment": ("社情", "Public sentiment"),
    "wall_tour": ("热点巡航：{name}（超期 {overdue}，在办 {open}）", "Hotspot: {name} ({overdue} overdue, {open} open)"),
    "wall_mom": ("环比", "MoM"),
}

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def norm_lang(lang: str | None) -> str:
    return lang if lang in LANGS else DEFAULT_LANG


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[0] if norm_lang(lang) == "zh" else pair[1]


def t(key: str, lang: str, **kw: object) -> str:
    s = _pick(TEXT[key], lang)
    return s.format(**kw) if kw else s


def status_label(status: str | None, lang: str) -> str:
    return _pick(STATUS_LABELS[status], lang) if status in STATUS_LABELS else (status or "—")


def action_label(action: str, lang: str) -> str:
    return _pick(ACTION_LABELS[action], lang) if action in ACTION_LABELS else action


def role_label(role: str, lang: str) -> str:
    return _pick(ROLE_LABELS[role], lang) if role in ROLE_LABELS else role


def chain_label(chain: str, lang: str) -> str:
    return _pick(CHAIN_LABELS[chain], lang) if chain in CHAIN_LABELS else chain


def kind_label(kind: str, lang: str) -> str:
    return _pick(KIND_LABELS[kind], lang) if kind in KIND_LABELS else kind


def fmt_int(n: int | float | None, lang: str) -> str:
    if n is None:
        return "—"
    return f"{round(n):,}"


def fmt_num(x: float | None, lang: str, digits: int = 1) -> str:
    if x is None:
        return "—"
    return f"{x:,.{digits}f}"


def fmt_pct(x: float | None, lang: str, digits: int = 1) -> str:
    if x is None:
        return "—"
    return f"{x * 100:.{digits}f}%"


def fmt_area(km2: float | None, lang: str) -> str:
    if km2 is None:
        return "—"
    return f"{km2:.2f} {t('km2', lang)}"


def fmt_dt(d: dt.datetime | None, lang: str, tz: ZoneInfo) -> str:
    """zh: 2026年11月27日 20:05; en: 27 Nov 2026 20:05 (business time zone)."""
    if d is None:
        return "—"
    loc = d.astimezone(tz)
    if norm_lang(lang) == "zh":
        return f"{loc.year}年{loc.month}月{loc.day}日 {loc:%H:%M}"
    return f"{loc.day} {_MONTHS[loc.month - 1]} {loc.year} {loc:%H:%M}"


def fmt_time(d: dt.datetime, lang: str, tz: ZoneInfo, seconds: bool = True) -> str:
    return f"{d.astimezone(tz):%H:%M:%S}" if seconds else f"{d.astimezone(tz):%H:%M}"


def level_label(level: int, lang: str) -> str:
    return t(f"level_{level}", lang)


def grid_name(names: tuple[str, str] | None, lang: str, fallback: str = "") -> str:
    if not names:
        return fallback
    return names[0] if norm_lang(lang) == "zh" else (names[1] or names[0])


def js_labels(lang: str, tz_name: str) -> dict[str, object]:
    """Texts the browser-side functions need (popups, legends), for the layers' hideout; dates are
    shown in the business time zone ``tz_name``."""
    lang = norm_lang(lang)
    return {
        "lang": lang,
        "tz": tz_name,
        "closedWord": t("js_closed", lang),
        "timelineLink": t("js_timeline", lang),
        "status": {s: status_label(s, lang) for s in STATUS_LABELS},
        "state": {"o": t("state_open", lang), "x": t("state_overdue", lang),
                  "c": t("state_closed", lang)},
        "kind": {"p": kind_label("problem", lang), "s": kind_label("sentiment", lang)},
        "age": [t("js_days_ago", lang), t("js_hours_ago", lang), t("js_just_now", lang)],
        "domain": t("js_domain", lang),
        "statusWord": t("js_status", lang),
        "gridWord": t("js_grid", lang),
        "ageWord": t("js_age", lang),
    }
