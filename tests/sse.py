"""A small Server-Sent Events client for the wall's tests and benchmark: reads a stream in a thread
over real HTTP (requests) and queues each message with the time it arrived."""
from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass

import requests


@dataclass
class Message:
    event: str
    data: str
    id: str | None
    at: float          # time.time() when the message's blank line arrived

    def json(self):
        return json.loads(self.data)


class SSEClient:
    def __init__(self, url: str, *, cookies: dict | None = None, headers: dict | None = None) -> None:
        self.url, self.cookies, self.headers = url, cookies or {}, headers or {}
        self.messages: queue.Queue[Message] = queue.Queue()
        self.comments = 0
        self.status: int | None = None
        self.opened = threading.Event()
        self.closed = threading.Event()
        self._resp = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> SSEClient:
        self._thread.start()
        self.opened.wait(10)
        return self

    def _run(self) -> None:
        try:
            with requests.get(self.url, cookies=self.cookies, headers=self.headers, stream=True, timeout=30) as r:
                self._resp = r
                self.status = r.status_code
                self.opened.set()
                if r.status_code != 200:
                    return
                ev, data, mid = "message", [], None
                buf = ""
                # each chunk as it arrives (the server sends one per message): reading byte by byte
                # cost this process's interpreter seconds per big ``state`` message and 20 walls
                # slowed the benchmark's own reporter
                for chunk in r.iter_content(chunk_size=None, decode_unicode=True):
                    buf += chunk
                    *lines, buf = buf.split("\n")
                    for raw in lines:
                        line = raw.rstrip("\r")
                        if line == "":
                            if data:
                                self.messages.put(Message(ev, "\n".join(data), mid, time.time()))
                            ev, data = "message", []
                        elif line.startswith(":"):
                            self.comments += 1
                        elif line.startswith("event:"):
                            ev = line[6:].strip()
                        elif line.startswith("data:"):
                            data.append(line[5:].lstrip())
                        elif line.startswith("id:"):
                            mid = line[3:].strip()
        except Exception:
            pass
        finally:
            self.opened.set()
            self.closed.set()

    def next(self, event: str | None = None, timeout: float = 10.0) -> Message | None:
        """The next message (of ``event``), or None after ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            try:
                m = self.messages.get(timeout=left)
            except queue.Empty:
                return None
            if event is None or m.event == event:
                return m
        return None

    def drain(self, seconds: float) -> list[Message]:
        """Every message arriving in the next ``seconds``."""
        out, end = [], time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                out.append(self.messages.get(timeout=left))
            except queue.Empty:
                break
        return out

    def close(self) -> None:
        if self._resp is not None:
            try:
                self._resp.close()
            except Exception:
                pass
