"""``freeoffload vm``: run eBPF programs in our userspace VM.

- ``vm exec [MEM_HEX]``: the conformance plugin protocol (program as hex on stdin).
- ``vm run FILE.o [--section NAME] [--ctx HEX]``: load an ELF object, verify, run, print r0.
- ``vm check FILE.o``: verify every program section, print each rejection with its PC.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from freeoffload.errors import ConfigError, Location, VMError


def register(subparsers: Any) -> None:
    vm = subparsers.add_parser("vm", help="run eBPF programs in the userspace VM")
    sub = vm.add_subparsers(dest="vm_command", metavar="VM_COMMAND", required=True)

    p = sub.add_parser("exec", help="conformance plugin: program hex on stdin, print r0 in hex")
    p.add_argument("mem", nargs="?", default="", help="memory as hex bytes (r1 points at it)")
    p.set_defaults(func=_exec)

    p = sub.add_parser("run", help="load an ELF object, verify, run, print r0")
    p.add_argument("file", type=Path)
    p.add_argument("--section", help="program section (default: the first)")
    p.add_argument("--ctx", default="", help="context as hex bytes (r1 points at it)")
    p.add_argument("--budget", type=int, default=1_000_000, help="instruction budget")
    p.set_defaults(func=_run)

    p = sub.add_parser("check", help="verify every program section of an ELF object")
    p.add_argument("file", type=Path)
    p.set_defaults(func=_check)


def _hex(text: str, source: str, field: str) -> bytes:
    cleaned = "".join(text.split())
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise ConfigError.at(
            Location(source), field, f"not hex bytes: {text[:40]!r}", "e.g. 0a0b0c or '0a 0b'"
        ) from None


def _exec(args: argparse.Namespace) -> int:
    from ._vm import VM

    program = _hex(sys.stdin.read(), "<stdin>", "program")
    mem = bytearray(_hex(args.mem, "<argv>", "MEM_HEX"))
    try:
        with VM() as vm:
            # The conformance suite's helper 5 returns its first argument.
            vm.register_helper(5, lambda a, *_: a, nargs=1, name="identity")
            vm.load(program)
            r0 = vm.run(mem)
    except VMError as err:
        print(f"freeoffload vm: {err}", file=sys.stderr)
        return 1
    print(f"{r0:x}")
    return 0


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise ConfigError.at(Location(str(path)), "file", err.strerror or str(err)) from None


def _run(args: argparse.Namespace) -> int:
    from ._vm import VM

    data = _read(args.file)
    ctx = bytearray(_hex(args.ctx, "<argv>", "--ctx"))
    with VM(budget=args.budget) as vm:
        vm.on_trace(lambda line: print(f"trace: {line}", file=sys.stderr))
        vm.load_elf(data, args.section)
        r0 = vm.run(ctx)
    print(f"0x{r0:x}")
    if ctx:
        print(f"ctx: {ctx.hex()}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from ._elf import program_sections
    from ._vm import VM

    data = _read(args.file)
    failed = 0
    sections = program_sections(data)
    if not sections:
        print(f"{args.file}: no program sections", file=sys.stderr)
        return 1
    for name in sections:
        with VM() as vm:
            try:
                vm.load_elf(data, name)
            except VMError as err:
                failed += 1
                print(f"{args.file}: {name}: rejected: {err}")
                continue
            print(f"{args.file}: {name}: ok ({vm.program_len} instructions, "
                  f"maps: {', '.join(vm.maps) or 'none'})")
    return 1 if failed else 0
