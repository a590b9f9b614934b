"""The testbed's task client: runs N tasks against task services and records completion times.

``python -m freeoffload.agent.testbed.client --kind audio --units 4 --count 50 --target IP:PORT``
(repeat ``--target`` to spread tasks round-robin) prints one JSON record per task. It is an
ordinary program: under ``freeoffload run`` its ``connect()`` calls go through the hook, and the
``X-FreeOffload-Node`` header of each answer says which node really served the task.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

__all__ = ["TaskRecord", "main", "run_batch", "run_one"]


@dataclass(frozen=True)
class TaskRecord:
    """One task: where it was sent, who served it, and how long it took (ms)."""

    index: int
    target: str
    node: str
    start_ms: float  # since the batch started
    completion_ms: float  # from the batch's start to this task's result
    latency_ms: float  # from this task's send to its result
    processing_ms: float
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def run_one(target: str, kind: str, units: int, timeout: float = 120.0) -> tuple[str, float, str]:
    """One task on ``target`` (``ip:port``): (serving node, processing ms, error or "")."""
    host, _, port = target.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        if kind == "web":
            conn.request("GET", f"/v1/task/web?units={units}")
        else:
            conn.request("POST", f"/v1/task/{kind}?units={units}", body=b"")
        response = conn.getresponse()
        body = response.read()
        node = response.getheader("X-FreeOffload-Node") or ""
        if response.status != 200:
            return node, 0.0, f"HTTP {response.status}: {body[:200]!r}"
        processing = json.loads(body).get("processing_ms", 0.0) if kind != "web" else 0.0
        return node, float(processing), ""
    except (OSError, http.client.HTTPException, ValueError) as err:
        return "", 0.0, f"{type(err).__name__}: {err}"
    finally:
        conn.close()


def run_batch(targets: Sequence[str], kind: str, units: int, count: int,
              concurrency: int = 0, timeout: float = 120.0) -> list[TaskRecord]:
    """Run ``count`` tasks, task i on ``targets[i % len(targets)]``, ``concurrency`` at a time
    (0: all at once, as a device that fires a burst); records in task order."""
    if not targets:
        raise ValueError("run_batch needs at least one target")
    records: list[TaskRecord | None] = [None] * count
    gate = threading.Semaphore(concurrency or count)
    t0 = time.perf_counter()

    def work(i: int) -> None:
        with gate:
            target = targets[i % len(targets)]
            sent = time.perf_counter()
            node, processing, error = run_one(target, kind, units, timeout)
            done = time.perf_counter()
            records[i] = TaskRecord(i, target, node, (sent - t0) * 1000, (done - t0) * 1000,
                                    (done - sent) * 1000, processing, error)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [r for r in records if r is not None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="freeoffload-testbed-client")
    parser.add_argument("--kind", default="audio")
    parser.add_argument("--units", type=int, default=1)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=0)
    parser.add_argument("--target", action="append", required=True, help="IP:PORT (repeatable)")
    args = parser.parse_args(argv)
    records = run_batch(args.target, args.kind, args.units, args.count, args.concurrency)
    for record in records:
        print(json.dumps(asdict(record)))
    return 0 if all(r.ok for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
