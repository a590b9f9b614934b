"""Our own .data cases (data/ok, data/bad): every verifier rejection, every run-time fault
(out of bounds at each region's edges, budget, bad helper calls) and maps used from programs
and from the host. Each bad file states the error it must produce."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fovm_testlib import DATA, DataFile, parse
from freeoffload.offload_vm import (
    ARRAY,
    HASH,
    LRU_HASH,
    VM,
    ExecutionFaultError,
    ProgramRejectedError,
    VMError,
)

OK = sorted((DATA / "ok").glob("*.data"))
BAD = sorted((DATA / "bad").glob("*.data"))
_TYPES = {"hash": HASH, "array": ARRAY, "lru_hash": LRU_HASH}


ENGINES = ["auto", "interpreter"]  # auto: native code on x86-64


def _vm(case: DataFile, engine: str) -> VM:
    vm = VM(engine=engine)
    if case.sections.get("budget", "").strip():
        vm.budget = int(case.sections["budget"])
    for line in case.sections.get("maps", "").split("\n"):
        if line.strip():
            name, kind, key, value, entries = line.split()
            vm.create_map(name, _TYPES[kind], int(key), int(value), int(entries))
    maps = list(vm.maps.values())
    for line in case.sections.get("host", "").split("\n"):
        if line.strip():
            _, index, key, value = line.split()
            maps[int(index)].update(bytes.fromhex(key), bytes.fromhex(value))
    return vm


def _check_expect(vm: VM, case: DataFile) -> None:
    maps = list(vm.maps.values())
    for line in case.sections.get("expect", "").split("\n"):
        if line.strip():
            index, key, value = line.split()
            assert maps[int(index)].lookup(bytes.fromhex(key)) == bytes.fromhex(value)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", OK, ids=[p.stem for p in OK])
def test_ok(path: Path, engine: str) -> None:
    case = parse(path)
    with _vm(case, engine) as vm:
        vm.load(case.program())
        assert vm.run(case.mem()) == case.result()
        _check_expect(vm, case)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad(path: Path, engine: str) -> None:
    case = parse(path)
    kind, _, text = case.sections["error"].strip().partition(": ")
    expected: type[VMError] = {"rejected": ProgramRejectedError, "fault": ExecutionFaultError}[kind]
    pattern = re.escape(text).replace(re.escape("..."), ".*")
    with _vm(case, engine) as vm:
        with pytest.raises(expected) as info:
            vm.load(case.program())
            vm.run(case.mem())
        assert re.fullmatch(pattern, str(info.value)), str(info.value)
        pc = re.search(r"at PC (\d+)$", text)
        if pc:
            assert info.value.pc == int(pc.group(1))
        if kind == "rejected":  # nothing is left loaded
            assert vm.program_len == 0
