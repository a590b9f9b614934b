"""The signed container both policy packages and map updates use.

Layout (integers little-endian)::

    magic[8] | u16 format | u16 zero | u32 manifest_len | u32 payload_len | u32 sig_len
    | manifest (canonical JSON, UTF-8) | payload | signature (Ed25519, 64 bytes, or none)

The signature covers every byte before it, header included, so changing any byte of a signed
container makes it fail: the header and manifest through the signature, the payload through
the signature and the manifest's sha256.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from freeoffload.errors import Location, Problem

from .keys import key_id

__all__ = [
    "Container",
    "Unreadable",
    "pack_container",
    "payload_problem",
    "unpack_container",
    "verify_signature",
]

FORMAT = 1
_HEADER = struct.Struct("<8sHHIII")
SIGNATURE_LEN = 64


@dataclass(frozen=True)
class Container:
    """A parsed (not yet trusted) container."""

    manifest: dict[str, Any]
    payload: bytes
    signed_bytes: bytes
    signature: bytes


def canonical_json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def pack_container(magic: bytes, manifest: dict[str, Any], payload: bytes,
                   key: Ed25519PrivateKey | None) -> bytes:
    """The container bytes; ``manifest`` gains ``sha256`` of the payload and the ``key_id``."""
    manifest = dict(manifest, sha256=hashlib.sha256(payload).hexdigest())
    if key is not None:
        manifest["key_id"] = key_id(key.public_key())
    body = canonical_json(manifest)
    sig_len = SIGNATURE_LEN if key is not None else 0
    signed = _HEADER.pack(magic, FORMAT, 0, len(body), len(payload), sig_len) + body + payload
    return signed + (key.sign(signed) if key is not None else b"")


def unpack_container(data: bytes, magic: bytes, what: str, source: str) -> Container:
    """Split ``data``; raises :class:`Unreadable` when it is not a well-formed container."""
    loc = Location(source)
    if len(data) < _HEADER.size or data[:8] != magic:
        raise Unreadable(Problem(loc, "", f"not a freeoffload {what} (bad magic or too short)",
                                  _hint_for(magic)))
    _magic, fmt, _zero, mlen, plen, slen = _HEADER.unpack_from(data)
    if fmt != FORMAT:
        raise Unreadable(Problem(loc, "format", f"unsupported format {fmt}; expected {FORMAT}"))
    end = _HEADER.size + mlen + plen
    if slen not in (0, SIGNATURE_LEN) or end + slen != len(data):
        raise Unreadable(Problem(loc, "", f"{what} is truncated or has extra bytes "
                                  f"({len(data)} bytes, header says {end + slen})",
                                  "the file was damaged in transfer or changed"))
    try:
        manifest = json.loads(data[_HEADER.size:_HEADER.size + mlen].decode())
    except (UnicodeDecodeError, ValueError) as err:
        raise Unreadable(Problem(loc, "manifest", f"not valid JSON ({err})")) from err
    if not isinstance(manifest, dict):
        raise Unreadable(Problem(loc, "manifest", "must be a JSON object"))
    return Container(manifest, data[_HEADER.size + mlen:end], data[:end], data[end:])


def verify_signature(box: Container, trusted: list[Ed25519PublicKey],
                     source: str) -> Problem | None:
    """None when ``box`` is signed by one of ``trusted``, else the one Problem saying why."""
    loc = Location(source)
    if not box.signature:
        return Problem(loc, "signature", "the file is not signed",
                       "build it with `freeoffload policy compile ... --key KEY`")
    if not trusted:
        return Problem(loc, "signature", "no trusted public key to check it with",
                       "pass --pubkey KEY.pub")
    claimed = box.manifest.get("key_id")
    keys = [k for k in trusted if key_id(k) == claimed]
    if not keys:
        known = ", ".join(key_id(k) for k in trusted)
        return Problem(loc, "signature", f"signed by key {claimed!s}, which is not trusted",
                       f"trusted keys: {known}")
    for k in keys:
        try:
            k.verify(box.signature, box.signed_bytes)
            return None
        except InvalidSignature:
            continue
    return Problem(loc, "signature", f"does not verify with trusted key {claimed}",
                   "the file was changed after it was signed")


def payload_problem(box: Container, source: str) -> Problem | None:
    """The payload's sha256 against the manifest's."""
    want = box.manifest.get("sha256")
    got = hashlib.sha256(box.payload).hexdigest()
    if want != got:
        return Problem(Location(source), "sha256",
                       f"the payload's sha256 {got[:16]}... does not match the manifest's",
                       "the file was changed after it was packaged")
    return None


class Unreadable(Exception):
    """The container cannot be parsed; ``problem`` says why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _hint_for(magic: bytes) -> str:
    if magic == b"FOPOLICY":
        return "build one with `freeoffload policy compile SRC.c -o OUT.fop`"
    return "make one with freeoffload.offload_vm.policy.sign_map_update"

