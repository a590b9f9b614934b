"""Signed policy packages (``.fop``): the ELF object, its manifest and an Ed25519 signature.

``build_package`` makes one; ``read_package`` is what a verifying side (``freeoffload device``,
``freeoffload policy verify``) calls: it checks the signature against trusted keys, the
manifest, the object's sha256, the version against the installed one, and (by default) loads
the program into our VM, and raises :class:`PolicyError` listing every problem, one a line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from freeoffload.errors import Location, PolicyError, Problem, VMError

from ._container import Unreadable, pack_container, payload_problem, unpack_container
from ._container import verify_signature as _verify_signature
from .manifest import Manifest, MapSchema, parse_manifest
from .program import load_program, map_schemas, rejection_problem

__all__ = ["MAGIC", "Package", "build_package", "check_package", "read_package"]

MAGIC = b"FOPOLICY"


@dataclass(frozen=True)
class Package:
    """A policy package whose signature, manifest and object were checked."""

    manifest: Manifest
    elf: bytes
    signed: bool

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> int:
        return self.manifest.version


def build_package(elf: bytes, name: str, version: int, maps: Sequence[MapSchema],
                  key: Ed25519PrivateKey | None, hook: str = "connect") -> bytes:
    """The bytes of a ``.fop`` file; unsigned when ``key`` is None (dry runs only)."""
    manifest = Manifest(name, hook, version, tuple(maps), "")
    return pack_container(MAGIC, manifest.to_json(), elf, key)


def _program_problems(manifest: Manifest, elf: bytes, source: str) -> list[Problem]:
    try:
        vm = load_program(elf)
    except VMError as err:
        if err.pc is None:
            return [Problem(Location(source), "object", f"the VM cannot load it: {err}")]
        return [rejection_problem(err, elf, source)]
    loc = Location(source)
    actual = {m.name: m for m in map_schemas(vm)}
    problems = []
    for declared in manifest.maps:
        got = actual.get(declared.name)
        if got is None:
            problems.append(Problem(loc, f"maps.{declared.name}",
                                    "declared in the manifest but missing from the object"))
        elif got != declared:
            problems.append(Problem(loc, f"maps.{declared.name}",
                                    f"the object's map is {got}, the manifest says {declared}"))
    for name in sorted(set(actual) - {m.name for m in manifest.maps}):
        problems.append(Problem(loc, f"maps.{name}", "in the object but not in the manifest"))
    return problems


def check_package(data: bytes, trusted: Sequence[Ed25519PublicKey], source: str,
                  min_version: int | None = None,
                  check_program: bool = True) -> tuple[Package | None, list[Problem]]:
    """Every problem of a package, and the package itself when it could be read."""
    try:
        box = unpack_container(data, MAGIC, "policy package", source)
    except Unreadable as err:
        return None, [err.problem]
    problems: list[Problem] = []
    signature = _verify_signature(box, list(trusted), source)
    if signature is not None:
        problems.append(signature)
    manifest = parse_manifest(box.manifest, source, problems)
    sha = payload_problem(box, source)
    if sha is not None:
        problems.append(sha)
    if min_version is not None and manifest.version and manifest.version < min_version:
        problems.append(Problem(Location(source), "version",
                                f"version {manifest.version} is older than the installed one",
                                f"this side accepts version {min_version} or newer"))
    # The VM is safe with any input, but a device only loads what its keys vouch for; an
    # unsigned package is checked too, so that `policy verify` lists all that is wrong.
    if check_program and sha is None and (signature is None or not box.signature):
        problems.extend(_program_problems(manifest, box.payload, source))
    return Package(manifest, box.payload, bool(box.signature)), problems


def read_package(data: bytes, trusted: Sequence[Ed25519PublicKey], source: str,
                 min_version: int | None = None, check_program: bool = True) -> Package:
    """A trusted package, or PolicyError listing every problem (one line each).

    ``min_version``: the lowest version accepted (pass the installed version + 1 to refuse
    replays as well as downgrades). ``check_program``: also load the object into the VM.
    """
    package, problems = check_package(data, trusted, source, min_version, check_program)
    if problems or package is None:
        raise PolicyError(problems)
    return package
