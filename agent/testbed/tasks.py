"""The paper's task kinds, executed for real.

CPU-intensive: ``transcode`` (video: compress generated frames with zlib, or with ffmpeg when it
is installed) and ``audio`` (audio processing: generated PCM, mixed down and lzma-encoded).
IO-intensive: ``file`` (write, fsync, read back and delete a file) and ``web`` (a page served
to the requester). ``units`` scales each task's work linearly.
"""

from __future__ import annotations

import hashlib
import lzma
import math
import os
import random
import shutil
import struct
import subprocess
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from freeoffload.errors import TestbedError

__all__ = ["KINDS", "TaskOutcome", "run_task", "web_page"]

FRAME_BYTES = 64 * 1024  # one generated frame (a small media-sized buffer)
AUDIO_SAMPLES = 8000  # one unit of audio: 8000 stereo 16-bit samples
FILE_BYTES = 1 << 20  # one unit of the file task: 1 MiB
WEB_BYTES = 64 * 1024  # one unit of a web page


@dataclass(frozen=True)
class TaskOutcome:
    kind: str
    units: int
    processing_ms: float
    bytes_out: int
    digest: str


_GRADIENT = bytes(((i * 7) >> 5) & 0xFF for i in range(FRAME_BYTES // 2))
_QUANTIZE = bytes(b & 0xF0 for b in range(256))


def _frame(seed: int) -> bytes:
    """A frame-like buffer: a smooth half and a noisy (quantised) half, compressing like video."""
    noise = random.Random(seed).randbytes(FRAME_BYTES // 2)  # noqa: S311 - media, not keys
    noise = noise.translate(_QUANTIZE)
    return _GRADIENT + noise


def _transcode(units: int, workdir: Path) -> tuple[int, str]:
    frames = [_frame(i) for i in range(units)]
    if shutil.which("ffmpeg"):
        raw = b"".join(frames)
        result = subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "gray",
             "-s", "256x256", "-i", "-", "-f", "mjpeg", "-"], input=raw, capture_output=True)
        if result.returncode == 0:
            return len(result.stdout), hashlib.sha256(result.stdout).hexdigest()[:16]
    digest = hashlib.sha256()
    size = 0
    for frame in frames:
        out = zlib.compress(frame, 9)
        digest.update(out)
        size += len(out)
    return size, digest.hexdigest()[:16]


def _audio(units: int, workdir: Path) -> tuple[int, str]:
    n = AUDIO_SAMPLES * units
    table = [int(12000 * math.sin(2 * math.pi * k / 64)) for k in range(64)]
    left = struct.pack(f"<{n}h", *(table[i & 63] for i in range(n)))
    right = struct.pack(f"<{n}h", *(table[(i * 3) & 63] // 2 for i in range(n)))
    mixed = bytes(a ^ b for a, b in zip(left[:4096], right[:4096], strict=True)) + left + right
    out = lzma.compress(mixed, preset=1)
    return len(out), hashlib.sha256(out).hexdigest()[:16]


def _file(units: int, workdir: Path) -> tuple[int, str]:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"task-{os.getpid()}-{time.monotonic_ns()}.bin"
    chunk = _frame(units)
    digest = hashlib.sha256()
    try:
        with path.open("wb") as out:
            for _ in range(units * FILE_BYTES // len(chunk)):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        with path.open("rb") as src:
            while block := src.read(1 << 16):
                digest.update(block)
    finally:
        path.unlink(missing_ok=True)
    return units * FILE_BYTES, digest.hexdigest()[:16]


def web_page(units: int) -> bytes:
    """The page a ``web`` task fetches: ``units`` x 64 KiB of HTML-like text."""
    line = b"<p>freeoffload testbed page: the quick brown fox jumps over the lazy dog</p>\n"
    return (line * (units * WEB_BYTES // len(line) + 1))[: units * WEB_BYTES]


def _web(units: int, workdir: Path) -> tuple[int, str]:
    page = web_page(units)
    return len(page), hashlib.sha256(page).hexdigest()[:16]


KINDS: dict[str, Callable[[int, Path], tuple[int, str]]] = {
    "transcode": _transcode,
    "audio": _audio,
    "file": _file,
    "web": _web,
}


def run_task(kind: str, units: int, workdir: Path) -> TaskOutcome:
    """Execute one task of ``kind``; raise TestbedError for an unknown kind or bad units."""
    work = KINDS.get(kind)
    if work is None:
        raise TestbedError(f"unknown task kind '{kind}'; expected one of: {', '.join(KINDS)}")
    if not 1 <= units <= 1000:
        raise TestbedError(f"units: {units} is out of range; expected 1 to 1000")
    start = time.perf_counter()
    size, digest = work(units, workdir)
    return TaskOutcome(kind, units, (time.perf_counter() - start) * 1000.0, size, digest)
