"""Offload policies: the SDK's Python side, the compile-verify-sign toolchain, dry runs.

A policy is C compiled by clang to eBPF, verified in our VM and packaged with a manifest in one
Ed25519-signed ``.fop`` file (:func:`compile_policy`, :func:`build_package`). Verifying sides
(``freeoffload device``, ``freeoffload policy verify``) call :func:`read_package`; maps of an
installed policy change through signed updates (:func:`sign_map_update`,
:func:`read_map_update`). Keys come from ``freeoffload keys gen`` (:func:`generate_keys`).
"""

from .compiler import Built, compile_object, compile_policy, include_dir
from .context import (
    ConnectContext,
    context_from_json,
    pack_addr,
    parse_endpoint,
    redirect_entry,
    task_fields,
)
from .dryrun import Decision, load_map_file, run_policy
from .keys import generate_keys, key_id, load_private_key, load_public_key
from .manifest import Manifest, MapSchema
from .mapupdate import MapUpdate, read_map_update, sign_map_update
from .package import Package, build_package, check_package, read_package
from .push import push_map_update, push_package

__all__ = [
    "Built",
    "ConnectContext",
    "Decision",
    "Manifest",
    "MapSchema",
    "MapUpdate",
    "Package",
    "build_package",
    "check_package",
    "compile_object",
    "compile_policy",
    "context_from_json",
    "generate_keys",
    "include_dir",
    "key_id",
    "load_map_file",
    "load_private_key",
    "load_public_key",
    "pack_addr",
    "parse_endpoint",
    "push_map_update",
    "push_package",
    "read_map_update",
    "read_package",
    "redirect_entry",
    "run_policy",
    "sign_map_update",
    "task_fields",
]
