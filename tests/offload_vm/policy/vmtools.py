"""Helpers of the policy tests: compile an example and run contexts through it in the VM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from freeoffload.offload_vm.policy import ConnectContext, compile_object
from freeoffload.offload_vm.policy.context import CTX_V4MAPPED, parse_endpoint
from freeoffload.offload_vm.policy.program import load_program

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "policies"
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
