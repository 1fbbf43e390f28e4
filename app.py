"""Gridwatch entry point: ``create_app(settings)`` (wiring only) and the ``gridwatch`` console script."""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click
import typer
from rich.console import Console

from geodata.settings import Settings, get_settings

console = Console()
cli = typer.Typer(help="Gridwatch 网格化管理地图 — database, data, and the dashboard server.",
                  no_args_is_help=True, add_completion=False)
db_cli = typer.Typer(help="The database: embedded PostGIS cluster or GRIDWATCH_DATABASE_URL.",
                     no_args_is_help=True)
cli.add_typer(db_cli, name="db")
grids_cli = typer.Typer(help="Boundary change sets 网格边界调整: propose from a file, apply, history.",
                        no_args_is_help=True)
cli.add_typer(grids_cli, name="grids")
user_cli = typer.Typer(help="Accounts: sign-in, roles, API tokens (账号、角色、令牌).", no_args_is_help=True)
cli.add_typer(user_cli, name="user")


def create_app(settings: Settings | None = None):
    """Build the Dash app (with the HTTP API on the same Flask server). Wiring only."""
    from dashboard import create_dash
    from dashboard.api import register_api
    from dashboard.phone import register_phone
    from geodata.db import get_engine

    settings = settings or get_settings()
    engine = get_engine(settings)
    dash_app = create_dash(settings, engine)
    register_api(dash_app.server, settings, engine)
    register_phone(dash_app.server, settings)   # the grid staff's phone app at /m/
    wire_bulletins(dash_app.server, settings, engine)
    wire_grid_import(dash_app.server)
    return dash_app


def wire_bulletins(server, settings: Settings, engine) -> None:
    """The assessment page's bulletin buttons → etl's bulletin builder (the dashboard does not import etl)."""
    from dashboard.pages.assessment import bulletin_route
    from etl.bulletins import issue_bulletin

    bulletin_route.install(server, settings, engine, issue_bulletin)


def wire_grid_import(server) -> None:
    """The boundary editor's upload → etl's file import as a proposal (the dashboard does not import
    etl); the file's problems come back as a DomainError listing them in ``detail["problems"]``."""
    from dashboard.pages.planner.callbacks import GRID_IMPORT
    from etl.grids_io import ImportOptions, ImportValidationError, propose_upload
    from geodata.errors import DomainError
    from geodata.grids.changesets import problem_data

    def propose(session, data: bytes, filename: str, *, level: int, reason: str, author, crs: str | None) -> int:
        try:
            pid, _draft = propose_upload(session, data, filename, ImportOptions(level=level, source_crs=crs),
                                         reason=reason, author=author)
        except ImportValidationError as exc:
            raise DomainError("invalid_file", f"文件有 {len(exc.problems)} 个问题，未保存",
                              f"the file has {len(exc.problems)} problem(s); nothing saved", field="file",
                              detail={"problems": [problem_data(p) for p in exc.problems]}) from None
        return pid

    server.extensions[GRID_IMPORT] = propose


def _engine(ready: bool = True):
    """The owner's engine on the database in use, for the CLI's jobs; ``ready``: first check it
    answers and is migrated."""
    from geodata.db import get_owner_engine
    from geodata.readiness import check_ready

    engine = get_owner_engine(get_settings())
    if ready:
        check_ready(engine)
    return engine


def _job():
    """One transaction of a CLI job: the owner, every grid (row-level security applies to the
    owner too, so the job says which scope it works in)."""
    from geodata.access.scope import Scope
    from geodata.db import session_scope

    return session_scope(_engine(), scope=Scope.everything())


def main() -> int:
    """The console script: ``cli`` with database and cluster problems said in one line, not a traceback."""
    import logging

    from sqlalchemy.exc import DBAPIError

    from geodata.db.cluster import ClusterError
    from geodata.errors import DomainError
    from geodata.readiness import DatabaseNotReady, classify

    # commands speak for themselves; the server's log lines (outage transitions, refusals) are for
    # `serve`, which configures logging (a handler here keeps Python's last-resort printer quiet)
    logging.getLogger("gridwatch").addHandler(logging.NullHandler())
    try:
        rv = cli(standalone_mode=False)
    except (DatabaseNotReady, DBAPIError) as exc:
        from geodata.db import database_url

        diagnosis = classify(exc, database_url(get_settings(), start=False))
        if diagnosis is None:
            raise
        console.print(f"[red]{diagnosis}[/red]", soft_wrap=True)
        return 2
    except DomainError as exc:   # a refused command (unknown login, bad role…): one line, zh + en
        console.print(f"[red]{exc.message_zh} / {exc.message_en}[/red]", soft_wrap=True, markup=True)
        return 2
    except ClusterError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "cluster error"
        console.print(f"[red]内置数据库无法启动 / the embedded database cannot start[/red]: {first} "
                      f"— see {get_settings().pg_dir / 'postgres.log'}", soft_wrap=True)
        return 2
    except click.exceptions.Abort:
        console.print("已取消 / aborted")
        return 130
    except click.exceptions.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return rv if isinstance(rv, int) else 0


# -- db -----------------------------------------------------------------------------------------
@db_cli.command("up")
def db_up() -> None:
    """Start the embedded cluster (initialise on first use; a cluster from before the two roles is
    upgraded in place) and migrate it. Harmless when running."""
    from geodata.db import database_url, migrate_database

    settings = get_settings()
    if not settings.embedded:
        console.print("[yellow]GRIDWATCH_DATABASE_URL 已设置，不启动内置数据库 / DATABASE_URL is set; "
                      "using that server[/yellow]")
    migrate_database(settings)
    console.print(f"[green]数据库就绪 / database ready[/green]: {_safe(database_url(settings))}")


@db_cli.command("down")
def db_down() -> None:
    """Stop the embedded cluster."""
    from geodata.db.cluster import Cluster

    settings = get_settings()
    if not settings.embedded:
        console.print("使用外部数据库，无需停止 / external database: nothing to stop")
        return
    Cluster(settings).down()
    console.print("内置数据库已停止 / embedded database stopped")


@db_cli.command("status")
def db_status() -> None:
    """Show where the database is and whether it is running and migrated."""
    from sqlalchemy.exc import DBAPIError

    from geodata.db.cluster import Cluster
    from geodata.db.migrate import current_revision, head_revision

    settings = get_settings()
    if settings.embedded:
        st = Cluster(settings).status()
        console.print(f"embedded cluster: data={st.data_dir} port={st.port} "
                      f"initialised={st.initialised} running={st.running} pid={st.pid}")
        if not st.running:
            raise typer.Exit(1)
        url = st.url
    else:
        url = settings.database_url or ""
        console.print(f"external database: {_safe(url)}")
    try:
        rev = current_revision(url)
    except DBAPIError as exc:
        from geodata.readiness import classify

        diagnosis = classify(exc, url)
        console.print(f"[red]{diagnosis or '无法连接 / cannot connect'}[/red]", soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(f"migration: {rev} (head {head_revision()})")


@db_cli.command("migrate")
def db_migrate(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default head), as the owner role."""
    from geodata.db import migrate_database

    migrate_database(get_settings(), revision)
    console.print("迁移完成 / migrated")


@db_cli.command("url")
def db_url() -> None:
    """Print the SQLAlchemy URL the app connects with (the app role, which owns nothing; no password)."""
    from geodata.db import database_url

    print(_safe(database_url(get_settings(), start=False)))


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# -- data ---------------------------------------------------------------------------------------
@cli.command()
def demo(
    end: str | None = typer.Option(None, help="last day of the year of records (YYYY-MM-DD); default today"),
    seed: int = typer.Option(20131, help="random seed; same seed and end date give identical data"),
    if_empty: bool = typer.Option(False, "--if-empty", help="do nothing when grids are already loaded"),
    notices: bool = typer.Option(True, "--notices/--no-notices",
                                 help="also write the last complete week's weekly notices to the outbox"),
    issues: int | None = typer.Option(None, "--issues", min=1,
                                      help="N issues in total: the demo year plus earlier years of history "
                                           "(copies of its closed issues with their events), e.g. 1000000"),
) -> None:
    """Load the synthetic 三官庙街道 demo dataset into an empty database (``--issues N``: grown to N
    issues of history; with ``--if-empty`` an already loaded demo is grown)."""
    from etl.demo import DemoError, load_demo
    from geodata.db import migrate_database

    migrate_database(get_settings())
    engine = _engine(ready=False)
    end_date = dt.date.fromisoformat(end) if end else None
    try:
        summary = load_demo(engine, end=end_date, seed=seed, progress=True, if_empty=if_empty,
                            weekly_notices=notices)
    except DemoError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(summary)
    if issues:
        from etl.demo_scale import ScaleError, grow_history

        try:
            grown = grow_history(engine, issues, progress=True)
        except ScaleError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        console.print(f"问题总数 issues: {grown['issues']:,} (+{grown['added']:,} in {grown['seconds']} s)")
    _demo_accounts(engine)


def _demo_accounts(engine) -> None:
    """Create the demo accounts (new passwords each time) and print them."""
    from rich.table import Table

    from etl.demo_accounts import ensure_demo_accounts
    from geodata.db import session_scope
    from geodata.vocab import ROLE_LABELS

    with session_scope(engine) as session:
        rows = ensure_demo_accounts(session)
    table = Table(title="演示账号（仅供演示，生产环境禁用）/ demo accounts (demo only; production refuses them)")
    for col in ("登录名 login", "密码 password", "角色 role", "网格 grid", "工作人员 official"):
        table.add_column(col)
    for r in rows:
        zh, en = ROLE_LABELS[r.role]
        table.add_row(r.login, r.password or "（已改密，未重置 / changed, kept）", f"{zh} {en}", r.grid_code or "全部 all",
                      str(r.official_id or "—"))
    console.print(table)


@cli.command("import-grids")
def import_grids_cmd(
    path: Path = typer.Argument(..., exists=True, help="GeoJSON, GeoPackage or Shapefile"),
    level: int = typer.Option(..., "--level", min=1, max=3, help="grid level: 1 street, 2 community, 3 block"),
    code_field: str | None = typer.Option(None, help="field holding the 14-digit grid code"),
    name_field: str | None = typer.Option(None, help="field holding the grid name"),
    parent_field: str | None = typer.Option(None, help="field holding the parent grid's code"),
    name_en_field: str | None = typer.Option(None, help="field holding the English name"),
    encoding: str | None = typer.Option(None, help="text encoding of the file (default: detect UTF-8/GBK)"),
    county_code: str | None = typer.Option(None, help="6-digit county code for generating missing codes"),
    street_code: str | None = typer.Option(None, help="3-digit street number for generated level-1/2 codes"),
    layer: str | None = typer.Option(None, help="layer name (GeoPackage)"),
    crs: str | None = typer.Option(None, help="source CRS when the file does not declare one, e.g. EPSG:4547"),
    gcj02: bool = typer.Option(False, "--gcj02", help="coordinates were traced from a GCJ-02 web map"),
    tolerance_m: float = typer.Option(1.0, help="gap/overlap tolerance between siblings, metres"),
    replace: bool = typer.Option(False, help="close current versions of the same codes and open new ones"),
) -> None:
    """Validate a boundary file and import it in one transaction (nothing is written on any error)."""
    from etl.grids_io import ImportOptions, ImportValidationError, import_grids

    opts = ImportOptions(level=level, code_field=code_field, name_field=name_field,
                         parent_field=parent_field, name_en_field=name_en_field, encoding=encoding,
                         county_code=county_code, street_code=street_code,
                         layer=layer, source_crs=crs, gcj02=gcj02, tolerance_m=tolerance_m,
                         replace=replace)
    try:
        with _job() as session:
            report = import_grids(session, path, opts)
    except ImportValidationError as exc:
        console.print(f"[red]导入失败，未写入任何数据 / import failed, nothing written[/red] ({len(exc.problems)}):")
        for p in exc.problems:
            console.print(f"  - {p}")
        raise typer.Exit(2) from None
    console.print(report)


@cli.command("assign-points")
def assign_points_cmd(
    src: Path = typer.Argument(..., exists=True, help="CSV with lon/lat columns, or a GeoJSON/GeoPackage/Shapefile point layer"),
    dst: Path = typer.Argument(..., help="output CSV: the input columns + grid_code, grid_name, community_code, community_name"),
    lon: str | None = typer.Option(None, help="longitude column (default: lon/lng/longitude/x/经度)"),
    lat: str | None = typer.Option(None, help="latitude column (default: lat/latitude/y/纬度)"),
    crs: str = typer.Option("wgs84", help="CSV coordinates: wgs84, cgcs2000 or gcj02 (files with a CRS use it)"),
    layer: str | None = typer.Option(None, help="layer name (GeoPackage)"),
) -> None:
    """Assign every point of a file to its block grid, set-wise in PostGIS (nothing written on any error)."""
    from etl.points_io import AssignPointsError, assign_points_file

    try:
        with _job() as session:
            report = assign_points_file(session, src, dst, lon=lon, lat=lat, crs=crs, layer=layer, progress=True)
    except AssignPointsError as exc:
        console.print(f"[red]分配失败，未写入任何数据 / assignment failed, nothing written[/red] ({len(exc.problems)}):")
        for p in exc.problems:
            console.print(f"  - {p}")
        raise typer.Exit(2) from None
    console.print(str(report))


@cli.command("export-grids")
def export_grids_cmd(
    path: Path = typer.Argument(..., help="output file: .geojson, .gpkg or .shp"),
    level: int | None = typer.Option(None, "--level", min=1, max=3),
    as_of: str | None = typer.Option(None, help="ISO timestamp; default now"),
) -> None:
    """Write current (or as-of) grids to GeoJSON, GeoPackage or Shapefile (UTF-8)."""
    from etl.grids_io import export_grids
    from geodata.clock import business_zone

    when = dt.datetime.fromisoformat(as_of) if as_of else None
    if when is not None and when.tzinfo is None:  # a time without offset is business time
        when = when.replace(tzinfo=business_zone(get_settings()))
    with _job() as session:
        n = export_grids(session, path, level=level, as_of=when)
    console.print(f"已导出 {n} 个网格 / exported {n} grids → {path}")


# -- grids: boundary change sets ----------------------------------------------------------------
def _cli_author():
    import getpass

    from geodata.grids.changesets import Author

    return Author(None, f"cli:{getpass.getuser()}"[:100])


def _when(value: str | None, name: str):
    """An ISO date or date-time (business time when without offset); a bad one is a one-line error."""
    from geodata.clock import business_zone
    from geodata.errors import DomainError

    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise DomainError("invalid_time", f"{name} 须为 ISO 8601 日期或时间：{value!r}",
                          f"{name} must be an ISO 8601 date or time: {value!r}", field=name) from None
    return when.replace(tzinfo=business_zone(get_settings())) if when.tzinfo is None else when


def _domain_line(exc) -> None:
    console.print(f"[red]{exc.message_zh} / {exc.message_en}[/red]", soft_wrap=True, markup=True)


def _print_impact(imp: dict) -> None:
    for c in imp["created"]:
        console.print(f"  新建 / created {c['code']} 「{c['name']}」 {c['area_m2']:.0f} m²"
                      + (f" (接替 / takes over {c['predecessor']})" if c["predecessor"] else ""), markup=False)
    for c in imp["changed"]:
        console.print(f"  调整 / changed {c['code']} 「{c['name']}」 {c['area_before_m2']:.0f} → {c['area_after_m2']:.0f} m² "
                      f"(+{c['gained_m2']:.0f} / −{c['lost_m2']:.0f})", markup=False)
    for c in imp["retired"]:
        console.print(f"  撤销 / retired {c['code']} 「{c['name']}」 {c['area_m2']:.0f} m²", markup=False)
    iss = imp["issues"]
    console.print(f"  事项改变网格 / issues whose grid changes: 未办结 open {iss['open']}，已办结 past {iss['past']}"
                  "（已办结事项保留原网格 / past issues keep their grid）", markup=False)
    for o in imp["officials"]:
        console.print(f"  人员 / official {o['name']} ({o['title']}, {o['grid_code']}): +{o['gained_m2']:.0f} / "
                      f"−{o['lost_m2']:.0f} m²", markup=False)


@grids_cli.command("propose")
def grids_propose(
    path: Path = typer.Argument(..., help="GeoJSON, GeoPackage or Shapefile (any CRS the import reads)"),
    level: int = typer.Option(..., "--level", min=1, max=3, help="grid level: 1 street, 2 community, 3 block"),
    reason: str = typer.Option(..., "--reason", help="why the boundaries change"),
    effective: str | None = typer.Option(None, "--effective", help="when it takes effect (default: when applied)"),
    code_field: str | None = typer.Option(None), name_field: str | None = typer.Option(None),
    parent_field: str | None = typer.Option(None), county_code: str | None = typer.Option(None),
    layer: str | None = typer.Option(None), crs: str | None = typer.Option(None),
    gcj02: bool = typer.Option(False, "--gcj02"), tolerance_m: float = typer.Option(1.0),
    retire_missing: bool = typer.Option(False, "--retire-missing",
                                        help="retire the current grids of the level (same parents) the file lacks"),
) -> None:
    """Validate FILE against the current tiling: print every problem and exit 2, or save it as a
    proposal, print its impact and, as the last word, the proposal id."""
    from etl.grids_io import ImportOptions, ImportValidationError, propose_file
    from geodata.errors import DomainError
    from geodata.grids import changesets

    try:
        opts = ImportOptions(level=level, code_field=code_field, name_field=name_field, parent_field=parent_field,
                             county_code=county_code, layer=layer, source_crs=crs, gcj02=gcj02,
                             tolerance_m=tolerance_m, at=_when(effective, "--effective"))
        with _job() as session:
            pid, draft = propose_file(session, path, opts, reason=reason, author=_cli_author(),
                                      retire_missing=retire_missing)
            imp = changesets.impact(session, draft, at=opts.at)
    except ImportValidationError as exc:
        console.print(f"[red]方案有 {len(exc.problems)} 个问题，未保存 / the proposal has {len(exc.problems)} "
                      "problem(s); nothing saved[/red]:")
        for p in exc.problems:
            console.print(f"  - {p}", markup=False)
        raise typer.Exit(2) from None
    except DomainError as exc:
        _domain_line(exc)
        raise typer.Exit(2) from None
    console.print(f"方案已保存，影响如下 / proposal saved; its impact ({path.name}):", markup=False)
    _print_impact(imp)
    print(pid)


@grids_cli.command("apply")
def grids_apply(proposal_id: int = typer.Argument(..., min=1),
                effective: str | None = typer.Option(None, "--effective", help="ISO date/time, now or later")) -> None:
    """Apply a proposal as one change set (atomically; open issues re-assigned when it takes effect)."""
    from geodata.errors import DomainError
    from geodata.grids import changesets

    try:
        with _job() as session:
            out = changesets.apply_proposal(session, proposal_id, _cli_author(), effective_at=_when(effective, "--effective"))
    except DomainError as exc:
        _domain_line(exc)
        for p in (exc.detail or {}).get("problems", []):
            console.print(f"  - {p['message_zh']} / {p['message_en']}", markup=False)
        raise typer.Exit(2) from None
    moved = out["issues_moved"]
    console.print(f"变更集 #{out['id']} 已应用，生效 {out['effective_at'].isoformat()} / change set #{out['id']} applied, "
                  f"effective {out['effective_at'].isoformat()}: " + ", ".join(f"{i['kind']} {i['code']}" for i in out["items"]),
                  markup=False)
    console.print(f"  重新分配未办结事项 / open issues re-assigned: {moved}" if moved is not None else
                  "  生效时重新分配未办结事项（gridwatch grids reassign-due）/ open issues are re-assigned when it takes "
                  "effect (gridwatch grids reassign-due)", markup=False)


@grids_cli.command("reassign-due")
def grids_reassign_due() -> None:
    """Re-assign the open issues of change sets whose effective time has come (run it from cron)."""
    from geodata.grids import changesets

    with _job() as session:
        done = changesets.reassign_due(session)
    console.print(f"已处理 {len(done)} 个变更集 / change sets caught up: {len(done)} "
                  + " ".join(f"#{i}:{n}" for i, n in done), markup=False)


@grids_cli.command("history")
def grids_history(code: str | None = typer.Argument(None, help="a grid code (default: every change set)"),
                  limit: int = typer.Option(50, min=1, max=1000)) -> None:
    """The change sets (of one grid: also its versions), newest first."""
    from geodata.grids import changesets, store

    with _job() as session:
        sets = changesets.change_sets(session, code, limit=limit)
        versions = store.grid_history(session, code) if code else []
    for v in versions:
        console.print(f"{v.code} v{v.id} 「{v.name}」 {v.valid_from.isoformat()} → "
                      f"{v.valid_to.isoformat() if v.valid_to else '现行 / current'} {v.area_m2:.0f} m²", markup=False)
    for c in sets:
        console.print(f"#{c['id']} {c['effective_at'].isoformat()} {c['author']}: {c['reason']} — "
                      + ", ".join(f"{i['kind']} {i['code']}" for i in c["items"])
                      + (f" (撤销 / reverts #{c['reverts_id']})" if c["reverts_id"] else ""), markup=False)
    if not sets and not versions:
        console.print("没有记录 / no history", markup=False)


@cli.command()
def bulletin(
    period: str | None = typer.Option(None, help="2026-10 (month), 2026Q3 (quarter), 2026 (year) or "
                                      "2026-10-01..2026-10-15"),
    level: int = typer.Option(3, "--level", help="3: blocks and grid leaders; 2: communities and the directly responsible"),
    out: Path = typer.Option(Path("."), "--out", help="directory for the PDF and the workbook"),
    as_of: str | None = typer.Option(None, "--as-of", help="data as of (ISO time; default now)"),
    bulletin_id: int | None = typer.Option(None, "--id", help="write an issued bulletin again, unchanged"),
) -> None:
    """Issue the assessment bulletin (考核通报) of a period: PDF + Excel, stored with their inputs."""
    from etl.bulletins import check_level, get_bulletin, issue_bulletin
    from geodata.access.scope import Scope
    from geodata.assessment.periods import parse_period
    from geodata.clock import business_zone
    from geodata.errors import DomainError

    tz = business_zone(get_settings())
    try:
        if bulletin_id is None and not period:
            raise DomainError("required", "请用 --period 指定考核周期（如 2026-10）",
                              "give the period with --period (e.g. 2026-10)", field="period")
        when = None
        if as_of:
            try:
                when = dt.datetime.fromisoformat(as_of)
            except ValueError:
                raise DomainError("invalid_as_of", f"--as-of “{as_of}” 不是有效时间",
                                  f"--as-of '{as_of}' is not an ISO time", field="as_of") from None
            when = when if when.tzinfo else when.replace(tzinfo=tz)
        chosen = parse_period(period) if bulletin_id is None else None   # checked before any database work
        check_level(level)
        with _job() as session:
            if chosen is None:
                issued = get_bulletin(session, bulletin_id)
            else:
                issued = issue_bulletin(session, Scope.everything(), chosen, level=level, tz=tz, as_of=when,
                                        progress=True, link_base=get_settings().site_base)
            paths = issued.write(out)
    except DomainError as exc:
        console.print(f"[red]{exc.message_zh} / {exc.message_en}[/red]", soft_wrap=True)
        raise typer.Exit(2) from None
    for p in paths:
        print(p)


@cli.command()
def start(host: str = typer.Option(None), port: int = typer.Option(None)) -> None:
    """One step for `make demo`: start/migrate the database, load the demo data if empty, serve."""
    from etl.demo import load_demo
    from geodata.db import migrate_database

    settings = get_settings()
    migrate_database(settings)
    engine = _engine(ready=False)
    summary = load_demo(engine, progress=True, if_empty=True, weekly_notices=True)
    console.print(summary)
    if not settings.production:
        _demo_accounts(engine)
    serve(host=host, port=port, debug=False)


@cli.command()
def serve(host: str = typer.Option(None), port: int = typer.Option(None),
          debug: bool = typer.Option(False)) -> None:
    """Serve the dashboard and the HTTP API."""
    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    from geodata.db import get_engine
    from geodata.readiness import check_ready

    check_ready(get_engine(settings))  # the database answers and is migrated, or one line says what to run
    if settings.production:
        _refuse_unsafe_accounts(_engine())
    import logging

    # one line per event, no request lines (nothing personal from query strings or bodies)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    console.print(f"Gridwatch: http://{host}:{port}/")
    if debug:
        app.run(host=host, port=port, debug=True)
        return
    # a production WSGI server: many wall displays and phones at once; it logs no request lines,
    # so nothing personal (query strings, bodies) reaches the logs. It reads each whole request
    # before a worker thread runs it (a slow client holds a connection slot, never a thread), big
    # bodies under one budget of settings.upload_bytes_per_s (dashboard.serving), and refuses,
    # before reading them, bodies over twice the app's cap (the app answers those up to that in
    # the API's error format, dashboard.api.limits) and headers over 64 KB.
    from dashboard.serving import make_server

    # the wall's live streams (Server-Sent Events) each hold a thread while open: they get their own
    # settings.wall_streams threads on top of the API's, and the wall caps its streams at that
    # (docs/wall.md), so 20 walls never take a thread from the API or the map
    make_server(app.server, upload_bytes_per_s=settings.upload_bytes_per_s, host=host, port=port,
                threads=settings.server_threads + settings.wall_streams, ident="gridwatch",
                channel_timeout=settings.channel_timeout_s, max_request_body_size=2 * settings.max_body_bytes,
                max_request_header_size=64 * 1024,
                # a big upload in 64 KB reads, not 8 KB ones (each read takes the interpreter's
                # lock back from the workers; 64 KB stays below malloc's mmap threshold)
                recv_bytes=64 * 1024).run()


def _refuse_unsafe_accounts(engine) -> None:
    """Production: no enabled account may sign in with a demo or default (generated) password."""
    from geodata.access.accounts import unsafe_accounts
    from geodata.db import session_scope

    with session_scope(engine) as session:
        logins = unsafe_accounts(session)
    if logins:
        names = ", ".join(logins)
        console.print(f"[red]生产模式拒绝启动：以下账号仍使用演示或初始密码（请用 gridwatch user passwd 修改，或 "
                      f"gridwatch user disable 停用）/ production: refusing to start while these accounts have a "
                      f"demo or default password (change with `gridwatch user passwd`, or disable): {names}[/red]",
                      soft_wrap=True)
        raise typer.Exit(2)


# -- user ---------------------------------------------------------------------------------------
def _read_password(from_stdin: bool) -> tuple[str, bool]:
    """(password, is it a generated default): the first line of stdin, or a new random one."""
    from geodata.access.accounts import generate_password

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    return generate_password(), True


@user_cli.command("add")
def user_add(
    login: str = typer.Argument(..., help="2–40 lowercase letters, digits, . _ -"),
    role: str = typer.Option(..., "--role", help="system_admin, operator, street_leader, community_leader, "
                             "platform_maintainer, sunk_member, grid_leader, handler, planner, assessor, display"),
    grid: str | None = typer.Option(None, "--grid", help="14-digit grid code the role applies to (and below); "
                                    "default every grid where the role allows it"),
    official: int | None = typer.Option(None, "--official", help="link to this official (their grid assignments "
                                        "give their workflow roles)"),
    name: str | None = typer.Option(None, "--name", help="display name (default: the official's name, or the login)"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from the first line of "
                                        "stdin; without it a random one is printed (and must be changed)"),
) -> None:
    """Create an account with one role (more with `user grant`)."""
    from geodata.access import accounts
    from geodata.db import session_scope

    kind = "display" if role == "display" else "user"
    password, default = _read_password(password_stdin)
    with session_scope(_engine()) as session:
        accounts.create_account(session, login, display_name=name, kind=kind, official_id=official,
                                password=password, password_is_default=default, grants=((role, grid),))
    console.print(f"已创建账号 / account created: {login.strip().lower()}")
    if default:
        console.print(f"初始密码（仅显示一次，请尽快修改）/ initial password (shown once; change it): {password}")


@user_cli.command("grant")
def user_grant(login: str = typer.Argument(...), role: str = typer.Option(..., "--role"),
               grid: str | None = typer.Option(None, "--grid")) -> None:
    """Grant one more role to an account."""
    from geodata.access import accounts
    from geodata.db import session_scope

    with session_scope(_engine()) as session:
        accounts.grant_role(session, accounts.account_id(session, login), role, grid)
    console.print(f"已授权 / granted: {login} {role} {grid or '*'}")


@user_cli.command("list")
def user_list() -> None:
    """Every account: kind, official, roles and grids, state (no secrets)."""
    from rich.table import Table

    from geodata.access import accounts
    from geodata.db import session_scope

    with session_scope(_engine()) as session:
        rows = accounts.list_accounts(session)
    table = Table()
    for col in ("login", "name", "kind", "official", "roles", "state"):
        table.add_column(col)
    for r in rows:
        state = ["disabled" if r["disabled"] else "enabled"]
        if r["demo"]:
            state.append("demo")
        if r["password_is_default"]:
            state.append("default password")
        if r["locked_until"] is not None:
            state.append(f"locked until {r['locked_until']:%Y-%m-%d %H:%M} UTC")
        table.add_row(r["login"], r["display_name"], r["kind"], str(r["official_id"] or "—"),
                      ", ".join(f"{role}@{grid or '*'}" for role, grid in r["grants"]), ", ".join(state))
    console.print(table)


@user_cli.command("disable")
def user_disable(login: str = typer.Argument(...),
                 enable: bool = typer.Option(False, "--enable", help="enable it again instead")) -> None:
    """Disable an account: its sessions end and its tokens are revoked (`--enable` undoes the disabling)."""
    from geodata.access import accounts
    from geodata.db import session_scope

    with session_scope(_engine()) as session:
        accounts.set_disabled(session, accounts.account_id(session, login), not enable)
    console.print(f"已{'启用' if enable else '停用'} / {'enabled' if enable else 'disabled'}: {login}")


@user_cli.command("passwd")
def user_passwd(login: str = typer.Argument(...),
                password_stdin: bool = typer.Option(False, "--password-stdin", help="read it from stdin; "
                                                    "without it a random one is printed (and must be changed)")) -> None:
    """Set an account's password (its sessions end; a lockout is lifted)."""
    from geodata.access import accounts
    from geodata.db import session_scope

    password, default = _read_password(password_stdin)
    with session_scope(_engine()) as session:
        accounts.set_password(session, accounts.account_id(session, login), password, default=default)
    console.print(f"密码已设置 / password set: {login}")
    if default:
        console.print(f"新密码（仅显示一次，请尽快修改）/ new password (shown once; change it): {password}")


@user_cli.command("token")
def user_token(login: str = typer.Argument(...), label: str = typer.Option("", "--label", help="what it is for")) -> None:
    """Issue a new API token for an account and print it (this once): `Authorization: Bearer <token>`."""
    from geodata.access import accounts
    from geodata.db import session_scope

    with session_scope(_engine()) as session:
        raw = accounts.issue_token(session, accounts.account_id(session, login), label)
    print(raw)


@cli.command("wall-url")
def wall_url(name: str = typer.Option("wall", "--name", help="the display account's login (made if missing)"),
             base_url: str = typer.Option(None, "--base-url", help="the server's address as the wall reaches it "
                                          "(default http://HOST:PORT from the settings)"),
             tour: int = typer.Option(None, "--tour", min=0, max=3600,
                                      help="this wall's seconds per hotspot (0: no tour; default the setting)"),
             lang: str = typer.Option(None, "--lang", help="this wall's language: zh (default) or en")) -> None:
    """A display token for a command-centre wall, printed as the URL to open (大屏地址): the display
    account NAME is made if missing (role display: never personal data); each run adds a new token
    (revoke one with the admin page or by disabling the account). The wall's own settings (--tour,
    --lang) go into the URL and stay in it when the token moves into the wall's cookie."""
    from urllib.parse import urlencode

    from geodata.access import accounts
    from geodata.db import session_scope
    from geodata.errors import ConflictError, NotFoundError

    if lang is not None and lang not in ("zh", "en"):
        raise typer.BadParameter("须为 zh 或 en / must be zh or en", param_hint="--lang")
    settings = get_settings()
    with session_scope(_engine()) as session:
        try:
            aid = accounts.account_id(session, name)
        except NotFoundError:
            aid = accounts.create_account(session, name, display_name=name, kind="display",
                                          grants=(("display", None),))
        if next(a for a in accounts.list_accounts(session) if a["id"] == aid)["kind"] != "display":
            raise ConflictError("not_a_display", f"账号“{name}”不是显示屏账号", f"the account '{name}' is no display screen",
                                field="name")
        raw = accounts.issue_token(session, aid, "wall")
    base = (base_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    extra = {k: v for k, v in (("tour", tour), ("lang", lang)) if v is not None}
    print(f"{base}/wall?token={raw}" + (f"&{urlencode(extra)}" if extra else ""))


if __name__ == "__main__":
    sys.exit(main())
