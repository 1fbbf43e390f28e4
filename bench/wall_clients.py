"""The walls of ``bench wall``, in a process of their own: N Server-Sent-Events clients of
``/wall/events``. Walls are browsers on other machines; in the benchmark's own process their reading
threads would share its interpreter lock with the reporter whose API times it measures.

    python -m bench.wall_clients URL DISPLAY_TOKEN N

Prints ``ready <statuses>`` once every stream is open; on a line on stdin, prints one JSON line: per
client, the arrival times (``time.time()``) of each feed event by issue number.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> None:
    url, token, n = argv[0], argv[1], int(argv[2])
    import os
    if os.environ.get("GW_NICE"):
        os.nice(int(os.environ["GW_NICE"]))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.sse import SSEClient

    clients = [SSEClient(url, cookies={"gw_wall": token}).start() for _ in range(n)]
    time.sleep(1.0)
    for c in clients:
        c.drain(0.05)
    print("ready", ",".join(str(c.status) for c in clients), flush=True)
    sys.stdin.readline()
    out = []
    for c in clients:
        got: dict[str, list[float]] = {}
        for m in c.drain(0.5):
            if m.event == "feed":
                got.setdefault(m.json()["number"], []).append(m.at)
            elif m.event == "state":
                got.setdefault("~state", []).append(m.at)
        out.append(got)
        c.close()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
