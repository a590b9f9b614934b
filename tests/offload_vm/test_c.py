"""The C core on its own: unit tests and the whole conformance suite in C under
-fsanitize=address,undefined, the switch interpreter, the hook's static build flags, the
aarch64 and armhf builds under qemu-user, and the freestanding Cortex-M4 build."""

from __future__ import annotations

import platform
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import need
from fovm_testlib import CONFORMANCE, DATA, parse

ROOT = Path(__file__).resolve().parents[2]
CORE = sorted((ROOT / "offload_vm" / "src").glob("*.c"))
INCLUDES = [f"-I{ROOT / 'offload_vm' / 'include'}", f"-I{ROOT / 'offload_vm' / 'src'}"]
TEST_C = Path(__file__).resolve().parent / "c"
WARN = ["-std=c99", "-Wall", "-Wextra", "-Werror"]


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The conformance programs, assembled, in the binary format fovm_test.c reads."""
    need(CONFORMANCE.is_dir(), f"the conformance suite under {CONFORMANCE}")
    out = tmp_path_factory.mktemp("cases") / "cases.bin"
    blob = bytearray()
    for path in sorted(CONFORMANCE.glob("*.data")):
        case = parse(path)
        program, mem, result = case.program(), case.mem(), case.result()
        assert result is not None
        blob += struct.pack("<IIQ", len(program), len(mem), result) + program + mem
    out.write_bytes(bytes(blob))
    return out


@pytest.fixture(scope="module")
def elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need(shutil.which("clang") is not None, "clang compiles eBPF objects")
    out = tmp_path_factory.mktemp("obj") / "maps.o"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-c", str(DATA / "elf" / "maps.c"),
                    "-o", str(out)], check=True)
    return out


def _build(cc: str, out: Path, *flags: str) -> Path:
    need(shutil.which(cc) is not None, f"{cc} is installed (.ci/install-deps)")
    cmd = [cc, *WARN, *flags, *INCLUDES, *map(str, CORE), str(TEST_C / "fovm_test.c"), "-o",
           str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


def _run(cmd: list[str], jit: bool = True) -> str:
    """Runs fovm_test: the suite in native code (where the VM compiles it) and interpreted."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first = "jit" if jit and platform.machine() == "x86_64" else "interpreter"
    assert f"conformance: 313/313 ({first})" in proc.stdout, proc.stdout
    assert "conformance: 313/313 (interpreter)" in proc.stdout, proc.stdout
    assert ", 0 failures" in proc.stdout
    return proc.stdout


def test_sanitizers(tmp_path: Path, cases: Path, elf: Path) -> None:
    exe = _build("gcc", tmp_path / "fovm_test", "-g", "-O1", "-fsanitize=address,undefined",
                 "-fno-sanitize-recover=all", "-fno-omit-frame-pointer")
    _run([str(exe), str(cases), str(elf)])


def test_switch_interpreter(tmp_path: Path, cases: Path, elf: Path) -> None:
    exe = _build("clang", tmp_path / "fovm_switch", "-O2", "-DFOVM_NO_THREADED",
                 "-fsanitize=undefined", "-fno-sanitize-recover=all")
    _run([str(exe), str(cases), str(elf)])


def test_static_hidden_build_exports_nothing(tmp_path: Path) -> None:
    """How the hook library and firmware embed the core: -DFOVM_STATIC -fvisibility=hidden."""
    objs = []
    for src in CORE:
        obj = tmp_path / f"{src.stem}.o"
        subprocess.run(["gcc", *WARN, "-O2", "-fPIC", "-DFOVM_STATIC", "-fvisibility=hidden",
                        *INCLUDES, "-c", str(src), "-o", str(obj)], check=True)
        objs.append(str(obj))
    lib = tmp_path / "libembed.so"
    subprocess.run(["gcc", "-shared", "-o", str(lib), *objs], check=True)
    dynsyms = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True,
                             text=True, check=True).stdout
    assert "fovm_" not in dynsyms


@pytest.mark.qemu
@pytest.mark.parametrize(
    ("cc", "qemu", "sysroot"),
    [
        ("aarch64-linux-gnu-gcc", "qemu-aarch64", "/usr/aarch64-linux-gnu"),
        ("arm-linux-gnueabihf-gcc", "qemu-arm", "/usr/arm-linux-gnueabihf"),
    ],
    ids=["aarch64", "armhf"],
)
def test_cross_under_qemu(tmp_path: Path, cases: Path, elf: Path, cc: str, qemu: str,
                          sysroot: str) -> None:
    need(shutil.which(qemu) is not None, f"{qemu} (qemu-user) is installed")
    exe = _build(cc, tmp_path / "fovm_test", "-O2")
    _run([qemu, "-L", sysroot, str(exe), str(cases), str(elf)], jit=False)


def test_cortex_m4_freestanding(tmp_path: Path) -> None:
    cc = "arm-none-eabi-gcc"
    need(shutil.which(cc) is not None, f"{cc} is installed (.ci/install-deps)")
    out = tmp_path / "firmware.elf"
    proc = subprocess.run(
        [cc, *WARN, "-O2", "-mcpu=cortex-m4", "-mthumb", "-ffreestanding", "-nostdlib",
         "-DFOVM_STATIC", "-fvisibility=hidden", "-ffunction-sections", *INCLUDES,
         *map(str, CORE), str(TEST_C / "firmware_m4.c"), "-Wl,--entry=fw_main",
         "-Wl,--gc-sections", "-lgcc", "-o", str(out)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr  # links without any libc
    size = subprocess.run(["arm-none-eabi-size", str(out)], capture_output=True, text=True,
                          check=True).stdout.splitlines()[1].split()
    assert int(size[0]) < 64 * 1024  # text fits a small microcontroller's flash
