"""Stall benchmark: can 16 clients sending the worst inputs stall the server for a 17th?

Run with ``python -m bench stall`` (options: ``--requests N --warmup-s S --keep``). The demo dataset
is loaded fresh into a scratch database (``gridwatch_bench_stall``) on the configured server; the
server is started exactly as ``gridwatch serve`` starts it (a subprocess: waitress,
``settings.server_threads`` = 16 threads, the request limits), on a free loopback port.

Everyone is signed in as the server requires: the 17th client and the API attackers with a command
centre operator's bearer token (every grid: the widest scans), the Dash and tile attackers with that
account's web session cookie (the gate lets them through to the callbacks).

1. **Idle**: a 17th client sends ``GET /api/v1/issues`` (one page of 50, newest first) back to back
   over one keep-alive connection; p50/p95.
2. **Under attack**: 16 clients in closed loops (each sends its next request when the answer
   arrives), two per kind of worst input we could construct within the caps:
   - ``api_search``: ``/api/v1/issues`` with the longest allowed ``q`` made of LIKE wildcards (literal,
     matched by the bounded search: ``geodata.workflow.text_search``), every status and domain, the
     widest bbox and period, 200 a page, unindexed sort;
   - ``api_search_cjk``: the longest allowed ``q`` of CJK text, page 10 000 of 200 (a deep offset);
   - ``dash_search``: the search box's callback with the longest search text its guard allows (200
     characters of LIKE wildcards and CJK; longer is a 422);
   - ``dash_markers``: the markers callback for the whole world (every issue: aggregated cells);
   - ``heat_tiles``: zoom 10–13 heat tiles over the street with no data version (never cached) and
     a changing filter (the scale is computed every time);
   - ``big_body``: ``POST /api/v1/issues`` with the biggest allowed bodies, by turns: multipart with
     two photos just under the photo cap, or JSON just under the (lower) JSON cap with one base64
     photo; each photo a JPEG header and random bytes (read whole and opened, then refused);
   - ``long_url``: ``GET /api/v1/issues`` with every text parameter at its longest and a query string
     just under the cap;
   - ``slow_body``: a slowloris-ish client: headers, then a declared 1 MB body one byte at a time
     (waitress buffers it; no worker thread is held);
   while the 17th client measures again. Idle and attacked phases alternate (``--rounds``, 3 by
   default), so a busier moment of the machine weighs on both sides of the ratio. Reported: ratio of the p95s (target: ≤ 2×), the attackers'
   request counts and answers per kind.

Results go to ``bench/results/stall.json``.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import math
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
from sqlalchemy import Engine

RESULTS = Path(__file__).resolve().parent / "results" / "stall.json"
DB_NAME = "gridwatch_bench_stall"
ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 2.0
#: the longest search text the map's callback guard lets through (dashboard.pages.map.values)
SEARCH_CHARS = 200


def p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, math.ceil(0.95 * len(s)) - 1)]


def summary_ms(xs: list[float]) -> dict:
    return {"n": len(xs), "p50_ms": round(statistics.median(xs) * 1000, 1), "p95_ms": round(p95(xs) * 1000, 1),
            "max_ms": round(max(xs) * 1000, 1)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, var_dir: Path, port: int, env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    exe = ROOT / ".venv" / "bin" / "gridwatch"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "app"]
    from geodata.db.roles import APP_ROLE, role_url

    # served as in production: the app role (row-level security)
    env = {**os.environ, "GRIDWATCH_DATABASE_URL": role_url(url, APP_ROLE), "GRIDWATCH_VAR_DIR": str(var_dir),
           **(env_extra or {})}
    # the server's log goes to a file, never a pipe read only at the end: a full pipe blocks the
    # log handler's write, and every thread that logs then waits on the handler's lock (the
    # "unanswered for 120 s" of earlier runs was this harness, not the server)
    log = open(var_dir / "server.log", "w+", encoding="utf-8")   # noqa: SIM115 (read at the end)
    proc = subprocess.Popen([*cmd, "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=log, text=True)
    proc.log = log  # type: ignore[attr-defined]
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"gridwatch serve exited: {log.read()[-2000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/v1/meta", timeout=2).status_code == 200:
                return proc
        except requests.RequestException:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("gridwatch serve did not answer within 60 s")


def stop_server(proc: subprocess.Popen) -> str:
    """Stop a server :func:`start_server` started (kill it after 20 s); the text of its log."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    proc.log.seek(0)   # open still, though its folder may be gone
    text = proc.log.read()
    proc.log.close()
    return text


@contextmanager
def served_demo(label: str, env_extra: dict[str, str] | None = None
                ) -> Iterator[tuple[Engine, str, subprocess.Popen]]:
    """A scratch copy of the demo (``gridwatch_bench_<label>_…``) served by ``gridwatch serve`` in a
    process of its own, as in production: (an engine on it as the superuser, the server's base URL,
    the server's process).
    Afterwards the server is stopped and the database dropped."""
    import secrets
    import shutil

    from sqlalchemy import create_engine

    from bench.common import scratch_demo
    from geodata.db.admin import drop_database

    name = f"gridwatch_bench_{label}_{secrets.token_hex(3)}"
    admin, url = scratch_demo(name)
    owner = create_engine(url)
    var_dir = Path(tempfile.mkdtemp(prefix=f"gw-bench-{label}-"))
    proc = None
    try:
        port = free_port()
        proc = start_server(url, var_dir, port, env_extra)
        yield owner, f"http://127.0.0.1:{port}", proc
    finally:
        if proc is not None:
            stop_server(proc)
        owner.dispose()
        drop_database(admin, name)
        shutil.rmtree(var_dir, ignore_errors=True)


def victim(base: str, token: str, n: int) -> tuple[list[float], Counter]:
    import requests

    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    times, codes = [], Counter()
    for _ in range(n):
        t = time.perf_counter()
        r = s.get(f"{base}/api/v1/issues", timeout=60)
        times.append(time.perf_counter() - t)
        codes[r.status_code] += 1
    return times, codes


# -- the attackers ---------------------------------------------------------------------------------
def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


class Attack:
    def __init__(self, base: str, port: int, meta: dict, settings, center: tuple[float, float], token: str,
                 session_cookie: str):
        self.base, self.port, self.meta, self.settings, self.center = base, port, meta, settings, center
        self.token, self.session_cookie = token, session_cookie
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts: dict[str, Counter] = {}
        self.latency: dict[str, list[float]] = {}
        self.unanswered: list[tuple[str, str, float, float]] = []
        self.marks: list[tuple[str, float]] = []
        self.t0 = time.monotonic()

    def mark(self, what: str) -> None:
        self.marks.append((what, round(time.monotonic() - self.t0, 1)))

    def note(self, kind: str, status: int | str, seconds: float) -> None:
        with self.lock:
            self.counts.setdefault(kind, Counter())[str(status)] += 1
            self.latency.setdefault(kind, []).append(seconds)
            if not isinstance(status, int) and kind != "slow_body":
                # a request that got no answer at all: when it was sent, for the report
                self.unanswered.append((kind, str(status), round(time.monotonic() - seconds - self.t0, 1),
                                        round(seconds, 1)))

    def _client(self):
        """A signed-in client: the API's bearer token and the dashboard's session cookie."""
        import requests

        from dashboard.auth import SESSION_COOKIE

        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {self.token}"
        s.cookies.set(SESSION_COOKIE, self.session_cookie)
        return s

    def _loop(self, kind: str, make) -> None:
        import requests

        s = self._client()
        rng = random.Random(hash(kind) ^ threading.get_ident())
        while not self.stop.is_set():
            method, path, kw = make(rng)
            t = time.perf_counter()
            try:
                r = s.request(method, self.base + path, timeout=120, **kw)
                status: int | str = r.status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
                s = self._client()
            self.note(kind, status, time.perf_counter() - t)

    # each maker returns (method, path, requests kwargs)
    def api_search(self, rng):
        statuses = ",".join(s["code"] for s in self.meta["statuses"])
        domains = ",".join(d["code"] for d in self.meta["domains"])
        q = "".join(rng.choice("%_\\") for _ in range(100))
        return "GET", "/api/v1/issues", {"params": {
            "q": q, "status": statuses, "domain": domains, "bbox": "-179,-89,179,89", "from": "2000-01-01",
            "to": "2100-01-01", "page_size": 200, "sort": rng.choice(["-status", "due_at", "-updated_at"])}}

    def api_search_cjk(self, rng):
        q = "".join(rng.choice("网格社区楼院问题处理居民反映") for _ in range(100))
        return "GET", "/api/v1/issues", {"params": {"q": q, "page": 10_000, "page_size": 200, "sort": "status"}}

    def dash_payload(self, output: str, outputs, inputs: list, state: list, changed: list[str]) -> bytes:
        return orjson.dumps({"output": output, "outputs": outputs, "inputs": inputs, "state": state,
                             "changedPropIds": changed})

    def dash_search(self, rng):
        from dashboard.components import ids as app_ids
        from dashboard.pages.map import ids

        q = "".join(rng.choice("%_社区网格") for _ in range(SEARCH_CHARS))
        body = self.dash_payload(f"{ids.SEARCH}.options", {"id": ids.SEARCH, "property": "options"},
                                 [{"id": ids.SEARCH, "property": "search_value", "value": q}],
                                 [{"id": app_ids.LANG, "property": "value", "value": "zh"}],
                                 [f"{ids.SEARCH}.search_value"])
        return "POST", "/_dash-update-component", {"data": body, "headers": {"Content-Type": "application/json"}}

    def dash_markers(self, rng):
        from dashboard.components import ids as app_ids
        from dashboard.pages.map import ids

        outs = [(ids.L_MARKERS, "data"), (ids.L_BINS, "data"), (ids.MARKER_NOTE, "children")]
        flt = {"kind": None, "domains": [], "statuses": [], "preset": rng.choice([None, "year"]),
               "date_from": None, "date_to": None, "overdue_only": False, "metric": "overdue_open"}
        body = self.dash_payload(".." + "...".join(f"{i}.{p}" for i, p in outs) + "..",
                                 [{"id": i, "property": p} for i, p in outs],
                                 [{"id": ids.VIEW, "property": "data", "value": [[-89, -179], [89, 179]]},
                                  {"id": ids.FILTER, "property": "data", "value": flt},
                                  {"id": app_ids.STAMP, "property": "data", "value": str(rng.random())}],
                                 [{"id": ids.SELECTED, "property": "data", "value": None},
                                  {"id": app_ids.LANG, "property": "value", "value": "zh"}],
                                 [f"{ids.VIEW}.data"])
        return "POST", "/_dash-update-component", {"data": body, "headers": {"Content-Type": "application/json"}}

    def heat_tiles(self, rng):
        z = rng.choice([10, 11, 12, 13])
        x, y = _tile(*self.center, z)
        params = {"p": rng.choice(["week", "month", "quarter", "year"])}
        if rng.random() < 0.5:
            params["s"] = ",".join(rng.sample([s["code"] for s in self.meta["statuses"]], 3))
        return "GET", f"/tiles/heat/{z}/{x}/{y}.png", {"params": params}

    def big_body(self, rng):
        # made once each: the attacker's own CPU time must not be what slows the machine
        if getattr(self, "_big_bodies", None) is None:
            self._big_bodies = self._make_big_bodies(rng)
        return rng.choice(self._big_bodies)

    def _make_big_bodies(self, rng):
        """The biggest bodies the caps allow: multipart with two photos just under the photo cap
        (under the body cap), and JSON just under the JSON cap with one base64 photo. Each photo is
        a JPEG header and random bytes: it passes the type check and is read whole and opened
        before it is refused."""
        from urllib3 import encode_multipart_formdata

        cap, photo, jcap = self.settings.max_body_bytes, self.settings.max_photo_bytes, self.settings.max_json_bytes
        fields = {"kind": "problem", "domain": "sanitation", "title": "t", "lon": str(self.center[0]),
                  "lat": str(self.center[1])}
        jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
        raw = min(photo - 16, (cap - 8192) // 2)
        parts = list(fields.items()) + [("photos", (f"p{i}.jpg", jpeg + rng.randbytes(raw - len(jpeg)), "image/jpeg"))
                                        for i in range(2)]
        multi, ctype = encode_multipart_formdata(parts)
        assert len(multi) <= cap, len(multi)
        fields.update(lon=self.center[0], lat=self.center[1])
        empty = len(orjson.dumps({**fields, "photos": [{"content_type": "image/jpeg", "data": ""}]}))
        data = base64.b64encode(jpeg + rng.randbytes((jcap - empty - 64) * 3 // 4 - len(jpeg))).decode()
        js = orjson.dumps({**fields, "photos": [{"content_type": "image/jpeg", "data": data}]})
        assert len(js) <= jcap, len(js)
        return [("POST", "/api/v1/issues", {"data": multi, "headers": {"Content-Type": ctype}}),
                ("POST", "/api/v1/issues", {"data": js, "headers": {"Content-Type": "application/json"}})]

    def long_url(self, rng):
        params = {"status": ",".join(["reported"] * 22)[:200], "domain": ",".join(["sanitation"] * 27)[:300],
                  "grid": "4" * 14, "bbox": ("1" * 40 + ",") * 3 + "1" * 40, "q": "楼" * 100}
        from urllib.parse import urlencode

        qs = urlencode(params)
        pad = self.settings.max_query_chars - len(qs) - 10
        return "GET", "/api/v1/issues?" + qs + "&x=" + "y" * max(0, pad), {}

    def slow_body(self, kind: str) -> None:
        """Headers, then a declared 1 MB body a byte every 0.5 s; a new connection when one ends."""
        while not self.stop.is_set():
            t = time.perf_counter()
            status = "closed"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=60) as sock:
                    sock.sendall(b"POST /api/v1/issues HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 b"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{")
                    while not self.stop.wait(0.5):
                        sock.sendall(b" ")
                    status = "held until the end"
            except OSError as exc:
                status = type(exc).__name__
            self.note(kind, status, time.perf_counter() - t)

    KINDS = ("api_search", "api_search_cjk", "dash_search", "dash_markers", "heat_tiles", "big_body", "long_url",
             "slow_body")

    def start(self, kinds: tuple[str, ...] = KINDS) -> list[threading.Thread]:
        plan = [("api_search", self.api_search), ("api_search_cjk", self.api_search_cjk),
                ("dash_search", self.dash_search), ("dash_markers", self.dash_markers),
                ("heat_tiles", self.heat_tiles), ("big_body", self.big_body), ("long_url", self.long_url)]
        plan = [(k, m) for k, m in plan if k in kinds]
        plan = (plan * 16)[:14] if plan else []   # 14 request loops (+ 2 slow bodies): 16 clients
        threads = []
        for kind, make in plan:
            threads.append(threading.Thread(target=self._loop, args=(kind, make), daemon=True))
        if "slow_body" in kinds:
            threads += [threading.Thread(target=self.slow_body, args=("slow_body",), daemon=True) for _ in range(2)]
        for t in threads:
            t.start()
        return threads


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench stall")
    p.add_argument("--requests", type=int, default=200, help="victim requests per phase")
    p.add_argument("--rounds", type=int, default=3, help="alternating idle / attacked phases")
    p.add_argument("--warmup-s", type=float, default=5.0, help="attack time before the victim measures")
    p.add_argument("--keep", action="store_true", help="keep the scratch database")
    p.add_argument("--kinds", default=",".join(Attack.KINDS),
                   help="attack kinds, comma-separated (default: all): " + ", ".join(Attack.KINDS))
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)

    import requests
    from sqlalchemy import create_engine, text

    from bench.common import account, api_token, owner_engine, scratch_demo, web_session
    from geodata.db.admin import drop_database
    from geodata.settings import Settings

    admin, url = scratch_demo(DB_NAME)
    owner = owner_engine(url)
    operator = account(owner, "operator")
    token, cookie = api_token(owner, operator), web_session(owner, operator)
    owner.dispose()
    engine = create_engine(url)   # the superuser: the dataset's facts, no scope needed
    with engine.connect() as c:
        pg = c.execute(text("SHOW server_version")).scalar_one()
        issues = c.execute(text("SELECT count(*) FROM issue")).scalar_one()
        center = c.execute(text("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(geom) c FROM grid "
                                "WHERE level = 1 AND valid_to IS NULL LIMIT 1) s")).one()
    engine.dispose()
    settings = Settings(database_url=url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            proc = start_server(url, Path(tmp), port)
            meta = requests.get(f"{base}/api/v1/meta", timeout=10).json()
            # the victim is a process of its own: the 16 attacker threads here must not slow its
            # client side through this process's GIL (the server is what is measured)
            from concurrent.futures import ProcessPoolExecutor
            from multiprocessing import get_context

            victims = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))
            victims.submit(victim, base, token, 30).result()   # warm the server's caches and pool
            attack = Attack(base, port, meta, settings, (float(center[0]), float(center[1])), token, cookie)
            kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
            # idle and attacked phases alternate, so that a slower or busier moment of the machine
            # weighs on both sides of the ratio alike
            idle_times, busy_times, idle_codes, busy_codes, rounds = [], [], Counter(), Counter(), []
            attack_s, threads = 0.0, []
            for r in range(args.rounds):
                print(f"round {r + 1}/{args.rounds} idle: {args.requests} × GET /api/v1/issues …", flush=True)
                it, ic = victims.submit(victim, base, token, args.requests).result()
                attack.stop.clear()
                attack.mark(f"attack {r + 1}")
                threads = attack.start(kinds)
                print(f"round {r + 1}/{args.rounds} attack: {len(threads)} clients; measuring after "
                      f"{args.warmup_s:g} s …", flush=True)
                time.sleep(args.warmup_s)
                t0 = time.perf_counter()
                bt, bc = victims.submit(victim, base, token, args.requests).result()
                attack_s += time.perf_counter() - t0
                attack.mark(f"stop {r + 1}")
                attack.stop.set()
                for t in threads:
                    t.join(130)
                attack.mark(f"joined {r + 1}")
                idle_times += it
                busy_times += bt
                idle_codes.update(ic)
                busy_codes.update(bc)
                rounds.append(round(p95(bt) / p95(it), 2))
            victims.shutdown()
            alive = requests.get(f"{base}/api/v1/issues", timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}).status_code
    finally:
        stderr = stop_server(proc) if proc is not None else ""
        if not args.keep:
            drop_database(admin, DB_NAME)
    idle, busy = summary_ms(idle_times), summary_ms(busy_times)
    ratio = round(busy["p95_ms"] / idle["p95_ms"], 2)
    attackers = {k: {"requests": sum(c.values()), "answers": dict(c),
                     "p50_ms": round(statistics.median(attack.latency[k]) * 1000, 1),
                     "max_ms": round(max(attack.latency[k]) * 1000, 1)} for k, c in sorted(attack.counts.items())}
    log_lines = [ln for ln in (stderr or "").splitlines() if ln.strip()]
    result = {
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "postgres": pg},
        "server": {"how": "gridwatch serve (subprocess: waitress)", "threads": settings.server_threads,
                   "statement_timeout_s": settings.statement_timeout_s, "pool_timeout_s": settings.db_pool_timeout_s,
                   "max_body_bytes": settings.max_body_bytes,
                   "max_callback_bytes": settings.max_callback_bytes,
                   "max_query_chars": settings.max_query_chars},
        "dataset": {"issues": issues},
        "victim": {"client": "a process of its own (not the attackers')", "request": "GET /api/v1/issues (page of 50, keep-alive)", "idle": idle, "under_attack": busy,
                   "idle_answers": dict(idle_codes), "under_attack_answers": dict(busy_codes),
                   "p95_ratio": ratio, "round_ratios": rounds, "target_ratio": TARGET_RATIO, "within_target": ratio <= TARGET_RATIO},
        "attack": {"clients": len(threads), "seconds_measured": round(attack_s, 1), "kinds": attackers},
        "after_attack_status": alive,
        "unanswered": {"marks_s": attack.marks, "requests (kind, error, sent at s, waited s)": attack.unanswered},
        "server_log": {"lines": len(log_lines), "tracebacks": sum("Traceback" in ln for ln in log_lines),
                       "last": log_lines[-10:]},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"GET /api/v1/issues p95: idle {idle['p95_ms']} ms (p50 {idle['p50_ms']}), under attack by "
          f"{len(threads)} clients {busy['p95_ms']} ms (p50 {busy['p50_ms']}, max {busy['max_ms']}) → "
          f"{ratio}× (rounds {rounds}; target ≤ {TARGET_RATIO:g}×); victim answers {dict(busy_codes)}")
    for k, a in attackers.items():
        print(f"  {k:15s} {a['requests']:5d} requests, answers {a['answers']}, p50 {a['p50_ms']} ms, "
              f"max {a['max_ms']} ms")
    print(f"server log: {len(log_lines)} lines, {result['server_log']['tracebacks']} tracebacks; → {args.out}")
    return 0
