"""Reading policy objects for the kernel: maps from BTF, data sections, relocations, and a
clear ObjectError (never a crash) for damaged objects. No root needed."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import need
from freeoffload.firmware_hooks.kernel._elf import MapDef, ObjectError, read_object

ROOT = Path(__file__).resolve().parents[3]
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    need(shutil.which("clang") is not None, "clang")
    out = tmp_path_factory.mktemp("objs")
    sources = {"redirect": ROOT / "examples/policies/redirect.c",
               "select": ROOT / "examples/policies/select_target.c",
               "globals": DATA / "globals.c"}
    built = {}
    for name, src in sources.items():
        obj = out / f"{name}.o"
        subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-DTARGET_PORT=1",
                        "-I", str(ROOT / "offload_vm/include"), "-c", str(src), "-o", str(obj)],
                       check=True)
        built[name] = obj.read_bytes()
    return built


def test_btf_maps_match_the_sdk(objects: dict[str, bytes]) -> None:
    assert read_object(objects["redirect"]).maps == [MapDef("redirects", 1, 24, 24, 1024)]
    select = read_object(objects["select"])
    assert select.section == "connect"
    assert sorted(select.maps, key=lambda m: m.name) == [  # in the object's order, any
        MapDef("candidates", 2, 4, 128, 64), MapDef("local_placed", 2, 4, 16, 65)]
    assert {r.target for r in select.relocs if r.kind == "map"} == {"candidates", "local_placed"}


def test_data_sections_become_maps_with_offsets(objects: dict[str, bytes]) -> None:
    obj = read_object(objects["globals"])
    assert {d.name: (len(d.data), d.readonly) for d in obj.data} == {
        ".rodata": (8, True), ".data": (4, False), ".bss": (8, False)}
    assert obj.data[[d.name for d in obj.data].index(".data")].data == (9).to_bytes(4, "little")
    assert {r.target for r in obj.relocs if r.kind == "data"} == {".rodata", ".data", ".bss"}


def test_damaged_objects_are_refused_with_a_reason(objects: dict[str, bytes]) -> None:
    rng = random.Random(5)
    refused = 0
    for data in objects.values():
        for _ in range(400):
            damaged = bytearray(data)
            for _ in range(rng.randrange(1, 8)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            try:
                read_object(bytes(damaged))
            except ObjectError as err:
                refused += 1
                assert str(err)
        for n in range(len(data)):  # every truncation, whatever the debug info's length
            with pytest.raises(ObjectError):
                read_object(data[:n])
    assert refused > 0
    with pytest.raises(ObjectError, match="no program section nope"):
        read_object(objects["redirect"], "nope")
