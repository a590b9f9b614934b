"""The atomic tasks every edge and cloud node serves, and the prober that times them.

``cpu``: compress and hash a generated media-like buffer (transcoding-like work). ``io``: write a
file, fsync it, read it back and remove it. A node answers each with its own processing time;
the prober (on centers) also measures the round trip, so processing delay becomes the node's
``Capability`` for that Type and the rest of the round trip the link's ``Latency`` (ms).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import random
import tempfile
import time
import zlib

__all__ = ["TASK_TYPES", "cpu_task", "io_task", "run_task"]

TASK_TYPES = ("cpu", "io")


@functools.cache
def _media(kib: int) -> bytes:
    """A media-sized buffer: half noise, half runs, so compression has real work to do."""
    rng = random.Random(kib)  # noqa: S311 - test data, not secrets
    chunks = []
    for _ in range(kib):
        noise = rng.randbytes(512)
        chunks.append(noise + bytes([noise[0]]) * 512)
    return b"".join(chunks)


def cpu_task(kib: int) -> float:
    """Compress and hash ``kib`` KiB; the processing time in ms."""
    data = _media(kib)
    started = time.perf_counter()
    packed = zlib.compress(data, 6)
    hashlib.sha256(packed).digest()
    zlib.decompress(packed)
    return (time.perf_counter() - started) * 1000.0


def io_task(kib: int, directory: str | None = None) -> float:
    """Write, fsync, read back and remove ``kib`` KiB; the processing time in ms."""
    data = _media(kib)
    started = time.perf_counter()
    fd, path = tempfile.mkstemp(prefix="freeoffload-io-", dir=directory)
    try:
        os.write(fd, data)
        os.fsync(fd)
        os.lseek(fd, 0, os.SEEK_SET)
        while os.read(fd, 1 << 20):
            pass
    finally:
        os.close(fd)
        os.unlink(path)
    return (time.perf_counter() - started) * 1000.0


async def run_task(kind: str, kib: int) -> float:
    """Run the atomic task ``kind`` off the event loop; its processing time in ms."""
    func = cpu_task if kind == "cpu" else io_task
    return round(await asyncio.to_thread(func, kib), 3)
