"""Signed policy packages: what a verifying side accepts and every way it refuses."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from freeoffload.offload_vm.policy import (
    MapSchema,
    build_package,
    check_package,
    key_id,
    read_map_update,
    read_package,
)
from freeoffload.offload_vm.policy._container import canonical_json
from hypothesis import given, settings
from hypothesis import strategies as st

from freeoffload.errors import PolicyError

from .vmtools import EXAMPLES

ELF = b"\x7fELF" + bytes(range(256)) * 2  # the container does not look inside the object
MAPS = (MapSchema("candidates", 2, 4, 128, 64),)


def _read(data: bytes, key: Ed25519PrivateKey, **kw: object) -> object:
    return read_package(data, [key.public_key()], "p.fop", check_program=False, **kw)  # type: ignore[arg-type]


def _one_line(err: pytest.ExceptionInfo[PolicyError]) -> str:
    lines = str(err.value).splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_signed_package_reads_back(key: Ed25519PrivateKey) -> None:
    data = build_package(ELF, "select", 7, MAPS, key)
    package = read_package(data, [key.public_key()], "p.fop", check_program=False)
    assert package.elf == ELF
    assert package.manifest.name == "select"
    assert package.manifest.version == 7
    assert package.manifest.hook == "connect"
    assert package.manifest.maps == MAPS
    assert package.manifest.key_id == key_id(key.public_key())
    assert package.signed


def test_tampering_with_any_byte_fails(key: Ed25519PrivateKey) -> None:
    data = build_package(ELF[:64], "select", 7, MAPS, key)
    for i in range(len(data)):
        for flip in (0x01, 0x80):
            bad = bytearray(data)
            bad[i] ^= flip
            _, problems = check_package(bytes(bad), [key.public_key()], "p.fop",
                                        check_program=False)
            assert problems, f"flipping bit {flip:#x} of byte {i} went unnoticed"


def test_truncated_or_extended_files_fail(key: Ed25519PrivateKey) -> None:
    data = build_package(ELF, "select", 7, MAPS, key)
    for bad in (data[:-1], data + b"\0", data[:20], b""):
        with pytest.raises(PolicyError):
            _read(bad, key)


def test_tampered_object_names_the_signature(key: Ed25519PrivateKey) -> None:
    data = bytearray(build_package(ELF, "select", 7, MAPS, key))
    data[-100] ^= 0xFF  # inside the object
    with pytest.raises(PolicyError) as err:
        _read(bytes(data), key)
    text = str(err.value)
    assert "p.fop: signature: does not verify with trusted key" in text
    assert "changed after it was signed" in text
    assert "sha256" in text


def test_unsigned_is_one_clear_line(key: Ed25519PrivateKey) -> None:
    with pytest.raises(PolicyError) as err:
        _read(build_package(ELF, "select", 7, MAPS, None), key)
    assert _one_line(err).startswith("p.fop: signature: the file is not signed")


def test_wrong_key_is_one_clear_line(key: Ed25519PrivateKey,
                                     other_key: Ed25519PrivateKey) -> None:
    data = build_package(ELF, "select", 7, MAPS, other_key)
    with pytest.raises(PolicyError) as err:
        _read(data, key)
    line = _one_line(err)
    assert f"signed by key {key_id(other_key.public_key())}, which is not trusted" in line
    assert key_id(key.public_key()) in line


def test_older_version_is_refused_and_newer_accepted(key: Ed25519PrivateKey) -> None:
    with pytest.raises(PolicyError) as err:
        _read(build_package(ELF, "select", 4, MAPS, key), key, min_version=5)
    assert "p.fop: version: version 4 is older than the installed one" in _one_line(err)
    assert _read(build_package(ELF, "select", 5, MAPS, key), key, min_version=5)
    assert _read(build_package(ELF, "select", 9, MAPS, key), key, min_version=5)


def _hand_made(key: Ed25519PrivateKey, manifest: dict[str, object]) -> bytes:
    """A package whose (signed) manifest was written by hand, not by build_package."""
    body = canonical_json(manifest)
    head = struct.pack("<8sHHIII", b"FOPOLICY", 1, 0, len(body), len(ELF), 64)
    signed = head + body + ELF
    return signed + key.sign(signed)


def test_version_less_is_one_clear_line(key: Ed25519PrivateKey) -> None:
    import hashlib

    manifest = {"name": "select", "hook": "connect", "maps": [],
                "sha256": hashlib.sha256(ELF).hexdigest(), "key_id": key_id(key.public_key())}
    with pytest.raises(PolicyError) as err:
        _read(_hand_made(key, manifest), key)
    assert _one_line(err).startswith("p.fop: version: the package has no version")


def test_every_manifest_problem_is_listed(key: Ed25519PrivateKey) -> None:
    manifest = {"name": "no spaces allowed", "hook": "accept", "version": 0,
                "maps": [{"name": "m", "type": 99, "key_size": 4, "value_size": 0,
                          "max_entries": 1}],
                "sha256": "0" * 64, "key_id": key_id(key.public_key())}
    with pytest.raises(PolicyError) as err:
        _read(_hand_made(key, manifest), key)
    fields = [p.field for p in err.value.problems]
    assert fields == ["name", "hook", "version", "maps[0].type", "maps[0].value_size", "sha256"]


def test_not_a_package() -> None:
    with pytest.raises(PolicyError) as err:
        read_package(b"\x7fELF" + bytes(40), [], "x.o", check_program=False)
    assert "x.o: not a freeoffload policy package" in str(err.value)
    assert "policy compile" in str(err.value)


def test_manifest_is_plain_json_in_the_file(key: Ed25519PrivateKey) -> None:
    data = build_package(ELF, "select", 7, MAPS, key)
    mlen = struct.unpack_from("<I", data, 12)[0]
    manifest = json.loads(data[24:24 + mlen])
    assert manifest["maps"][0] == {"name": "candidates", "type": 2, "key_size": 4,
                                   "value_size": 128, "max_entries": 64}
    assert len(manifest["sha256"]) == 64


def test_every_byte_of_a_real_signed_policy_is_covered(key: Ed25519PrivateKey, clang: str,
                                                       vm: None) -> None:
    from freeoffload.offload_vm.policy import compile_policy

    built = compile_policy(EXAMPLES / "select_target.c", key, version=5)
    package = read_package(built.data, [key.public_key()], "select.fop", min_version=5)
    assert [m.name for m in package.manifest.maps] == ["candidates", "local_placed"]
    # every byte of the header, manifest and signature; every 8th of the object (the fake
    # object above has every byte flipped)
    head = 24 + int.from_bytes(built.data[12:16], "little")
    positions = [*range(head), *range(head, len(built.data) - 64, 8),
                 *range(len(built.data) - 64, len(built.data))]
    for i in positions:
        bad = bytearray(built.data)
        bad[i] ^= 0x04
        _, problems = check_package(bytes(bad), [key.public_key()], "select.fop")
        assert problems, f"byte {i} of {len(built.data)} went unnoticed"


def test_missing_map_and_rejected_program_are_one_line_each(key: Ed25519PrivateKey, clang: str,
                                                            vm: None) -> None:
    from freeoffload.offload_vm.policy import compile_object

    redirect = compile_object(EXAMPLES / "redirect.c")
    cases = [
        (build_package(redirect, "redirect", 2, (), key),
         "p.fop: maps.redirects: in the object but not in the manifest"),
        (build_package(redirect, "redirect", 2,
                       (MapSchema("redirects", 1, 24, 24, 1024), *MAPS), key),
         "p.fop: maps.candidates: declared in the manifest but missing from the object"),
        (build_package(redirect, "redirect", 2, (MapSchema("redirects", 1, 24, 24, 16),), key),
         "p.fop: maps.redirects: the object's map is MapSchema(name='redirects', type=1, "
         "key_size=24, value_size=24, max_entries=1024), the manifest says"),
    ]
    for data, message in cases:
        _, problems = check_package(data, [key.public_key()], "p.fop")
        assert len(problems) == 1 and str(problems[0]).startswith(message), problems
    bad = compile_object(Path(__file__).parent / "data" / "bad" / "unknown_helper.c")
    _, problems = check_package(build_package(bad, "bad", 1, (), key), [key.public_key()],
                                "p.fop")
    assert len(problems) == 1
    assert problems[0].location.file.endswith("unknown_helper.c")
    assert problems[0].location.line == 10 and problems[0].field == "verifier"


_SIGNED = build_package(ELF, "select", 7, MAPS, Ed25519PrivateKey.generate())


@given(start=st.integers(0, len(_SIGNED)), cut=st.integers(0, 64),
       insert=st.binary(max_size=64))
@settings(max_examples=500, deadline=None)
def test_any_splice_is_a_listed_problem_never_a_crash(start: int, cut: int,
                                                      insert: bytes) -> None:
    data = _SIGNED[:start] + insert + _SIGNED[start + cut:]
    _, problems = check_package(data, [], "p.fop", check_program=False)
    assert problems  # with no trusted key even the original fails; nothing may raise
    for kind, raw in ((b"FOMAPUPD", data[8:]), (b"FOPOLICY", data[8:])):
        try:
            read_map_update(kind + raw, [], "u")
        except PolicyError:
            pass
