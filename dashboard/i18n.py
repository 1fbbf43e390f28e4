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
    # --- planner ---
    "no_page_access": ("该账号无权打开此页面", "This account may not open this page"),
    "planner_title": ("网格边界规划", "Grid boundary planner"),
    "planner_sub": ("整体拓扑编辑 · 保存为一个变更集", "edited as one topology · saved as one change set"),
    "planner_back": ("‹ 返回地图", "‹ Back to the map"),
    "planner_level": ("编辑层级", "Level to edit"),
    "planner_level_1": ("街道（一级）", "Street (level 1)"),
    "planner_level_2": ("社区（二级）", "Community (level 2)"),
    "planner_level_3": ("网格（三级）", "Block (level 3)"),
    "planner_snap": ("吸附容差", "Snap tolerance"),
    "planner_help": ("点击网格选中（Shift+点击选第二个用于合并）；拖动顶点，共用该顶点的网格一起移动；点击边中点加顶点；"
                     "右键顶点删除。", "Click a grid to select it (Shift+click a second one to merge); drag a vertex "
                     "and every grid sharing it moves; click an edge's midpoint to add a vertex; right-click a vertex "
                     "to delete it."),
    "planner_draw": ("画线（分割/细分）", "Draw a line (split / subdivide)"),
    "planner_split": ("按线分割", "Split by line"),
    "planner_subdivide": ("按线细分下级", "Subdivide by line"),
    "planner_merge": ("合并所选两个", "Merge the two selected"),
    "planner_move_to": ("移到社区…", "Move to community…"),
    "planner_move": ("移动网格", "Move block"),
    "planner_reset": ("放弃全部修改", "Discard all edits"),
    "planner_selected": ("已选：{codes}", "Selected: {codes}"),
    "planner_ops": ("操作：{ops}", "Operations: {ops}"),
    "planner_need_line": ("请先选中一个网格并画一条穿过它的线", "select one grid and draw a line across it first"),
    "planner_need_two": ("请选中两个相邻网格（Shift+点击）", "select two adjacent grids (Shift+click)"),
    "planner_need_target": ("请选中一个网格并选择目标社区", "select one grid and the community to move it to"),
    "planner_problems": ("校验", "Validation"),
    "planner_no_edit": ("尚无修改", "No edits yet"),
    "planner_valid": ("校验通过：没有问题", "Valid: no problems"),
    "planner_forbidden": ("该账号无权调整网格边界", "This account may not edit grid boundaries"),
    "planner_save_title": ("保存为变更集", "Save as a change set"),
    "planner_reason": ("调整原因（必填）", "Reason for the change (required)"),
    "planner_now": ("立即生效", "Effective now"),
    "planner_later": ("指定日期生效", "Effective on a later day"),
    "planner_save": ("保存", "Save"),
    "planner_saved": ("已保存变更集 #{id}（{n} 个网格，重新分配 {moved} 个未办结问题）",
                      "Saved change set #{id} ({n} grids, {moved} open issues re-assigned)"),
    "planner_reverted": ("已撤销变更集 #{id}（新变更集 #{new}）", "Reverted change set #{id} (new change set #{new})"),
    "planner_conflict_item": ("网格 {code}：变更集 #{cs}（{author}，{at}）", "grid {code}: change set #{cs} ({author}, {at})"),
    "planner_conflict_nothing": ("未写入任何内容。请放弃修改，基于最新边界重新编辑。",
                                 "Nothing was written. Discard the edits and edit the current boundaries again."),
    "planner_impact": ("影响预览", "Impact preview"),
    "planner_impact_summary": ("修改 {changed} 个、新增 {created} 个、撤销 {retired} 个网格；未办结问题 {open} 件、"
                               "历史问题 {past} 件所属网格将改变；{officials} 名人员的责任区域变化",
                               "{changed} grids changed, {created} created, {retired} retired; {open} open and {past} "
                               "past issues change grid; {officials} officials gain or lose area"),
    "planner_changed": ("修改", "changed"),
    "planner_created": ("新增", "created"),
    "planner_retired": ("撤销", "retired"),
    "planner_official": ("人员", "official"),
    "planner_issue_open": ("未办结问题", "open issue"),
    "planner_issue_past": ("历史问题", "past issue"),
    "planner_past_keeps": ("历史问题保留原网格", "a past issue keeps its grid"),
    "planner_gain_loss": ("增加 {gained}，减少 {lost}", "gains {gained}, loses {lost}"),
    "planner_takes_over": ("接替 {code}", "takes over {code}"),
    "planner_never_reused": ("编码不再使用", "code never reused"),
    "planner_col_what": ("类别", "What"),
    "planner_col_code": ("编码", "Code"),
    "planner_col_name": ("名称/编号", "Name / number"),
    "planner_col_before": ("之前", "Before"),
    "planner_col_after": ("之后", "After"),
    "planner_col_note": ("说明", "Note"),
    "planner_col_id": ("变更集", "Change set"),
    "planner_col_effective": ("生效时间", "Effective"),
    "planner_col_author": ("操作人", "Author"),
    "planner_col_reason": ("原因", "Reason"),
    "planner_col_grids": ("网格", "Grids"),
    "planner_col_moved": ("重新分配问题", "Issues moved"),
    "planner_col_gained": ("增加面积", "Area gained"),
    "planner_col_lost": ("减少面积", "Area lost"),
    "planner_history": ("历史", "History"),
    "planner_asof": ("某日的边界", "Boundaries as of"),
    "planner_pick_cs": ("选择变更集", "Pick a change set"),
    "planner_show_diff": ("在地图上显示差异", "Show the diff on the map"),
    "planner_revert": ("撤销该变更集", "Revert this change set"),
    # --- phone (the grid staff's app at /m/, dashboard/phone; keys m_*, shipped to the browser) ---
    "m_app": ("网格员", "Grid staff"),
    "m_html_title": ("网格员 Gridwatch", "Grid staff · Gridwatch"),
    "m_loading": ("加载中…", "Loading…"),
    "m_manifest_desc": ("网格员上报、任务、民情日记", "Grid staff: report, tasks, patrol diary"),
    "m_lang_switch": ("EN", "中文"),
    "m_online": ("在线", "Online"),
    "m_offline": ("离线", "Offline"),
    "m_sign_in": ("登录", "Sign in"),
    "m_login": ("账号", "Login"),
    "m_password": ("密码", "Password"),
    "m_signing_in": ("正在登录…", "Signing in…"),
    "m_sign_in_offline": ("离线时无法登录，请连网后再试", "You cannot sign in offline; connect and try again"),
    "m_sign_out": ("退出登录", "Sign out"),
    "m_signed_out_revoked": ("登录已失效，请重新登录", "Your sign-in has ended; sign in again"),
    "m_tab_report": ("上报", "Report"),
    "m_tab_tasks": ("任务", "Tasks"),
    "m_tab_diary": ("日记", "Diary"),
    "m_tab_contact": ("该找谁", "Who"),
    "m_tab_me": ("我的", "Me"),
    "m_report_title": ("上报", "Report"),
    "m_locating": ("正在定位…", "Locating…"),
    "m_accuracy": ("精度 ±{m} 米", "accuracy ±{m} m"),
    "m_no_gps": ("无法定位：{e}。可拖动地图上的标记选择位置", "No GPS fix: {e}. Drag the pin to the place"),
    "m_drag_hint": ("拖动标记可修正位置", "Drag the pin to correct the place"),
    "m_locate_again": ("重新定位", "Locate again"),
    "m_grid": ("所在网格", "Grid"),
    "m_grid_offline": ("离线：发送时确定网格", "Offline: the grid is found when sent"),
    "m_grid_outside": ("不在任何网格内", "Outside every grid"),
    "m_kind": ("类型", "Kind"),
    "m_kind_problem": ("问题", "Problem"),
    "m_kind_sentiment": ("社情", "Public sentiment"),
    "m_domain": ("领域", "Domain"),
    "m_title": ("标题", "Title"),
    "m_description": ("描述", "Description"),
    "m_photos": ("照片（最多 {n} 张）", "Photos (up to {n})"),
    "m_add_photo": ("拍照", "Take photo"),
    "m_remove": ("删除", "Remove"),
    "m_send": ("发送", "Send"),
    "m_required": ("请填写{f}", "Fill in {f}"),
    "m_no_location": ("还没有位置", "No location yet"),
    "m_queued": ("已保存，待发送", "Saved, waiting to send"),
    "m_sent": ("已发送：{n}", "Sent: {n}"),
    "m_queue": ("待发送", "Waiting to send"),
    "m_queue_empty": ("没有待发送的内容", "Nothing waiting to send"),
    "m_failed": ("发送失败", "Not accepted"),
    "m_retry_at": ("将于 {t} 重试", "retry at {t}"),
    "m_send_now": ("立即发送", "Send now"),
    "m_discard": ("放弃", "Discard"),
    "m_q_report": ("上报", "Report"),
    "m_q_transition": ("{a}", "{a}"),
    "m_q_diary": ("民情日记", "Patrol diary"),
    "m_q_track": ("轨迹 {n} 点", "Track, {n} points"),
    "m_q_end": ("结束巡查", "End of patrol"),
    "m_q_diary_report": ("据日记上报", "Report from diary"),
    "m_tasks_title": ("我的任务", "My tasks"),
    "m_tasks_empty": ("暂无任务", "No tasks"),
    "m_tasks_offline": ("离线：显示上次加载的任务", "Offline: tasks as last loaded"),
    "m_refresh": ("刷新", "Refresh"),
    "m_new": ("新", "new"),
    "m_overdue": ("已超期 {d}", "overdue by {d}"),
    "m_due_in": ("剩余 {d}", "{d} left"),
    "m_no_due": ("无期限", "no deadline"),
    "m_days": ("{n}天", "{n} d"),
    "m_hours": ("{n}小时", "{n} h"),
    "m_minutes": ("{n}分钟", "{n} min"),
    "m_back": ("返回", "Back"),
    "m_timeline": ("办理过程", "Timeline"),
    "m_note": ("说明", "Note"),
    "m_new_due": ("新期限", "New deadline"),
    "m_act_sign": ("签收", "Sign"),
    "m_act_handle": ("办理", "Handle"),
    "m_act_feedback": ("反馈", "Feed back"),
    "m_act_extend": ("延期", "Extend"),
    "m_act_request_extension": ("申请延期", "Ask for more time"),
    "m_asked": ("申请延至 {d}：{r}", "Asked for {d}: {r}"),
    "m_reason": ("理由", "Reason"),
    "m_no_actions": ("当前没有您可以执行的操作", "Nothing for you to do on it now"),
    "m_confirm": ("确定", "Confirm"),
    "m_cancel": ("取消", "Cancel"),
    "m_diary_title": ("民情日记", "Patrol diary"),
    "m_patrol_start": ("开始巡查", "Start patrol"),
    "m_patrol_stop": ("结束巡查", "End patrol"),
    "m_patrol_on": ("巡查中，已记录 {n} 个点", "Patrolling: {n} points recorded"),
    "m_households": ("走访住户", "Households visited"),
    "m_shops": ("走访商户", "Shops visited"),
    "m_firms": ("走访企业", "Firms visited"),
    "m_findings": ("发现情况", "Findings"),
    "m_today": ("今日记录", "Today"),
    "m_today_empty": ("今天还没有记录", "Nothing recorded today"),
    "m_report_finding": ("据此上报", "Report from this finding"),
    "m_contact_title": ("该找谁", "Who is responsible here"),
    "m_contact_here": ("按当前位置查询", "For where I stand"),
    "m_contact_none": ("此处不在任何网格内", "This place is in no grid"),
    "m_call": ("拨打", "Call"),
    "m_me_title": ("我的", "Me"),
    "m_language": ("语言", "Language"),
    "m_version": ("版本 {v}", "version {v}"),
    "m_error": ("出错：{e}", "Error: {e}"),
    # --- admin ---
    "admin_accounts": ("账号管理", "Accounts"),
    "admin_account": ("账号详情", "Account"),
    "admin_audit": ("审计日志", "Audit log"),
    "admin_forbidden": ("无权访问", "Not allowed"),
    "admin_forbidden_text": ("该账号无权使用管理页面", "This account may not use the administration pages"),
    "admin_name": ("姓名", "Name"),
    "admin_kind": ("类型", "Kind"),
    "admin_kind_user": ("用户", "User"),
    "admin_kind_display": ("大屏", "Display screen"),
    "admin_roles": ("角色与网格", "Roles and grids"),
    "admin_role": ("角色", "Role"),
    "admin_first_role": ("角色（可选）", "Role (optional)"),
    "admin_state": ("状态", "State"),
    "admin_last_sign_in": ("最近登录", "Last sign-in"),
    "admin_official": ("关联工作人员编号（可选）", "Linked official id (optional)"),
    "admin_official_linked": ("关联工作人员", "Linked official"),
    "admin_grid": ("网格编码", "Grid code"),
    "admin_grid_hint": ("14 位编码；留空为全部网格", "14 digits; empty: every grid"),
    "admin_all_grids": ("全部网格", "every grid"),
    "admin_create": ("新建账号", "New account"),
    "admin_create_submit": ("创建", "Create"),
    "admin_created_ok": ("账号已创建", "Account created"),
    "admin_password_once": ("初始密码（只显示这一次，请转交本人并要求其修改）：",
                            "Initial password (shown this once; hand it over and have it changed):"),
    "admin_token_once": ("API 令牌（只显示这一次）：", "API token (shown this once):"),
    "admin_grant": ("授予角色", "Grant the role"),
    "admin_revoke": ("撤销", "Revoke"),
    "admin_granted_ok": ("角色已授予", "Role granted"),
    "admin_revoked_ok": ("角色已撤销", "Role revoked"),
    "admin_actions": ("操作", "Actions"),
    "admin_disable": ("停用账号", "Disable the account"),
    "admin_enable": ("启用账号", "Enable the account"),
    "admin_disabled_ok": ("账号已停用，其会话已结束、令牌已吊销", "Account disabled; its sessions ended and its tokens were revoked"),
    "admin_enabled_ok": ("账号已启用", "Account enabled"),
    "admin_unlock": ("解除锁定", "Unlock"),
    "admin_unlocked_ok": ("已解除锁定", "Unlocked"),
    "admin_reset_password": ("重置密码", "Reset the password"),
    "admin_password_ok": ("密码已重置，该账号的会话已结束", "Password reset; the account's sessions ended"),
    "admin_tokens": ("API 令牌", "API tokens"),
    "admin_token_label": ("用途说明", "Label"),
    "admin_issue_token": ("签发令牌", "Issue a token"),
    "admin_token_ok": ("令牌已签发", "Token issued"),
    "admin_token_revoked_ok": ("令牌已吊销", "Token revoked"),
    "admin_created": ("创建时间", "Created"),
    "admin_last_used": ("最近使用", "Last used"),
    "admin_active": ("正常", "active"),
    "admin_revoked": ("已吊销", "revoked"),
    "admin_disabled": ("已停用", "disabled"),
    "admin_locked_until": ("锁定至 {t}", "locked until {t}"),
    "admin_default_password": ("初始密码未修改", "default password"),
    "admin_invalid_field": ("“{f}”填写有误", "Check the field “{f}”"),
    "admin_field_login": ("登录名", "login"),
    "admin_field_display_name": ("姓名", "name"),
    "admin_field_kind": ("类型", "kind"),
    "admin_field_official": ("关联工作人员编号（须为正整数）", "linked official id (a positive whole number)"),
    "admin_field_role": ("角色", "role"),
    "admin_field_grid": ("网格编码", "grid code"),
    "admin_field_label": ("用途说明", "label"),
    "admin_role_needed": ("填写了网格编码时须选择角色", "Choose a role for the grid code"),
    "admin_event": ("事件", "Event"),
    "admin_when": ("时间", "When"),
    "admin_by": ("操作人", "By"),
    "admin_detail": ("详情", "Detail"),
    "admin_filter": ("筛选", "Filter"),
    "admin_older": ("更早的记录", "Older entries"),
    "audit_sign_in": ("登录", "signed in"),
    "audit_sign_in_failed": ("登录失败", "sign-in failed"),
    "audit_sign_in_refused": ("登录被拒（锁定或等待）", "sign-in refused (locked or waiting)"),
    "audit_locked": ("账号锁定", "account locked"),
    "audit_sign_out": ("退出登录", "signed out"),
    "audit_password_changed": ("修改密码", "password changed"),
    "audit_password_set": ("设置密码", "password set"),
    "audit_token_issued": ("签发令牌", "token issued"),
    "audit_token_used": ("使用令牌", "token used"),
    "audit_token_revoked": ("吊销令牌", "token revoked"),
    "audit_account_created": ("创建账号", "account created"),
    "audit_account_disabled": ("停用账号", "account disabled"),
    "audit_account_enabled": ("启用账号", "account enabled"),
    "audit_role_granted": ("授予角色", "role granted"),
    "audit_role_revoked": ("撤销角色", "role revoked"),
    "audit_account_unlocked": ("解除锁定", "account unlocked"),
    "audit_personal_data_viewed": ("查看个人信息", "personal data viewed"),
    # --- assessment page ---
    "as_title": ("网格化管理考核", "Grid management assessment"),
    "as_to_map": ("返回地图", "Back to the map"),
    "as_refused_title": ("无权查看考核", "No access to the assessment"),
    "as_refused_text": ("考核排名仅向街道、社区领导、指挥中心和考核人员开放。",
                        "The assessment is open to the street's and communities' leaders, the command centre and assessors."),
    "as_period_kind": ("考核周期", "Period"),
    "as_kind_month": ("月", "Month"),
    "as_kind_quarter": ("季", "Quarter"),
    "as_kind_year": ("年", "Year"),
    "as_kind_custom": ("自定义", "Custom"),
    "as_level": ("考核层级", "Level"),
    "as_level_community": ("社区网格", "Communities"),
    "as_level_block": ("楼院网格", "Block grids"),
    "as_level_leader": ("网格长", "Grid leaders"),
    "as_ranking": ("综合排名", "Ranking"),
    "as_click_hint": ("点击任一指标数字，查看其对应案件", "Click any number to see the cases behind it"),
    "as_export_csv": ("导出 CSV", "Export CSV"),
    "as_export_xlsx": ("导出 Excel", "Export Excel"),
    "as_excellent": ("优秀网格 / 优秀网格长", "Excellent grids / grid leaders"),
    "as_named": ("通报名单", "Named for criticism (通报)"),
    "as_none": ("无", "None"),
    "as_excellent_mark": ("优秀", "Excellent"),
    "as_named_mark": ("通报", "Named"),
    "as_col_rank": ("名次", "Rank"),
    "as_col_grid": ("网格", "Grid"),
    "as_col_leader": ("网格长", "Grid leader"),
    "as_col_final": ("综合得分", "Final score"),
    "as_col_quant": ("定量得分", "Quantitative"),
    "as_col_qual": ("定性得分", "Qualitative"),
    "as_col_standing": ("评定", "Standing"),
    "as_pp_hint": ("与上期或上年同期相比的百分点变化", "change in percentage points from the previous period or a year earlier"),
    "as_pp": ("百分点", "percentage points"),
    "as_rule_version": ("考核办法第 {v} 版 · 定性权重 {w}%", "Rules version {v} · qualitative weight {w}%"),
    "as_trend_of": ("趋势指标", "Trend of"),
    "as_this_year": ("本期", "This period"),
    "as_all": ("全部", "all"),
    "as_trend_title": ("{ind}月度趋势（{who}）", "{ind} by month ({who})"),
    "as_changes_pick": ("点击排名中的一行，查看其环比 / 同比", "Click a row of the ranking to see its changes"),
    "as_changes_title": ("{who}：环比 / 同比（百分点）", "{who}: vs previous period / a year earlier (points)"),
    "as_scores_title": ("得分（前 {n} 名）", "Scores (top {n})"),
    "as_trace_title": ("{who} · {period} · {ind}：{v}", "{who} · {period} · {ind}: {v}"),
    "as_trace_count": ("计入的案件（记录）：{n} 件", "Records counted: {n}"),
    "as_trace_num": ("分子：{n} 件", "Numerator: {n}"),
    "as_trace_den": ("分母：{n} 件", "Denominator: {n}"),
    "as_trace_cut": ("仅列出前 {n} 条", "Only the first {n} are listed"),
    "as_t_id": ("编号", "No."),
    "as_t_title": ("标题 / 类型", "Title / kind"),
    "as_t_status": ("状态", "Status"),
    "as_t_when": ("时间", "When"),
    "as_t_grid": ("网格编码", "Grid code"),
    "as_q_title": ("定性评分", "Qualitative score"),
    "as_q_hint": ("考核人员按本周期为对象评定 0–100 分并填写评语，与定量得分按权重合成综合得分。",
                  "An assessor's 0–100 score with a comment for the period, combined with the quantitative score by weight."),
    "as_q_subject": ("考核对象", "Whom"),
    "as_q_score": ("定性得分（0–100）", "Score (0–100)"),
    "as_q_comment": ("评语", "Comment"),
    "as_q_save": ("保存定性评分", "Save the score"),
    "as_q_saved": ("已保存定性得分 {score}，综合得分已更新", "Saved the score {score}; the ranking is updated"),
    "as_q_forbidden": ("该账号无权评定定性得分", "This account may not enter qualitative scores"),
    "as_bulletin_pdf": ("签发本期通报（PDF）", "Issue the bulletin (PDF)"),
    "as_bulletin_xlsx": ("签发本期通报（Excel）", "Issue the bulletin (Excel)"),
    # --- map: the view in the URL (filters, layers) ---
    "url_ignored": ("链接中的无效参数已忽略：{fields}", "Invalid values in the link were ignored: {fields}"),
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
