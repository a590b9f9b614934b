"""The example firmware with fixed hook points, built and run on the host, on 32-bit Arm Linux
(qemu-user) and on a Cortex-M4 board (qemu-system-arm -M mps2-an386): FO_HOOK_POINT and the
HOOK_FUNCTIONS name list both run the policy in the VM on the call's arguments."""

from __future__ import annotations

import os
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


def _run(binary: Path, *args: str, env: dict[str, str] | None = None) -> list[str]:
    proc = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=30,
                          env=None if env is None else {**os.environ, **env})
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


# What examples/firmware/policy.c does to the five readings (20, 170, 320, 470, 620 on link 0):
# sample_sensor(1) reads the spare sensor 2 (listed: argument rewrite); radio_tx refuses values
# below 100 (listed: drop with a return code) and relabels "raw" as "mV" (listed: pointer
# argument); send_reading drops sensor 3, clamps at 500 and moves link 0 to 1 (macro).
WITH_POLICY = [
    "policy: installed (2 instrumented functions)",
    "send sensor=0 rc=-11",
    "tx link=1 sensor=1 value=320 unit=C",
    "tx link=1 sensor=2 value=320 unit=mV",
    "drop sensor=3",
    "tx link=1 sensor=4 value=500 unit=mV",
    "sent link0=0 link1=3",
    "calls sample_sensor=5",
    "calls radio_tx=4",
]
UNHOOKED = [
    "tx link=0 sensor=0 value=20 unit=C",
    "tx link=0 sensor=1 value=170 unit=C",
    "tx link=0 sensor=2 value=320 unit=mV",
    "tx link=0 sensor=3 value=470 unit=raw",
    "tx link=0 sensor=4 value=620 unit=raw",
    "sent link0=5 link1=0",
]


def test_policy_drops_clamps_and_redirects_at_the_macro_hook_point(host_build: Path) -> None:
    out = _run(host_build)
    assert out[0] == "policy: installed (2 instrumented functions)"
    assert "drop sensor=3" in out  # sensor 3 never reaches radio_tx
    assert "tx link=1 sensor=4 value=500 unit=mV" in out  # 620 clamped, link 0 -> 1
    assert not any(line.startswith("tx link=0") for line in out)


@pytest.mark.parametrize("jit", ["auto", "0"])
def test_listed_functions_give_the_policy_their_arguments(host_build: Path, jit: str) -> None:
    """The same decisions whichever engine runs the policy (x86-64 hosts compile it to native
    code unless FOVM_JIT=0; the Cortex-M4 build below always interprets)."""
    assert _run(host_build, env={} if jit == "auto" else {"FOVM_JIT": jit}) == WITH_POLICY


def test_without_policy_the_firmware_behaves_as_unhooked(host_build: Path) -> None:
    assert _run(host_build, "--no-policy") == UNHOOKED


def test_only_listed_functions_become_hook_points(base_build: Path, tmp_path: Path) -> None:
    build = _variant(base_build, tmp_path)
    _make(build, "host", "HOOK_FUNCTIONS=radio_tx")
    out = _run(build / "host" / "firmware")
    assert out[0] == "policy: installed (1 instrumented functions)"
    # sample_sensor is no hook point any more: sensor 1 reads its own 170
    assert "tx link=1 sensor=1 value=170 unit=C" in out
    assert "send sensor=0 rc=-11" in out  # radio_tx still is
    assert "calls sample_sensor=0" in out
    assert "calls radio_tx=4" in out


def test_a_name_the_sources_do_not_define_fails_the_build(base_build: Path,
                                                          tmp_path: Path) -> None:
    build = _variant(base_build, tmp_path)
    proc = subprocess.run(
        ["make", "-s", "-C", str(EXAMPLE), f"BUILD={build}", "host",
         "HOOK_FUNCTIONS=radio_tx radio_rx"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    assert "hookgen: HOOK_FUNCTIONS: no definition of 'radio_rx' in " in proc.stderr


def test_a_faulting_policy_fails_open(base_build: Path, tmp_path: Path) -> None:
    build = _variant(base_build, tmp_path)
    _make(build, "host", f"POLICY_SRC={DATA / 'faulting_policy.c'}")
    out = _run(build / "host" / "firmware")
    assert [line for line in out if line.startswith(("tx ", "drop ", "send ", "sent "))] == \
        UNHOOKED


@pytest.fixture(scope="module")
def m4_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need(shutil.which("arm-none-eabi-gcc") is not None, "arm-none-eabi-gcc (gcc-arm-none-eabi)")
    build = tmp_path_factory.mktemp("m4")
    _make(build, "m4")
    return build


def test_cortex_m4_build(m4_build: Path) -> None:
    elf = m4_build / "m4" / "firmware.elf"
    header = elf.read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and header[4] == 1  # 32-bit
    assert int.from_bytes(header[18:20], "little") == 40  # EM_ARM
    symbols = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True,
                             check=True).stdout
    for name in ("fohook_instrument_count", "fohook_fixed_run", "fovm_exec",
                 "fohook_policy_elf", "vector_table", "Reset_Handler", "_write"):
        assert f" {name}\n" in symbols, name
    # the VM core and the hook runtime never allocate: everything lives in the static arena
    runtime = [o for o in (m4_build / "m4").glob("*.o")
               if o.stem not in ("firmware", "startup_m4", "semihost_m4", "policy_blob")]
    assert any(o.stem == "fohook_fixed" for o in runtime) and len(runtime) > 2
    for obj in runtime:
        undefined = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True,
                                   text=True, check=True).stdout.split()
        assert not {"malloc", "calloc", "realloc", "free"} & set(undefined), obj.name


@pytest.mark.qemu
@pytest.mark.parametrize(("append", "expected"), [((), WITH_POLICY),
                                                  (("-append", "--no-policy"), UNHOOKED)],
                         ids=["policy", "no-policy"])
def test_the_m4_firmware_boots_on_mps2_an386_with_the_host_decisions(
        m4_build: Path, append: tuple[str, ...], expected: list[str]) -> None:
    """The Cortex-M4 image itself, on qemu's model of Arm's MPS2 board (AN386 = Cortex-M4):
    reset vector, start-up, the VM in its static arena, command line, output and exit by
    semihosting; the same lines as the host build (test_listed_functions_... and
    test_without_policy_... hold the host to the same lists)."""
    need(shutil.which("qemu-system-arm") is not None, "qemu-system-arm (.ci/install-deps)")
    proc = subprocess.run(
        ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
         "-serial", "null", "-semihosting-config", "enable=on,target=native",
         "-kernel", str(m4_build / "m4" / "firmware.elf"), *append],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == expected


@pytest.mark.qemu
def test_the_same_firmware_runs_on_32_bit_arm_under_qemu(tmp_path: Path) -> None:
    """A Raspberry Pi (armhf) build: 32-bit pointers in the context, the VM in the arena."""
    cc = "arm-linux-gnueabihf-gcc"
    need(shutil.which(cc) is not None and shutil.which("qemu-arm") is not None,
         "gcc-arm-linux-gnueabihf and qemu-user")
    _make(tmp_path, "host", f"CC={cc}")
    proc = subprocess.run(["qemu-arm", "-L", "/usr/arm-linux-gnueabihf",
                           str(tmp_path / "host" / "firmware")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == WITH_POLICY
