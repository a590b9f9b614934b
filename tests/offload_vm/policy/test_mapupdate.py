"""Signed map updates: the device daemon's and the agent's side of changing a policy's map."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from freeoffload.offload_vm.policy import (
    Manifest,
    MapSchema,
    read_map_update,
    redirect_entry,
    sign_map_update,
)

from freeoffload.errors import PolicyError

POLICY = Manifest("redirect", "connect", 3, (MapSchema("redirects", 1, 24, 24, 1024),), "")
ROWS = [redirect_entry("10.0.0.11:80", "10.0.0.13:8080"),
        redirect_entry("[2001:db8::1]:443", "10.0.0.14:443")]


def _read(data: bytes, key: Ed25519PrivateKey, **kw: object) -> object:
    return read_map_update(data, [key.public_key()], "u", **kw)  # type: ignore[arg-type]


def test_an_update_reads_back_with_its_rows(key: Ed25519PrivateKey) -> None:
    update = read_map_update(sign_map_update("redirect", "redirects", 12, ROWS, key),
                             [key.public_key()], "u", min_version=12, policy=POLICY)
    assert (update.policy, update.map, update.version, update.replace) == (
        "redirect", "redirects", 12, True)
    assert list(update.rows) == ROWS
    assert update.rows[0][0][:4] == b"\x02\x00\x00\x00"  # AF_INET, host order
    assert update.rows[0][0][4:8] == (80).to_bytes(4, "little")
    assert update.rows[0][0][8:12] == bytes([10, 0, 0, 11])


def test_any_flipped_byte_fails(key: Ed25519PrivateKey) -> None:
    data = sign_map_update("redirect", "redirects", 12, ROWS[:1], key)
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x10
        with pytest.raises(PolicyError):
            _read(bytes(bad), key)


def test_replayed_or_older_update_is_refused(key: Ed25519PrivateKey) -> None:
    data = sign_map_update("redirect", "redirects", 12, ROWS, key)
    with pytest.raises(PolicyError) as err:
        _read(data, key, min_version=13)
    assert str(err.value) == ("u: version: version 12 is older than the installed one (a replay "
                              "or a rollback); this side accepts version 13 or newer")


def test_wrong_key_and_unsigned(key: Ed25519PrivateKey, other_key: Ed25519PrivateKey) -> None:
    with pytest.raises(PolicyError) as err:
        _read(sign_map_update("redirect", "redirects", 1, ROWS, other_key), key)
    assert "which is not trusted" in str(err.value)


def test_missing_map_and_wrong_sizes_and_other_policy(key: Ed25519PrivateKey) -> None:
    cases = [
        (sign_map_update("redirect", "candidates", 1, ROWS, key),
         "u: map: policy 'redirect' has no map 'candidates'; its maps: redirects"),
        (sign_map_update("redirect", "redirects", 1, [(b"k" * 4, b"v" * 8)], key),
         "u: rows: rows are 4+8 bytes, map 'redirects' has 24+24"),
        (sign_map_update("select", "redirects", 1, ROWS, key),
         "u: policy: the update is for policy 'select', the installed policy is 'redirect'"),
    ]
    for data, message in cases:
        with pytest.raises(PolicyError) as err:
            _read(data, key, policy=POLICY)
        assert str(err.value) == message


def test_a_package_is_not_an_update(key: Ed25519PrivateKey) -> None:
    from freeoffload.offload_vm.policy import build_package

    with pytest.raises(PolicyError) as err:
        _read(build_package(b"x", "p", 1, (), key), key)
    assert "not a freeoffload map update" in str(err.value)


def test_an_empty_replacing_update_clears_the_map(key: Ed25519PrivateKey) -> None:
    update = read_map_update(sign_map_update("redirect", "redirects", 4, [], key),
                             [key.public_key()], "u", policy=POLICY)
    assert update.rows == () and update.replace
    with pytest.raises(ValueError):
        sign_map_update("redirect", "redirects", 4, [], key, replace=False)


def _signed_raw(key: Ed25519PrivateKey, manifest: dict[str, object], payload: bytes) -> bytes:
    import hashlib
    import struct

    from freeoffload.offload_vm.policy import key_id
    from freeoffload.offload_vm.policy._container import canonical_json

    body = canonical_json({**manifest, "sha256": hashlib.sha256(payload).hexdigest(),
                           "key_id": key_id(key.public_key())})
    head = struct.pack("<8sHHIII", b"FOMAPUPD", 1, 0, len(body), len(payload), 64)
    return head + body + payload + key.sign(head + body + payload)


def test_a_signed_but_malformed_update_is_refused(key: Ed25519PrivateKey) -> None:
    base = {"policy": "redirect", "map": "redirects", "version": 1, "replace": True}
    cases = [({**base, "key_size": -1, "value_size": 3, "count": 1}, b"ab", "key_size"),
             ({**base, "key_size": 2, "value_size": 2, "count": 2}, b"abcd", "rows"),
             ({**base, "key_size": 2, "value_size": 2, "count": 1, "version": "7"}, b"abcd",
              "version"),
             ({**base, "key_size": 2, "value_size": 2, "count": 1, "map": None}, b"abcd", "map")]
    for manifest, payload, field in cases:
        with pytest.raises(PolicyError) as err:
            _read(_signed_raw(key, manifest, payload), key)
        assert field in [p.field for p in err.value.problems], str(err.value)
