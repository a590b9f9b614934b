"""Ed25519 signing keys: generate a pair, load either half, name a public key by its id."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from freeoffload.errors import Location, PolicyError

__all__ = ["generate_keys", "key_id", "load_private_key", "load_public_key"]


def key_id(public: Ed25519PublicKey) -> str:
    """A short stable name of a public key: the first 8 bytes of its sha256, in hex."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keys(out_dir: str | Path, name: str = "signing",
                  overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``NAME.key`` (private, mode 0600) and ``NAME.pub`` (public) as PEM into out_dir."""
    out = Path(out_dir)
    priv_path, pub_path = out / f"{name}.key", out / f"{name}.pub"
    for path in (priv_path, pub_path):
        if path.exists() and not overwrite:
            raise PolicyError.at(Location(str(path)), "", "already exists; refusing to overwrite",
                                 "choose another --out or --name, or pass --force")
    try:
        out.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
        pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(priv)
        pub_path.write_bytes(pub)
    except OSError as err:
        raise PolicyError.at(Location(str(out)), "", f"cannot write keys: {err.strerror}") from err
    return priv_path, pub_path


def _read(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise PolicyError.at(Location(str(path)), "", f"cannot read key: {err.strerror}") from err


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM file written by ``freeoffload keys gen``."""
    try:
        key = serialization.load_pem_private_key(_read(path), password=None)
    except (ValueError, TypeError) as err:
        raise PolicyError.at(Location(str(path)), "", f"not an unencrypted PEM private key ({err})",
                             "make one with `freeoffload keys gen --out DIR`") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise PolicyError.at(Location(str(path)), "", "not an Ed25519 private key",
                             "make one with `freeoffload keys gen --out DIR`")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (``NAME.pub`` of ``freeoffload keys gen``)."""
    try:
        key = serialization.load_pem_public_key(_read(path))
    except (ValueError, TypeError) as err:
        raise PolicyError.at(Location(str(path)), "", f"not a PEM public key ({err})",
                             "pass the .pub file of `freeoffload keys gen`") from err
    if not isinstance(key, Ed25519PublicKey):
        raise PolicyError.at(Location(str(path)), "", "not an Ed25519 public key",
                             "pass the .pub file of `freeoffload keys gen`")
    return key
