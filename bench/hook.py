"""How much the connect() hook adds: per connect()+close() to a loopback listener, and to a
program's start-up (curl).

Per connect, in the same run: no hook (the baseline), the hook with no policy installed, the
hook running a policy that returns at once (what the hook itself costs around a VM run),
examples/policies/redirect.c with no matching rule, examples/policies/http.c (it
reads the socket's type: the hook asks the kernel, one getsockopt() per call; it passes), and
examples/policies/select_target.c over 16 candidates twice: rows with room for 8 tasks each
(the policy counts what it places, so after the first 128 calls of a run every row is full and
a call scans them all and passes: most calls measure that), and rows with room for every call
of a run (each call chooses a row, counts the task there and rewrites). Start-up:
``curl file:///dev/null`` with and without the hook, and with an empty LD_AUDIT module (the
alternative to the dlopen hook, see firmware_hooks/README.md).

Targets: at most 1 us and 3% added per connect, at most 1 ms added at start-up. Rounds
interleave the configurations; per-call figures are the calling thread's CPU time (user +
system) in the best round (interference from other work only ever adds time), start-up the
median.

    .venv/bin/python bench/hook.py [--iterations N] [--rounds R] [--startup-runs S]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from freeoffload.firmware_hooks import PolicyStore, hook_library_path
from freeoffload.topology.candidates import (
    FLAG_ONLINE,
    FLAG_SECURE,
    FLAG_VALID,
    Candidate,
    candidate_items,
)
from machine import describe

ROOT = Path(__file__).resolve().parents[1]
SDK = ROOT / "offload_vm" / "include"
URGENT_CPU_TASK = {"FREEOFFLOAD_TASK_TYPE": "1", "FREEOFFLOAD_TASK_FLAGS": "2",
                   "FREEOFFLOAD_TASK_CPU_MILLI": "500", "FREEOFFLOAD_TASK_MEMORY_MIB": "64",
                   "FREEOFFLOAD_TASK_STORAGE_MIB": "16"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _policy(work: Path, name: str) -> bytes:
    source = ROOT / "examples" / "policies" / f"{name}.c"
    if name == "pass":  # the hook's own cost: a policy that returns at once
        source = work / "pass.c"
        source.write_text("#include <freeoffload/policy.h>\n"
                          "FO_CONNECT_POLICY(pass) { return FO_PASS; }\n")
    out = work / f"{name}.o"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", f"-I{SDK}", "-c", str(source), "-o",
                    str(out)], check=True)
    return out.read_bytes()


def _candidates(port: int, free_cpu_milli: int = 4000) -> list[Candidate]:
    """16 online edges, all at the listener's address: the policy spreads a burst of tasks
    over them by what it has placed (a process-local map), so any of them may be chosen.
    With the default free CPU each row takes 8 of the bench's tasks (500 milli each)."""
    return [Candidate(name=f"edge{i:02d}", flags=FLAG_VALID | FLAG_ONLINE | FLAG_SECURE,
                      family=2, ip=socket.inet_aton("127.0.0.1"), port=port, role=1,
                      level=0, latency_us=100 + i, headroom_milli=500, capable=0b110,
                      free_cpu_milli=free_cpu_milli, free_memory_mib=1 << 30,
                      free_storage_mib=1 << 30, latency_rank=i, headroom_rank=0, name_rank=i)
            for i in range(16)]


def _configs(work: Path, port: int) -> dict[str, dict[str, str]]:
    hook = {"LD_PRELOAD": str(hook_library_path())}
    stores = {}
    for name in ("empty", "pass", "redirect", "http", "select", "room"):
        stores[name] = PolicyStore(work / name)
        stores[name].init()
    stores["pass"].install("pass", _policy(work, "pass"), 1)
    stores["redirect"].install("redirect", _policy(work, "redirect"), 1)
    stores["http"].install("http", _policy(work, "http"), 1)
    stores["select"].install("select_target", _policy(work, "select_target"), 1)
    stores["select"].update_map_bulk("candidates", candidate_items(_candidates(port)))
    stores["room"].install("select_target", _policy(work, "select_target"), 1)
    stores["room"].update_map_bulk(  # 16 x 2^31 milli: room for every call of a run
        "candidates", candidate_items(_candidates(port, free_cpu_milli=1 << 31)))
    base = {k: v for k, v in os.environ.items()
            if k != "LD_PRELOAD" and not k.startswith("FREEOFFLOAD_")}
    return {
        "no hook (baseline)": base,
        "hook, no policy": {**base, **hook, "FREEOFFLOAD_STORE": str(stores["empty"].directory)},
        "hook, policy returning at once": {
            **base, **hook, "FREEOFFLOAD_STORE": str(stores["pass"].directory)},
        "hook, no matching rule": {**base, **hook,
                                   "FREEOFFLOAD_STORE": str(stores["redirect"].directory)},
        "hook, policy reading the socket type": {
            **base, **hook, "FREEOFFLOAD_STORE": str(stores["http"].directory)},
        "hook, selection over 16 candidates": {
            **base, **hook, **URGENT_CPU_TASK,
            "FREEOFFLOAD_STORE": str(stores["select"].directory)},
        "hook, selection, room on every row": {
            **base, **hook, **URGENT_CPU_TASK,
            "FREEOFFLOAD_STORE": str(stores["room"].directory)},
    }


def _engine(configs: dict[str, dict[str, str]]) -> str:
    """How the VM runs the selection policy here ('jit' or 'interpreter'), as the hook's does
    (same engine choice, FOVM_JIT=0 included)."""
    from freeoffload.offload_vm import VM

    store = PolicyStore(configs["hook, selection over 16 candidates"]["FREEOFFLOAD_STORE"])
    vm = VM()
    vm.load_elf(store.policy_elf())
    return str(vm.engine)


def _connect_ns(driver: Path, port: int, iterations: int, env: dict[str, str],
                udp: bool = False) -> float:
    """Thread CPU nanoseconds per call (the driver prints wall, then CPU)."""
    argv = [str(driver), str(port), str(iterations), *(["udp"] if udp else [])]
    done = subprocess.run(argv, env=env, check=True, capture_output=True, text=True)
    return float(done.stdout.split()[1])


def _startup(runs: int, envs: dict[str, dict[str, str]]) -> dict[str, tuple[float, float]]:
    """Median wall and CPU (user + system) milliseconds of ``curl file:///dev/null`` per
    environment; CPU time is the steadier figure on a busy machine."""
    cmd = ["curl", "-s", "-o", "/dev/null", "file:///dev/null"]
    wall: dict[str, list[float]] = {name: [] for name in envs}
    cpu: dict[str, list[float]] = {name: [] for name in envs}
    for _ in range(runs):
        for name, env in envs.items():
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, env=env)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            wall[name].append((time.perf_counter() - t0) * 1000)
            cpu[name].append((usage.ru_utime + usage.ru_stime) * 1000)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name]))
            for name in envs}



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--startup-runs", type=int, default=100)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fohook-bench-") as tmp:
        work = Path(tmp)
        driver = work / "connect_loop"
        subprocess.run(["cc", "-O2", "-o", str(driver),
                        str(ROOT / "firmware_hooks" / "bench" / "connect_loop.c"), "-lpthread"],
                       check=True)
        port = _free_port()
        configs = _configs(work, port)
        engine = _engine(configs)
        results: dict[str, list[float]] = {name: [] for name in configs}
        udp: dict[str, list[float]] = {name: [] for name in configs}
        for _ in range(args.rounds):
            for name, env in configs.items():
                results[name].append(_connect_ns(driver, port, args.iterations, env))
                udp[name].append(_connect_ns(driver, port, args.iterations * 10, env, True))
        audit = work / "audit_probe.so"
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(audit),
                        str(ROOT / "firmware_hooks" / "bench" / "audit_probe.c")], check=True)
        base = configs["no hook (baseline)"]
        startup = _startup(args.startup_runs, {
            "no hook (baseline)": base,
            "hook (LD_PRELOAD), no policy": configs["hook, no policy"],
            "empty LD_AUDIT module (not used)": {**base, "LD_AUDIT": str(audit)},
        })
    print(f"# hook overhead: {describe()}")
    print(f"# VM engine for the policies: {engine}")
    print(f"# {args.rounds} rounds x {args.iterations} connect()+close(), best round, "
          "thread CPU time")
    print("# 'TCP' is connect()+close() to the listener; 'UDP' re-connect()s one UDP socket")
    print("# (10x as many calls): its 'added' is what the hook costs per call, out of the TCP")
    print("# noise; 'added/TCP' compares that with the TCP baseline (the 3% target).")
    print(f"{'configuration':<36} {'TCP ns':>8} {'ratio':>6} {'UDP ns':>7} {'added ns':>8} "
          f"{'added/TCP':>9}")
    base = min(results["no hook (baseline)"])
    base_udp = min(udp["no hook (baseline)"])
    for name, values in results.items():
        ns, u = min(values), min(udp[name])
        print(f"{name:<36} {ns:>8.0f} {ns / base:>6.3f} {u:>7.0f} {u - base_udp:>8.0f} "
              f"{(u - base_udp) / base:>9.2%}")
    print(f"\n{'start-up, curl file:///dev/null':<36} {'wall ms':>8} {'cpu ms':>7} "
          f"{'added cpu ms':>12} {'ratio':>7}")
    _, base_cpu = startup["no hook (baseline)"]
    for name, (wall_ms, cpu_ms) in startup.items():
        print(f"{name:<36} {wall_ms:>8.2f} {cpu_ms:>7.2f} {cpu_ms - base_cpu:>12.2f} "
              f"{cpu_ms / base_cpu:>7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
