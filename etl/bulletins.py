"""Bulletins (月通报 / 季考核 / 年终考核): a PDF (A4, Chinese fonts: cover, KPI summary, ranking tables,
the score choropleth, charts, the 通报 list) and an Excel workbook (one sheet per table), made from
stored score snapshots (:mod:`geodata.assessment.store`) and stored with their bytes and inputs, so
an issued bulletin downloads again unchanged.

Rendering reads only the stored runs and the grid boundaries as of the runs' "data as of", so it
is deterministic: the same runs render the same bytes (PDF and workbook dates are the data's
time; the workbook's zip entries carry it too). The PDF font is Noto Sans CJK SC from Debian's
``fonts-noto-cjk`` (:func:`cjk_font`); charts are drawn with matplotlib (Agg, offline).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etl.progress import Steps
from geodata.access.scope import Scope
from geodata.assessment.indicators import By
from geodata.assessment.periods import Period
from geodata.assessment.registry import INDICATORS, SOURCES
from geodata.assessment.store import Run, load_run, run_assessment
from geodata.clock import zone
from geodata.errors import DomainError, not_found
from geodata.grids.store import valid_at
from geodata.models import AssessmentBulletin, Grid

#: the levels a bulletin ranks: grids of the level and the officials answering for them
LEVELS: dict[int, tuple[By, By]] = {3: (By.grid(3), By.official("grid_leader")),
                                    2: (By.grid(2), By.official("responsible"))}
FONT_DIRS = ("/usr/share/fonts/opentype/noto", "/usr/share/fonts/truetype/noto")
FONT_PACKAGE = "fonts-noto-cjk"
ISSUER = "三官庙街道网格化管理中心（长效办）"
#: the indicators of the KPI summary and the ranking tables
KPI = ("reported", "closed", "closure_rate", "on_time_rate", "overdue_open", "closed_late", "rework_rate",
       "extension_rate", "sign_on_time_rate", "handling_hours", "satisfaction", "reassignments",
       "patrol_coverage", "visits", "talks", "home_visits", "clinics")
RANK_COLUMNS = ("on_time_rate", "closure_rate", "overdue", "rework_events", "satisfaction", "patrol_coverage")


class BulletinError(DomainError):
    """The bulletin cannot be made (no font, bad level); the message is bilingual."""


def check_level(level: int) -> int:
    if level not in LEVELS:
        raise BulletinError("invalid_level", "通报层级须为 2（社区）或 3（楼院）", "the bulletin level must be 2 "
                            "(communities) or 3 (blocks)", field="level")
    return level


@lru_cache
def cjk_font(bold: bool = False) -> tuple[str, int]:
    """(path, index in the collection) of Noto Sans CJK SC; a bilingual error naming the Debian
    package when it is missing."""
    from fontTools.ttLib import TTCollection

    name = "NotoSansCJK-Bold.ttc" if bold else "NotoSansCJK-Regular.ttc"
    for d in FONT_DIRS:
        path = Path(d) / name
        if path.exists():
            fonts = TTCollection(str(path)).fonts
            for i, f in enumerate(fonts):
                if f["name"].getDebugName(1) == "Noto Sans CJK SC":
                    return str(path), i
    raise BulletinError("font_missing", f"缺少中文字体，请安装 {FONT_PACKAGE}（apt-get install {FONT_PACKAGE}）",
                        f"no Chinese font: install {FONT_PACKAGE} (apt-get install {FONT_PACKAGE})")


# -- formatting ---------------------------------------------------------------------------------------
def fmt(code: str, v: float | None) -> str:
    if v is None:
        return "—"
    ind = INDICATORS[code]
    if ind.unit == "percent":
        return f"{v:.2f}%"
    if ind.kind == "mean":
        return f"{v:.2f}"
    return f"{v:.0f}"


def fmt_change(code: str, v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:+.2f}{'个百分点' if INDICATORS[code].kind == 'rate' else '%'}"


# -- the snapshot a bulletin is made from --------------------------------------------------------------
@dataclass(frozen=True)
class Inputs:
    period: Period
    level: int
    street: Run
    grids: Run
    officials: Run
    #: the dashboard's address: each subject and number in the ranking tables links to its records
    #: on the assessment page (``/assessment?period=&level=&subject=&indicator=``); None: no links
    link_base: str | None = None

    @property
    def as_of(self) -> dt.datetime:
        return self.grids.as_of

    @property
    def run_ids(self) -> list[int]:
        return [self.street.id, self.grids.id, self.officials.id]


#: (bulletin level, the grids' table?) → the assessment page's level its links open
PAGE_LEVELS: dict[tuple[int, bool], str] = {(3, True): "grid:3", (3, False): "official:grid_leader", (2, True): "grid:2"}


def record_link(inp: Inputs, page_level: str, key: str, indicator: str | None = None) -> str | None:
    """The assessment page's address of a subject (its scorecard) or of one of its numbers (its records)."""
    from geodata.assessment.views import view_query

    if not inp.link_base:
        return None
    return f"{inp.link_base.rstrip('/')}/assessment{view_query(inp.period.key, page_level, key, indicator)}"


def _local(t: dt.datetime, tz: str) -> dt.datetime:
    return t.astimezone(zone(tz))


# -- charts (matplotlib, PNG bytes, deterministic) -----------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    path, _ = cjk_font()
    font_manager.fontManager.addfont(path)
    plt.rcParams.update({"font.family": "Noto Sans CJK SC", "axes.unicode_minus": False, "svg.hashsalt": "gw",
                         "figure.dpi": 110})
    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None}, bbox_inches="tight")
    fig.clf()
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def choropleth_png(session: Session, run: Run, level: int) -> bytes:
    """The score choropleth: each grid of ``level`` coloured by its final score (red low, green high)."""
    import shapely
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Polygon as MplPolygon

    plt = _plt()
    rows = session.execute(select(Grid.code, func.ST_AsBinary(Grid.geom)).where(
        Grid.level == level, valid_at(run.as_of)).order_by(Grid.code)).all()
    scores = {r.key: r.final for r in run.rows}
    fig, ax = plt.subplots(figsize=(7, 6))
    patches, colours = [], []
    cmap = plt.get_cmap("RdYlGn")
    for code, wkb in rows:
        geom = shapely.from_wkb(bytes(wkb))
        s = scores.get(code)
        for poly in getattr(geom, "geoms", [geom]):
            patches.append(MplPolygon(list(poly.exterior.coords), closed=True))
            colours.append((0.85, 0.85, 0.85, 1) if s is None else cmap(max(0.0, min(1.0, (s - 50) / 50))))
    ax.add_collection(PatchCollection(patches, facecolor=colours, edgecolor="white", linewidth=0.6))
    ax.autoscale_view()
    ax.set_aspect("equal")
    ax.set_axis_off()
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(50, 100))
    fig.colorbar(sm, ax=ax, shrink=0.7, label="综合得分 Score")
    ax.set_title(f"{run.period.label()} 网格综合得分")
    return _png(fig)


def ranking_png(run: Run, title: str) -> bytes:
    plt = _plt()
    rows = run.rows[:40]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.18 * len(rows) + 1)))
    names = [r.name for r in rows][::-1]
    vals = [r.final for r in rows][::-1]
    colours = ["#c0392b" if r.named else "#27ae60" if r.excellent else "#7f8c8d" for r in rows][::-1]
    ax.barh(range(len(rows)), vals, color=colours)
    ax.set_yticks(range(len(rows)), names, fontsize=6)
    ax.set_xlim(0, 100)
    ax.set_xlabel("综合得分 Score")
    ax.set_title(title)
    return _png(fig)


def kpi_png(street: Run) -> bytes:
    plt = _plt()
    ind = street.rows[0].indicators if street.rows else {}
    codes = ["closure_rate", "on_time_rate", "sign_on_time_rate", "rework_rate", "extension_rate", "patrol_coverage"]
    fig, ax = plt.subplots(figsize=(7, 3))
    width = 0.27
    for j, (part, label) in enumerate((("current", "本期"), ("mom", "上期（环比）"), ("yoy", "去年同期（同比）"))):
        vals = [(ind.get(part) or {}).get(c) or 0 for c in codes]
        ax.bar([i + (j - 1) * width for i in range(len(codes))], vals, width, label=label)
    ax.set_xticks(range(len(codes)), [INDICATORS[c].zh for c in codes], fontsize=8)
    ax.set_ylabel("%")
    ax.legend(fontsize=7)
    ax.set_title("主要指标 环比 / 同比")
    return _png(fig)


# -- PDF ---------------------------------------------------------------------------------------------
def render_pdf(session: Session, inp: Inputs) -> bytes:
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    tz = inp.grids.tz
    as_of = _local(inp.as_of, tz)
    pdf = FPDF(format="A4")
    pdf.set_creation_date(as_of)
    pdf.set_title(f"{inp.period.label()} 网格化管理考核通报")
    pdf.set_author(ISSUER)
    pdf.set_creator("Gridwatch")
    path, idx = cjk_font()
    bpath, bidx = cjk_font(bold=True)
    pdf.add_font("cjk", "", path, collection_font_number=idx)
    pdf.add_font("cjk", "B", bpath, collection_font_number=bidx)
    pdf.set_auto_page_break(True, margin=15)
    head = FontFace(emphasis="BOLD", fill_color=(230, 236, 245))

    def h1(text: str) -> None:
        pdf.set_font("cjk", "B", 15)
        pdf.cell(0, 10, text, new_x="LMARGIN", new_y="NEXT")

    def para(text: str, size: float = 10) -> None:
        pdf.set_font("cjk", "", size)
        pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")

    def table(header: list[str], rows: list[list[str]], widths: tuple | None = None, size: float = 8,
              links: list[list[str | None]] | None = None) -> None:
        pdf.set_font("cjk", "", size)
        with pdf.table(col_widths=widths, headings_style=head, line_height=5.5, text_align="CENTER",
                       first_row_as_headings=True) as t:
            t.row(header)
            for i, r in enumerate(rows):
                if not links:
                    t.row(r)
                    continue
                row = t.row()
                for text, link in zip(r, links[i], strict=True):
                    row.cell(text, link=link, style=linked if link else None)
        pdf.ln(3)

    linked = FontFace(color=(11, 78, 170))

    # cover
    pdf.add_page()
    pdf.ln(60)
    pdf.set_font("cjk", "B", 26)
    pdf.cell(0, 16, "网格化管理考核通报", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", "", 16)
    pdf.cell(0, 12, inp.period.label(), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 10, f"Grid management assessment bulletin · {inp.period.label('en')}", align="C",
             new_x="LMARGIN", new_y="NEXT")
    pdf.ln(30)
    pdf.set_font("cjk", "", 11)
    for line in (ISSUER, f"数据截至 Data as of：{as_of:%Y-%m-%d %H:%M}（{tz}）",
                 f"考核办法版本 Rules version：{inp.grids.rule_id}",
                 f"考核层级 Level：{'楼院（三级网格）' if inp.level == 3 else '社区（二级网格）'}"):
        pdf.cell(0, 8, line, align="C", new_x="LMARGIN", new_y="NEXT")

    # KPI summary
    pdf.add_page()
    h1("一、总体情况 KPI summary")
    ind = inp.street.rows[0].indicators if inp.street.rows else {"current": {}, "mom_change": {}, "yoy_change": {}}
    table(["指标 Indicator", "本期", "环比", "同比", "口径 Formula"],
          [[f"{INDICATORS[c].zh} {INDICATORS[c].en}", fmt(c, ind["current"].get(c)),
            fmt_change(c, ind["mom_change"].get(c)), fmt_change(c, ind["yoy_change"].get(c)), INDICATORS[c].formula_zh]
           for c in KPI], widths=(34, 16, 20, 20, 60), size=7.5)
    pdf.image(io.BytesIO(kpi_png(inp.street)), w=170)

    # rankings
    for title, run, who in (("二、网格排名 Grid ranking", inp.grids, "网格"),
                            ("三、人员排名 Officials' ranking", inp.officials, "人员")):
        pdf.add_page()
        h1(title)
        page_level = PAGE_LEVELS.get((inp.level, run is inp.grids))
        link = (lambda key, code=None, _lv=page_level: record_link(inp, _lv, key, code)) if page_level else None
        table(["名次", who, "综合得分", "定量", "定性", *[INDICATORS[c].zh for c in RANK_COLUMNS], "评定"],
              [[str(r.rank), r.name, f"{r.final:.2f}", f"{r.quantitative:.2f}",
                "—" if r.qualitative is None else f"{r.qualitative:.1f}",
                *[fmt(c, r.indicators["current"].get(c)) for c in RANK_COLUMNS],
                "优秀" if r.excellent else "通报" if r.named else ""] for r in run.rows],
              widths=(9, 42, 14, 12, 12, 16, 14, 10, 10, 12, 16, 10), size=6.5,
              links=[[None, link(r.key), None, None, None, *[link(r.key, c) for c in RANK_COLUMNS], None]
                     for r in run.rows] if link and inp.link_base else None)
        if run is inp.grids:
            pdf.image(io.BytesIO(choropleth_png(session, run, inp.level)), w=150)
        pdf.image(io.BytesIO(ranking_png(run, f"{who}综合得分")), w=160)

    # 优秀 and 通报
    pdf.add_page()
    h1("四、优秀网格与优秀网格长 Excellent")
    rules = inp.grids.rules
    para(f"按综合得分排名前 {rules.top_n} 位（并列者同列）评为优秀。")
    table(["类别", "名称", "名次", "综合得分"],
          [[k, r.name, str(r.rank), f"{r.final:.2f}"] for k, run in (("优秀网格", inp.grids), ("优秀网格长", inp.officials))
           for r in run.excellent], widths=(30, 90, 20, 30), size=9)
    h1("五、通报名单 Named for criticism")
    para(f"综合得分排名后 {rules.bottom_n} 位，以及问题应解决未解决、处置不力、推诿扯皮者，予以通报批评。")
    named = [[k, r.name, str(r.rank), f"{r.final:.2f}", "；".join(x["zh"] for x in r.reasons)]
             for k, run in (("网格", inp.grids), ("人员", inp.officials)) for r in run.named]
    table(["类别", "名称", "名次", "综合得分", "原因"], named or [["—", "无", "", "", ""]],
          widths=(15, 55, 15, 20, 75), size=8)
    h1("六、指标口径 Indicators")
    table(["指标", "公式", "来源"], [[f"{i.zh}", i.formula_zh, SOURCES[i.source][0]] for i in INDICATORS.values()],
          widths=(30, 115, 35), size=6.5)
    para("每个数字可在系统中追溯到其所依据的案件：排名表中的名称与指标数字链接到考核页面的对应记录"
         "（或在考核页面点击数字）。Every name and number in the ranking tables links to its records.", 8)
    return bytes(pdf.output())


# -- workbook ----------------------------------------------------------------------------------------
def render_xlsx(inp: Inputs) -> bytes:
    from openpyxl import Workbook

    as_of = _local(inp.as_of, inp.grids.tz)
    wb = Workbook()
    ws = wb.active
    ws.title = "总体情况"
    ind = inp.street.rows[0].indicators if inp.street.rows else {"current": {}, "mom_change": {}, "yoy_change": {}}
    ws.append(["指标代码 code", "指标", "Indicator", "本期", "环比", "同比", "单位", "公式"])
    for c in INDICATORS:
        i = INDICATORS[c]
        ws.append([c, i.zh, i.en, ind["current"].get(c), ind["mom_change"].get(c), ind["yoy_change"].get(c),
                   i.unit_label(), i.formula_zh])
    for title, run in (("网格排名", inp.grids), ("人员排名", inp.officials)):
        ws = wb.create_sheet(title)
        ws.append(["名次", "编码/工号", "名称", "综合得分", "定量得分", "定性得分", "优秀", "通报",
                   *[INDICATORS[c].zh for c in INDICATORS]])
        for r in run.rows:
            ws.append([r.rank, r.key, r.name, r.final, r.quantitative, r.qualitative, r.excellent, r.named,
                       *[r.indicators["current"].get(c) for c in INDICATORS]])
    ws = wb.create_sheet("通报名单")
    ws.append(["类别", "编码/工号", "名称", "名次", "综合得分", "原因", "Reasons"])
    for kind, run in (("网格", inp.grids), ("人员", inp.officials)):
        for r in run.named:
            ws.append([kind, r.key, r.name, r.rank, r.final, "；".join(x["zh"] for x in r.reasons),
                       "; ".join(x["en"] for x in r.reasons)])
    ws = wb.create_sheet("说明")
    for row in (["周期 Period", inp.period.key], ["数据截至 Data as of", as_of.isoformat()],
                ["考核办法版本 Rules version", inp.grids.rule_id], ["考核记录 Runs", ", ".join(map(str, inp.run_ids))],
                ["发布单位 Issuer", ISSUER]):
        ws.append(row)
    utc = inp.as_of.astimezone(dt.UTC).replace(tzinfo=None, microsecond=0)  # the workbook's dates are UTC
    wb.properties.created = utc
    wb.properties.creator = "Gridwatch"
    buf = io.BytesIO()
    wb.save(buf)
    return _fixed_zip(buf.getvalue(), utc, as_of.replace(tzinfo=None))


_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")


def _fixed_zip(data: bytes, utc: dt.datetime, local: dt.datetime) -> bytes:
    """The same zip with every entry's time set to the data's (local) time and the workbook's
    "modified" (which openpyxl stamps with the clock when saving) set to it, so the same runs
    render the same bytes."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    stamp = utc.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = _MODIFIED.sub(lambda m: m[1] + stamp + m[2], body)
            fixed = zipfile.ZipInfo(info.filename, date_time=local.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(fixed, body)
    return out.getvalue()


# -- issuing and downloading --------------------------------------------------------------------------
@dataclass(frozen=True)
class Issued:
    id: int
    period: str
    level: int
    pdf: bytes
    xlsx: bytes
    as_of: dt.datetime
    rule_id: int
    run_ids: list[int]

    def file_stem(self) -> str:
        return f"bulletin-{self.period}-L{self.level}-{self.id}"

    def write(self, out: Path) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / f"{self.file_stem()}.pdf", out / f"{self.file_stem()}.xlsx"]
        paths[0].write_bytes(self.pdf)
        paths[1].write_bytes(self.xlsx)
        return paths


def inputs_from_runs(period: Period, level: int, runs: list[Run]) -> Inputs:
    return Inputs(period, level, *runs)


def render(session: Session, inp: Inputs) -> tuple[bytes, bytes]:
    return render_pdf(session, inp), render_xlsx(inp)


def issue_bulletin(session: Session, scope: Scope, period: Period, *, level: int = 3, tz: ZoneInfo,
                   as_of: dt.datetime | None = None, rule_id: int | None = None,
                   progress: bool = False, link_base: str | None = None) -> Issued:
    """Score the period (street KPIs, grids and officials of ``level``), render the PDF and the
    workbook, store them with their inputs and return them. The caller commits."""
    check_level(level)
    cjk_font()  # fail before any work when the font is missing
    bar = Steps(progress, 6, "考核通报 bulletin")
    try:
        bar.step("街道指标 street KPIs")
        street = run_assessment(session, scope, period, By.grid(1), tz=tz, as_of=as_of, rule_id=rule_id)
        grids_by, officials_by = LEVELS[level]
        bar.step("网格评分 grid scores")
        grids = run_assessment(session, scope, period, grids_by, tz=tz, as_of=street.as_of, rule_id=street.rule_id)
        bar.step("人员评分 officials' scores")
        officials = run_assessment(session, scope, period, officials_by, tz=tz, as_of=street.as_of,
                                   rule_id=street.rule_id)
        inp = Inputs(period, level, street, grids, officials, link_base)
        bar.step("PDF")
        pdf = render_pdf(session, inp)
        bar.step("Excel")
        xlsx = render_xlsx(inp)
        row = AssessmentBulletin(period_key=period.key, level=level, rule_id=street.rule_id, as_of=street.as_of,
                                 run_ids=inp.run_ids, pdf=pdf, xlsx=xlsx, pdf_sha256=hashlib.sha256(pdf).hexdigest(),
                                 xlsx_sha256=hashlib.sha256(xlsx).hexdigest())
        session.add(row)
        session.flush()
        bar.step("完成 done")
    finally:
        bar.close()
    return Issued(row.id, period.key, level, pdf, xlsx, street.as_of, street.rule_id, inp.run_ids)


def get_bulletin(session: Session, bulletin_id: int) -> Issued:
    """An issued bulletin exactly as issued (its stored bytes)."""
    row = session.get(AssessmentBulletin, bulletin_id)
    if row is None:
        raise not_found("考核通报", "bulletin", bulletin_id, field="bulletin_id")
    return Issued(row.id, row.period_key, row.level, bytes(row.pdf), bytes(row.xlsx), row.as_of, row.rule_id,
                  list(row.run_ids))


def rerender(session: Session, bulletin_id: int, link_base: str | None = None) -> tuple[bytes, bytes]:
    """Render an issued bulletin again from its stored runs (equal to the stored bytes, given the
    same ``link_base``: rendering is deterministic)."""
    b = get_bulletin(session, bulletin_id)
    runs = [load_run(session, i) for i in b.run_ids]
    return render(session, Inputs(runs[0].period, b.level, *runs, link_base))
