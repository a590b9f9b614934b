"""A brief libFuzzer run of load + verify + run (raw programs and ELF objects) under ASan and
UBSan, seeded with the conformance programs and our own cases. Longer on demand:
``FOVM_FUZZ_SECONDS=600 .venv/bin/python -m pytest tests/offload_vm/test_fuzz.py``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import need
from fovm_testlib import CONFORMANCE, DATA, parse

ROOT = Path(__file__).resolve().parents[2]
SECONDS = int(os.environ.get("FOVM_FUZZ_SECONDS", "20"))


def _seed(corpus: Path) -> int:
    corpus.mkdir()
    n = 0
    for path in [*sorted(CONFORMANCE.glob("*.data")), *sorted((DATA / "ok").glob("*.data"))]:
        case = parse(path)
        mem = bytes(case.mem())[:255]
        (corpus / f"{path.stem}").write_bytes(b"\0" + bytes([len(mem)]) + mem + case.program())
        n += 1
    for src in sorted((DATA / "elf").glob("*.c")):  # ELF objects: byte 0 odd
        obj = corpus.parent / f"{src.stem}.o"
        subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-c", str(src), "-o", str(obj)],
                       check=True)
        (corpus / f"elf-{src.stem}").write_bytes(b"\1" + obj.read_bytes())
        n += 1
    return n


@pytest.mark.slow
def test_fuzz_load_verify_run(tmp_path: Path) -> None:
    need(shutil.which("clang") is not None, "clang with libFuzzer (libclang-rt-14-dev)")
    exe = tmp_path / "fuzz_vm"
    build = subprocess.run(
        ["clang", "-std=c99", "-g", "-O1", "-fsanitize=fuzzer,address,undefined",
         "-fno-sanitize-recover=all", f"-I{ROOT / 'offload_vm' / 'include'}",
         f"-I{ROOT / 'offload_vm' / 'src'}", *map(str, sorted((ROOT / "offload_vm" / "src")
                                                               .glob("*.c"))),
         str(Path(__file__).resolve().parent / "c" / "fuzz_vm.c"), "-o", str(exe)],
        capture_output=True, text=True,
    )
    assert build.returncode == 0, build.stderr
    corpus = tmp_path / "corpus"
    assert _seed(corpus) > 300
    run = subprocess.run(
        [str(exe), f"-max_total_time={SECONDS}", "-max_len=16384", "-timeout=10",
         "-rss_limit_mb=2048", str(corpus)],
        capture_output=True, text=True, timeout=SECONDS + 300, cwd=tmp_path,
    )
    tail = run.stderr[-3000:]
    assert run.returncode == 0, tail
    assert "Done" in run.stderr, tail
