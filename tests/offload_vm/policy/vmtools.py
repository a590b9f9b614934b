"""Helpers of the policy tests: compile an example and run contexts through it in the VM."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from freeoffload.offload_vm.policy import ConnectContext, compile_object
from freeoffload.offload_vm.policy.context import CTX_V4MAPPED, parse_endpoint
from freeoffload.offload_vm.policy.program import load_program

from freeoffload.cli import main

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "policies"
_OBJECTS: dict[str, bytes] = {}


def example_object(name: str) -> bytes:
    """The clang object of ``examples/policies/NAME.c`` (compiled once per session)."""
    if name not in _OBJECTS:
        _OBJECTS[name] = compile_object(EXAMPLES / f"{name}.c")
    return _OBJECTS[name]


def example_vm(name: str, **maps: list[tuple[bytes, bytes]]) -> Any:
    vm = load_program(example_object(name))
    for map_name, rows in maps.items():
        for key, value in rows:
            vm.maps[map_name].update(key, value)
    return vm


def ctx(dst: str, *, udp: bool = False, protocol: int | None = None, pid: int = 4242,
        v4mapped: bool = False, **task: int) -> ConnectContext:
    """A connect() as a real client makes it: curl and mosquitto pass IPPROTO_TCP from
    getaddrinfo; connected UDP sockets pass IPPROTO_UDP."""
    family, ip, port = parse_endpoint(dst)
    flags = 0
    if v4mapped:
        family, ip, flags = 10, bytes(10) + b"\xff\xff" + ip, CTX_V4MAPPED
    proto = protocol if protocol is not None else (17 if udp else 6)
    return ConnectContext(family, ip, port, 2 if udp else 1, proto, pid, flags, **task)


def run(vm: Any, context: ConnectContext) -> tuple[int, str]:
    """(r0, destination after the policy)."""
    buf = bytearray(context.pack())
    r0 = int(vm.run(buf))
    return r0, ConnectContext.unpack(bytes(buf)).destination


def fo_process(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """`python -m freeoffload ARGS` in a new process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "freeoffload", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)


def fo(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The same command line through ``freeoffload.cli.main`` in this process (each new
    process pays for importing every part's command line, seconds on a busy machine)."""
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as stop:  # argparse's usage errors
                code = stop.code if isinstance(stop.code, int) else 1
    finally:
        os.chdir(cwd)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())
