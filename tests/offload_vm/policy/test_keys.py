"""`freeoffload keys gen` and loading keys."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from freeoffload.offload_vm.policy import generate_keys, key_id, load_private_key, load_public_key

from freeoffload.errors import PolicyError


def test_generated_pair_matches_and_private_half_is_private(tmp_path: Path) -> None:
    priv, pub = generate_keys(tmp_path / "keys")
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert key_id(load_private_key(priv).public_key()) == key_id(load_public_key(pub))


def test_existing_keys_are_not_overwritten(tmp_path: Path) -> None:
    priv, _ = generate_keys(tmp_path)
    before = priv.read_bytes()
    with pytest.raises(PolicyError) as err:
        generate_keys(tmp_path)
    assert "already exists; refusing to overwrite" in str(err.value)
    assert priv.read_bytes() == before
    generate_keys(tmp_path, overwrite=True)
    assert priv.read_bytes() != before


def test_bad_key_files_say_what_they_are(tmp_path: Path) -> None:
    _, pub = generate_keys(tmp_path)
    with pytest.raises(PolicyError) as err:
        load_private_key(pub)
    assert str(err.value).startswith(f"{pub}: not an unencrypted PEM private key")
    with pytest.raises(PolicyError) as err:
        load_public_key(tmp_path / "missing.pub")
    assert "cannot read key" in str(err.value)
    junk = tmp_path / "junk.pub"
    junk.write_text("hello")
    with pytest.raises(PolicyError) as err:
        load_public_key(junk)
    assert "not a PEM public key" in str(err.value)
