"""How fast is our eBPF VM? ns per run and per executed instruction, beside native C.

Workloads (bench/vm_progs.c, one source for both sides): an empty program, a loop summing
1..1000, FNV-1a over 64 bytes of context, and the connect policy scanning 16 candidates (an
array map) for the lowest latency with matching flags, also with that map in shared storage
as the hook runs it (each lookup copies a consistent snapshot). The eBPF side is the clang
``-O2 -target bpf`` object run by our interpreter; the baseline is the same source compiled
by ``gcc -O2`` and run natively in the same process (bench/vm_bench.c). Also the load+verify
time of each program. Target: <= 5 ns per executed instruction.

    .venv/bin/python bench/vm.py [--iterations N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from machine import describe  # bench/machine.py: the same machine line in every benchmark

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
TARGET_NS_PER_INSN = 5.0


def build(out: Path) -> tuple[Path, Path]:
    """The clang eBPF object of the workloads and the driver linked with the VM core."""
    progs = out / "vm_progs.o"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-c", str(BENCH / "vm_progs.c"),
                    "-o", str(progs)], check=True)
    native = out / "native.o"
    subprocess.run(["gcc", "-O2", "-std=c99", "-DNATIVE", "-c", str(BENCH / "vm_progs.c"),
                    "-o", str(native)], check=True)
    core = sorted(str(p) for p in (ROOT / "offload_vm" / "src").glob("*.c"))
    driver = out / "vm_bench"
    subprocess.run(["gcc", "-O2", "-std=c99", f"-I{ROOT / 'offload_vm' / 'include'}",
                    f"-I{ROOT / 'offload_vm' / 'src'}", *core, str(BENCH / "vm_bench.c"),
                    str(native), "-o", str(driver)], check=True)
    return progs, driver


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fovm-bench-") as tmp:
        progs, driver = build(Path(tmp))
        proc = subprocess.run([str(driver), str(progs), str(args.iterations)],
                              capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return 1
    print(f"machine: {describe()}")
    print(f"iterations: {args.iterations}; times are thread CPU time; baseline: the same C "
          "compiled by gcc -O2, run natively")
    header = (f"{'workload':<13} {'insns':>6} {'vm ns/run':>10} {'ns/insn':>8} "
              f"{'native ns/run':>13} {'ratio':>7} {'load+verify us':>14}")
    print(header)
    print("-" * len(header))
    worst = 0.0
    for line in proc.stdout.splitlines():
        name, vm_ns, insns, per_insn, native_ns, load_us = line.split()
        ratio = float(vm_ns) / max(float(native_ns), 0.1)
        if int(insns) > 100:
            worst = max(worst, float(per_insn))
        print(f"{name:<13} {int(insns):>6} {float(vm_ns):>10.1f} {float(per_insn):>8.2f} "
              f"{float(native_ns):>13.1f} {ratio:>6.1f}x {float(load_us):>14.1f}")
    verdict = "meets" if worst <= TARGET_NS_PER_INSN else "misses"
    print(f"worst ns per executed instruction (programs over 100 insns): {worst:.2f}; "
          f"{verdict} the target of {TARGET_NS_PER_INSN} ns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
