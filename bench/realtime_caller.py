"""The broadcast's API calls, from a process of their own (run by ``bench/realtime.py``).

A customer's backend is not the browser of its users: here the 1,000 WebSocket clients share one
event loop, and an API call made from that loop would wait for the loop to read the frames of
the previous send before it could even start. The baseline's ``group_send`` loop runs in a
process of its own too (``realtime_baseline_app.py publish``), so this keeps the two alike.

Protocol, one JSON document per line: in ``{"port": P, "together": bool, "calls": [{"host":
..., "token": ..., "body": {...}}, ...]}``; out ``{"calls": [{"start": t, "seconds": s,
"status": n, "body": ...}, ...]}``. ``start`` is ``time.perf_counter()`` (CLOCK_MONOTONIC on
Linux, so comparable with the parent's clock). Without ``together`` each call starts when the
previous one has its answer; with it, all start at once, one thread each. Connections are
opened before the clock starts. An empty line ends the process.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from typing import Any


def _call(conn: http.client.HTTPConnection, call: dict[str, Any]) -> dict[str, Any]:
    payload = json.dumps(call["body"]).encode()
    headers = {
        "Host": call["host"],
        "Authorization": f"Bearer {call['token']}",
        "Content-Type": "application/json",
    }
    start = time.perf_counter()
    conn.request("POST", "/api/v1/notifications", body=payload, headers=headers)
    response = conn.getresponse()
    data = response.read()
    seconds = time.perf_counter() - start
    try:
        body: Any = json.loads(data)
    except ValueError:
        body = data.decode(errors="replace")
    return {"start": start, "seconds": seconds, "status": response.status, "body": body}


def run(command: dict[str, Any]) -> dict[str, Any]:
    calls = command["calls"]
    conns = [http.client.HTTPConnection("127.0.0.1", command["port"], timeout=30) for _ in calls]
    for conn in conns:
        conn.connect()
    results: list[dict[str, Any] | None] = [None] * len(calls)
    try:
        if command.get("together"):

            def one(index: int) -> None:
                results[index] = _call(conns[index], calls[index])

            threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        else:
            for index, call in enumerate(calls):
                results[index] = _call(conns[index], call)
    finally:
        for conn in conns:
            conn.close()
    return {"calls": results}


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            return
        print(json.dumps(run(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
