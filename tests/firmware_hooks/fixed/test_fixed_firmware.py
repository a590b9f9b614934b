"""The example firmware with fixed hook points, built and run on the host and built for a
Cortex-M4: FO_HOOK_POINT and the instrumented name list both run the policy in the VM."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import need

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "firmware"
DATA = Path(__file__).parent / "data"


def _vm_core_present() -> bool:
    return any((ROOT / "offload_vm" / "src").glob("*.c"))


def _make(build: Path, target: str, *extra: str) -> subprocess.CompletedProcess[str]:
    need(shutil.which("clang") is not None, "clang compiles the policy")
    need(_vm_core_present(), "the VM core offload_vm/src/*.c")
    proc = subprocess.run(
        ["make", "-s", "-j2", "-C", str(EXAMPLE), f"BUILD={build}", target, *extra],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _run(binary: Path, *args: str) -> list[str]:
    proc = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


@pytest.fixture(scope="module")
def base_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = tmp_path_factory.mktemp("fw")
    _make(build, "host")
    return build


@pytest.fixture
def host_build(base_build: Path) -> Path:
    return base_build / "host" / "firmware"


def _variant(base: Path, tmp_path: Path) -> Path:
    """A copy of the base build: make rebuilds only what a changed setting touches."""
    build = tmp_path / "build"
    shutil.copytree(base, build)
    return build


def test_policy_drops_clamps_and_redirects_at_the_macro_hook_point(host_build: Path) -> None:
    out = _run(host_build)
    assert out[0] == "policy: installed (2 instrumented functions)"
    # readings 20, 170, 320, 470, 620: sensor 3 dropped, 620 clamped to 500, link 0 -> 1
    assert out[1:6] == [
        "tx link=1 sensor=0 value=20",
        "tx link=1 sensor=1 value=170",
        "tx link=1 sensor=2 value=320",
        "drop sensor=3",
        "tx link=1 sensor=4 value=500",
    ]
    assert "sent link0=0 link1=4" in out


def test_instrumented_functions_run_the_policy(host_build: Path) -> None:
    out = _run(host_build)
    # five samples; four transmissions (one reading dropped): counted by the policy's map
    assert "calls sample_sensor=5" in out
    assert "calls radio_tx=4" in out


def test_without_policy_the_firmware_behaves_as_unhooked(host_build: Path) -> None:
    out = _run(host_build, "--no-policy")
    assert out[:5] == [f"tx link=0 sensor={s} value={150 * s + 20}" for s in range(5)]
    assert "sent link0=5 link1=0" in out


def test_only_listed_functions_become_hook_points(base_build: Path, tmp_path: Path) -> None:
    build = _variant(base_build, tmp_path)
    _make(build, "host", "HOOK_FUNCTIONS=radio_tx")
    out = _run(build / "host" / "firmware")
    assert out[0] == "policy: installed (1 instrumented functions)"
    assert "calls sample_sensor=0" in out
    assert "calls radio_tx=4" in out


def test_a_faulting_policy_fails_open(base_build: Path, tmp_path: Path) -> None:
    build = _variant(base_build, tmp_path)
    _make(build, "host", f"POLICY_SRC={DATA / 'faulting_policy.c'}")
    out = _run(build / "host" / "firmware")
    lines = [line for line in out if line.startswith(("tx ", "drop ", "sent "))]
    assert lines == [f"tx link=0 sensor={s} value={150 * s + 20}" for s in range(5)] + [
        "sent link0=5 link1=0"
    ]


def test_cortex_m4_build(tmp_path: Path) -> None:
    need(shutil.which("arm-none-eabi-gcc") is not None, "arm-none-eabi-gcc (gcc-arm-none-eabi)")
    _make(tmp_path, "m4")
    elf = tmp_path / "m4" / "firmware.elf"
    header = elf.read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and header[4] == 1  # 32-bit
    assert int.from_bytes(header[18:20], "little") == 40  # EM_ARM
    symbols = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True,
                             check=True).stdout
    for name in ("__cyg_profile_func_enter", "fohook_fixed_run", "fovm_exec",
                 "fohook_policy_elf", "vector_table"):
        assert f" {name}\n" in symbols, name
    # the VM core and the hook runtime never allocate: everything lives in the static arena
    runtime = [o for o in (tmp_path / "m4").glob("*.o")
               if o.stem not in ("firmware", "startup_m4", "policy_blob")]
    assert any(o.stem == "fohook_fixed" for o in runtime) and len(runtime) > 2
    for obj in runtime:
        undefined = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True,
                                   text=True, check=True).stdout.split()
        assert not {"malloc", "calloc", "realloc", "free"} & set(undefined), obj.name


@pytest.mark.qemu
def test_the_same_firmware_runs_on_32_bit_arm_under_qemu(tmp_path: Path) -> None:
    """A Raspberry Pi (armhf) build: 32-bit pointers in the table, the VM in the arena."""
    cc = "arm-linux-gnueabihf-gcc"
    need(shutil.which(cc) is not None and shutil.which("qemu-arm") is not None,
         "gcc-arm-linux-gnueabihf and qemu-user")
    _make(tmp_path, "host", f"CC={cc}")
    proc = subprocess.run(["qemu-arm", "-L", "/usr/arm-linux-gnueabihf",
                           str(tmp_path / "host" / "firmware")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert "drop sensor=3" in out and "tx link=1 sensor=4 value=500" in out
    assert "calls sample_sensor=5" in out and "calls radio_tx=4" in out
