"""The wall's live push: commit → wall receipt latency (p50/p95) over Server-Sent Events with 1 and
with 20 walls connected, and the API's ``POST /api/v1/issues`` p95 with no wall and with 20 — served
by ``gridwatch serve`` in a subprocess (waitress, server_threads + wall_streams threads, the app
role), on the demo; the reporter is this process, the walls another (bench/wall_clients.py).

A report is committed before its answer leaves the server, so a wall's receipt time minus the
moment the client *sent* the POST is an upper bound of commit → wall (it includes the report's own
request). Targets (issue 12): p95 ≤ 1 s; the API's p95 with 20 walls ≤ 1.5× its p95 with none.

The API with no wall and with 20 is measured in alternating rounds (none, 20, none, 20, …), so a
drift of the machine or the database during the run (autovacuum, the table growing by the reports
themselves) falls on both sides alike; the ratio is of the pooled p95s, each round's own ratio is
reported beside it. Writes bench/results/wall.json.

    python -m bench wall [--reports 80] [--walls 20] [--gap 0.25] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "wall.json"
ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="bench wall")
    ap.add_argument("--reports", type=int, default=80)
    ap.add_argument("--walls", type=int, default=20)
    ap.add_argument("--gap", type=float, default=0.25, help="seconds between reports")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of no wall and of --walls walls")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import requests

    from bench.bench_stall import served_demo
    from bench.common import account, api_token, pct

    # served by `gridwatch serve` in a process of its own (as in production); BENCH_WALL_ENV (JSON)
    # adds settings to it for A/B runs, e.g. '{"GRIDWATCH_WALL_STATE_MIN_S": "600"}'
    env = {"GRIDWATCH_BASEMAP_URL": "", "GRIDWATCH_WALL_TOUR_S": "0", **json.loads(os.environ.get("BENCH_WALL_ENV", "{}"))}
    with served_demo("wall", env) as (owner, base, _proc):
        reporter = {"Authorization": f"Bearer {api_token(owner, account(owner, 'operator'))}"}
        display = api_token(owner, account(owner, "display"))
        http = requests.Session()

        def post(i: int) -> tuple[float, float, str]:
            body = {"kind": "problem" if i % 3 else "sentiment", "domain": "sanitation", "title": f"大屏基准{i}",
                    "lon": 113.632, "lat": 34.752}
            t0 = time.time()
            r = http.post(f"{base}/api/v1/issues", json=body, headers=reporter, timeout=30)
            t1 = time.time()
            assert r.status_code == 201, r.text
            return t0, t1, r.json()["number"]

        def run(walls: int) -> dict:
            # the walls read in a process of their own (as browsers on other machines would)
            child = subprocess.Popen([sys.executable, "-m", "bench.wall_clients", f"{base}/wall/events", display, str(walls)],
                                     cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            ready = child.stdout.readline().split()
            assert ready[:1] == ["ready"] and set(ready[1].split(",")) == {"200"}, ready
            sent: dict[str, float] = {}
            api_ms: list[float] = []
            starts: list[float] = []
            for i in range(args.reports):
                t0, t1, number = post(i)
                sent[number] = t0
                api_ms.append((t1 - t0) * 1000)
                starts.append(t0)
                time.sleep(args.gap)
            time.sleep(3.0)
            out, _ = child.communicate("stop\n", timeout=120)
            lat, missing, dup = [], 0, 0
            walls_got = json.loads(out.strip().splitlines()[-1])
            states = walls_got[0].get("~state", []) if walls_got else []
            for got in walls_got:
                for number, t0 in sent.items():
                    if number not in got:
                        missing += 1
                        continue
                    dup += len(got[number]) - 1
                    lat.append((got[number][0] - t0) * 1000)
            time.sleep(3.0)   # the streams notice their closed sockets and give back their slots
            return {"walls": walls, "events": len(sent), "api_ms": api_ms, "received": len(lat), "missing": missing, "duplicates": dup,
                    "p50_ms": round(pct(lat, 0.5), 1), "p95_ms": round(pct(lat, 0.95), 1), "max_ms": round(max(lat), 1),
                    "api_p50_ms": round(statistics.median(api_ms), 1), "api_p95_ms": round(pct(api_ms, 0.95), 1),
                    # the slowest reports, each with how far (ms) the nearest state push to a wall was
                    "api_slowest": [{"ms": round(ms, 1), "state_push_ms": round(min((abs(t - t0) * 1000 for t in states),
                                                                                    default=float("nan")))}
                                    for ms, t0 in sorted(zip(api_ms, starts, strict=True), reverse=True)[:5]]}

        for i in range(5):      # warm-up: caches, pools
            post(10_000 + i)

        def idle(r: int) -> list[float]:
            out = []
            for i in range(args.reports):
                t0, t1, _ = post(20_000 + 1000 * r + i)
                out.append((t1 - t0) * 1000)
                time.sleep(args.gap)
            return out

        one = run(1)
        rounds, idle_api, many_api, many_runs = [], [], [], []
        for r in range(args.rounds):
            none_ms = idle(r)
            many = run(args.walls)
            idle_api += none_ms
            many_api += many.pop("api_ms")
            many_runs.append(many)
            rounds.append({"api_no_wall_p95_ms": round(pct(none_ms, 0.95), 1), "api_many_p95_ms": many["api_p95_ms"],
                           "ratio": round(many["api_p95_ms"] / pct(none_ms, 0.95), 2)})
        one.pop("api_ms")
        many = {k: sum(m[k] for m in many_runs) for k in ("events", "received", "missing", "duplicates")}
        many.update(walls=args.walls, p50_ms=max(m["p50_ms"] for m in many_runs),
                    p95_ms=max(m["p95_ms"] for m in many_runs), max_ms=max(m["max_ms"] for m in many_runs),
                    api_p50_ms=round(statistics.median(many_api), 1), api_p95_ms=round(pct(many_api, 0.95), 1),
                    api_slowest=sorted((x for m in many_runs for x in m["api_slowest"]), key=lambda x: -x["ms"])[:5])
        result = {
            "one_wall": one, "many_walls": many, "rounds": rounds,
            "api_no_wall_p95_ms": round(pct(idle_api, 0.95), 1),
            "api_p95_ratio_many_vs_none": round(many["api_p95_ms"] / pct(idle_api, 0.95), 2),
            "latency_p95_ratio_many_vs_one": round(many["p95_ms"] / one["p95_ms"], 2),
            "targets": {"p95_ms": 1000, "api_ratio": 1.5},
        }
        result["ok"] = (one["p95_ms"] <= 1000 and many["p95_ms"] <= 1000 and not one["missing"] and not many["missing"]
                        and not one["duplicates"] and not many["duplicates"] and result["api_p95_ratio_many_vs_none"] <= 1.5)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, ensure_ascii=False, indent=2))
        print(json.dumps(result, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
