"""hookgen.py: the HOOK_FUNCTIONS build step. Each kind of function it hooks, compiled and run
with a policy that decides on the arguments' values; each function it cannot hook refused with
the file, line and reason (data/bad/*.c state the listed names and the error they must give)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import need

ROOT = Path(__file__).resolve().parents[3]
HOOKGEN = ROOT / "firmware_hooks" / "fixed" / "hookgen.py"
OK = Path(__file__).parent / "data" / "ok"
BAD = Path(__file__).parent / "data" / "bad"
INCLUDES = [f"-I{ROOT / d}" for d in ("offload_vm/include", "offload_vm/src",
                                      "firmware_hooks/include")]
KINDS = ["scale", "pick", "note", "narrow", "choose", "choose_raw"]


def _hookgen(names: list[str], out: Path, source: Path, *flags: str,
             cc: str | None = None) -> subprocess.CompletedProcess[str]:
    need(shutil.which("clang") is not None, "clang parses the sources")
    cmd = [sys.executable, str(HOOKGEN), "--functions", " ".join(names), "--out-dir", str(out)]
    if cc:
        cmd += ["--cc", cc]
    return subprocess.run([*cmd, str(source), "--", *flags], capture_output=True, text=True,
                          timeout=120)


def _build_kinds(tmp_path: Path, cc: str, names: list[str]) -> tuple[Path, Path]:
    """kinds.c with ``names`` hooked, and its policy; built with ``cc``."""
    gen = tmp_path / "gen"
    proc = _hookgen(names, gen, OK / "kinds.c", "-DFOVM_STATIC", *INCLUDES, cc=cc)
    assert proc.returncode == 0, proc.stderr
    policy = tmp_path / "kinds_policy.o"
    subprocess.run(["clang", "-O2", "-target", "bpf", *INCLUDES, "-c",
                    str(OK / "kinds_policy.c"), "-o", str(policy)], check=True)
    binary = tmp_path / "kinds"
    vm = sorted(str(p) for p in (ROOT / "offload_vm" / "src").glob("*.c"))
    subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-Werror", "-DFOVM_STATIC", *INCLUDES,
                    "-iquote", str(OK), str(gen / "kinds.c"), str(gen / "fohook_list.c"),
                    str(ROOT / "firmware_hooks" / "fixed" / "fohook_fixed.c"), *vm,
                    "-o", str(binary)], check=True, timeout=300)
    return binary, policy


UNHOOKED = ["scale=-21", "scale_big=10000000000", "pick=first", "notes=5 tag=n", "narrow=200",
            "choose=14", "choose_raw=14", "untouched=42"]
# scale(-3, 7) refused with -1; scale(5e9, 2) with x halved; pick returns its second pointer;
# note's const level is not rewritten; narrow's enum rewritten to MODE_FAST; choose returns
# its second function pointer, choose_raw's flag flipped.
HOOKED = ["scale=-1", "scale_big=5000000000", "pick=second", "notes=5 tag=n", "narrow=201",
          "choose=21", "choose_raw=21", "untouched=42"]


def test_each_kind_of_function_gets_its_arguments_to_the_policy(tmp_path: Path) -> None:
    need(shutil.which("gcc") is not None, "gcc")
    binary, policy = _build_kinds(tmp_path, "gcc", KINDS)
    assert subprocess.run([str(binary)], capture_output=True, text=True,
                          check=True).stdout.splitlines() == UNHOOKED
    assert subprocess.run([str(binary), str(policy)], capture_output=True, text=True,
                          check=True).stdout.splitlines() == HOOKED


def test_the_generated_source_keeps_the_original_lines(tmp_path: Path) -> None:
    proc = _hookgen(KINDS, tmp_path, OK / "kinds.c", *INCLUDES)
    assert proc.returncode == 0, proc.stderr
    assert "hookgen: scale: hook point at " in proc.stdout
    generated = (tmp_path / "kinds.c").read_text().splitlines()
    original = (OK / "kinds.c").read_text().splitlines()
    body = generated[generated.index(f'#line 1 "{OK / "kinds.c"}"') + 1:]
    assert len(body) == len(original)
    changed = [i + 1 for i, (a, b) in enumerate(zip(body, original, strict=True)) if a != b]
    # one line per listed function (the one holding its "{"), nothing else
    assert len(changed) == len(KINDS)
    assert all(body[i - 1].startswith(original[i - 1]) for i in changed)
    assert "untouched" not in "".join(body[i - 1] for i in changed)


@pytest.mark.qemu
def test_32_bit_arm_widens_and_narrows_the_arguments(tmp_path: Path) -> None:
    """On armhf a long long takes two registers and a pointer 32 bits: the same results."""
    cc = "arm-linux-gnueabihf-gcc"
    need(shutil.which(cc) is not None and shutil.which("qemu-arm") is not None,
         "gcc-arm-linux-gnueabihf and qemu-user")
    binary, policy = _build_kinds(tmp_path, cc, KINDS)
    proc = subprocess.run(["qemu-arm", "-L", "/usr/arm-linux-gnueabihf", str(binary),
                           str(policy)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == HOOKED


def _bad_cases() -> list[Path]:
    return sorted(BAD.glob("*.c"))


@pytest.mark.parametrize("source", _bad_cases(), ids=lambda p: p.stem)
def test_a_function_that_cannot_be_hooked_is_refused_with_where_and_why(
        source: Path, tmp_path: Path) -> None:
    head = source.read_text().splitlines()[:2]
    names = re.fullmatch(r"/\* HOOK_FUNCTIONS = (.*) \*/", head[0])
    error = re.fullmatch(r"/\* error: (.*) \*/", head[1])
    assert names and error, f"{source.name}: the first two lines state the names and the error"
    expected = error.group(1).replace("bad/", f"{BAD}/").replace("(ok/", f"({OK}/")
    proc = _hookgen(names.group(1).split(), tmp_path / "gen", source)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"hookgen: {expected}"
    assert not (tmp_path / "gen").exists()  # nothing half-written


def test_a_missing_clang_is_named(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(HOOKGEN), "--functions", "scale", "--out-dir", str(tmp_path),
         "--clang", str(tmp_path / "no-clang"), str(OK / "kinds.c")],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"hookgen: {tmp_path / 'no-clang'}: cannot run it (")


STRICT = ["-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Wsign-conversion", "-Wshadow",
          "-Wcast-qual", "-Wcast-align", "-Wbad-function-cast", "-Wstrict-prototypes",
          "-Wundef", "-Wredundant-decls", "-Werror"]


@pytest.mark.parametrize("cc", ["gcc", "clang", "arm-none-eabi-gcc"])
@pytest.mark.parametrize("std", ["c99", "c11"])
def test_hook_points_compile_warning_free_under_strict_flags(cc: str, std: str,
                                                             tmp_path: Path) -> None:
    """The generated code lands in the firmware's own files, under the firmware's warnings."""
    need(shutil.which(cc) is not None, f"{cc} (.ci/install-deps)")
    proc = _hookgen(KINDS, tmp_path, OK / "kinds.c", *INCLUDES)
    assert proc.returncode == 0, proc.stderr
    arch = ["-mcpu=cortex-m4", "-mthumb"] if cc.startswith("arm-") else []
    build = subprocess.run([cc, *arch, "-O2", f"-std={std}", *STRICT, "-DFOVM_STATIC",
                            *INCLUDES, "-iquote", str(OK), "-c", str(tmp_path / "kinds.c"),
                            "-o", str(tmp_path / "kinds.o")], capture_output=True, text=True,
                           timeout=120)
    assert build.returncode == 0, build.stderr
