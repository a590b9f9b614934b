"""The ``policy`` and ``keys`` commands (imports stay light: the work is done inside ``func``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    policy = subparsers.add_parser(
        "policy", help="compile, verify, dry-run and push policies",
        description="Offload policies: C compiled by clang to eBPF, verified in our VM, signed "
        "(Ed25519) into one .fop file, tried in a dry run and pushed to devices. The SDK header "
        "is in `freeoffload policy include-dir`; examples/policies/README.md walks through it.")
    sub = policy.add_subparsers(dest="policy_command", metavar="ACTION", required=True)

    p = sub.add_parser("compile", help="clang -> VM verification -> signed OUT.fop")
    p.add_argument("source", metavar="SRC.c")
    p.add_argument("-o", "--output", required=True, metavar="OUT.fop")
    p.add_argument("--key", metavar="KEY", help="private key of `freeoffload keys gen`; "
                   "without it the package is unsigned (dry runs only)")
    p.add_argument("--version", type=int, metavar="N",
                   help="policy version (default: the current Unix time)")
    p.add_argument("--name", help="policy name (default: the source file's stem)")
    p.add_argument("-I", dest="include", action="append", default=[], metavar="DIR",
                   help="also search DIR for headers (repeatable)")
    p.add_argument("-D", dest="define", action="append", default=[], metavar="NAME[=VALUE]",
                   help="define a macro for the policy source (repeatable)")
    p.set_defaults(func=_compile)

    p = sub.add_parser("verify", help="check signature, manifest and program; list every problem")
    p.add_argument("package", metavar="OUT.fop")
    p.add_argument("--pubkey", action="append", default=[], metavar="KEY.pub", required=True,
                   help="trusted public key (repeatable)")
    p.add_argument("--min-version", type=int, metavar="N",
                   help="refuse versions older than N (as a device with N installed)")
    p.set_defaults(func=_verify)

    p = sub.add_parser("run", help="dry run: one connect() through the policy in the VM")
    p.add_argument("package", metavar="OUT.fop")
    p.add_argument("--ctx", required=True, metavar="JSON",
                   help='e.g. \'{"dst": "10.0.1.11:8080", "task": "examples/tasks/audio.yaml", '
                   '"from": "dev1"}\'')
    p.add_argument("--map", action="append", default=[], metavar="NAME=FILE.yaml",
                   help="fill a map: a CR-map (candidates), {from,to} rows or {key,value} rows")
    p.add_argument("--from", dest="from_node", metavar="NODE",
                   help="the requesting node, for a CR-map (or \"from\" in --ctx)")
    p.add_argument("--pubkey", action="append", default=[], metavar="KEY.pub",
                   help="also check the signature against this key")
    p.add_argument("--json", action="store_true", help="print the decision as JSON")
    p.set_defaults(func=_run)

    p = sub.add_parser("include-dir", help="print the directory of freeoffload/policy.h")
    p.set_defaults(func=_include_dir)

    p = sub.add_parser("sign-map", help="sign new rows for a map of a policy (a map update)")
    p.add_argument("package", metavar="POLICY.fop")
    p.add_argument("--map", required=True, metavar="NAME=FILE.yaml",
                   help="the rows: a CR-map (candidates, with --from), {from,to} or {key,value}")
    p.add_argument("--from", dest="from_node", metavar="NODE",
                   help="the requesting node, for a CR-map")
    p.add_argument("--key", required=True, metavar="KEY")
    p.add_argument("--version", type=int, metavar="N",
                   help="update version (default: the current Unix time)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.fmu")
    p.set_defaults(func=_sign_map)

    p = sub.add_parser("push", help="send OUT.fop (PUT URL/v1/policy) or a signed map update "
                       "(PUT URL/v1/maps/NAME) to a device")
    p.add_argument("package", metavar="OUT.fop|OUT.fmu")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--to", metavar="DEVICE_URL", help="one device, e.g. http://10.0.0.21:7701")
    where.add_argument("--group", metavar="NAME",
                       help="every device of a group, through its center (found with zeroconf, "
                       "or --center)")
    p.add_argument("--center", metavar="URL", help="the group's center agent (with --group)")
    p.add_argument("--token", help="the group's token (default: $FREEOFFLOAD_TOKEN)")
    p.set_defaults(func=_push)

    keys = subparsers.add_parser(
        "keys", help="policy signing keys",
        description="Ed25519 key pairs: the private half signs policies and map updates "
        "(`policy compile --key`), devices trust the public half.")
    ksub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    p = ksub.add_parser("gen", help="write an Ed25519 key pair NAME.key / NAME.pub into DIR")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--name", default="signing", help="file name stem (default: signing)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(func=_keys_gen)


def _read(path: str) -> bytes:
    from freeoffload.errors import Location, PolicyError

    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise PolicyError.at(Location(path), "", f"cannot read: {err.strerror}") from err


def _compile(args: argparse.Namespace) -> int:
    from .compiler import compile_policy, write_atomically
    from .keys import key_id, load_private_key

    key = load_private_key(args.key) if args.key else None
    extra = tuple(f"-I{d}" for d in args.include) + tuple(f"-D{d}" for d in args.define)
    built = compile_policy(args.source, key, args.version, args.name, extra_args=extra)
    write_atomically(args.output, built.data)
    maps = ", ".join(m.name for m in built.maps) or "no maps"
    signer = f"signed by key {key_id(key.public_key())}" if key else "NOT signed"
    print(f"{args.output}: policy {built.name} version {built.version} ({maps}), {signer}")
    if key is None:
        print(f"warning: {args.output} is not signed; devices refuse it (pass --key KEY)",
              file=sys.stderr)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from freeoffload.errors import PolicyError

    from .keys import load_public_key
    from .package import check_package

    trusted = [load_public_key(p) for p in args.pubkey]
    package, problems = check_package(_read(args.package), trusted, args.package,
                                      args.min_version)
    if problems or package is None:
        raise PolicyError(problems)
    m = package.manifest
    print(f"{args.package}: ok: policy {m.name} version {m.version}, hook {m.hook}, signed by "
          f"key {m.key_id}, program verified, maps: "
          f"{', '.join(s.name for s in m.maps) or 'none'}")
    return 0


def _open(args: argparse.Namespace) -> Any:
    from freeoffload.errors import PolicyError

    from .keys import load_public_key
    from .package import check_package

    trusted = [load_public_key(p) for p in args.pubkey]
    package, problems = check_package(_read(args.package), trusted, args.package,
                                      check_program=False)
    if not trusted:  # a dry run of one's own build needs no key
        problems = [p for p in problems if p.field != "signature"]
    if problems or package is None:
        raise PolicyError(problems)
    return package


def _run(args: argparse.Namespace) -> int:
    from freeoffload.errors import Location, PolicyError

    from .context import context_from_json
    from .dryrun import load_map_file, run_policy

    package = _open(args)
    try:
        raw = json.loads(args.ctx)
    except ValueError as err:
        raise PolicyError.at(Location("--ctx"), "", f"not valid JSON: {err}") from err
    ctx = context_from_json(raw)
    maps: dict[str, Sequence[tuple[bytes, bytes]]] = {}
    names: dict[str, str] = {}
    for spec in args.map:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise PolicyError.at(Location("--map"), "", f"expected NAME=FILE, got {spec!r}")
        rows, found = load_map_file(name, path, package.manifest.map(name),
                                    args.from_node or raw.get("from"))
        maps[name] = rows
        names.update(found)
    decision = run_policy(package.elf, ctx, maps, package.manifest,
                          lambda line: print(f"trace: {line.rstrip()}", file=sys.stderr))
    before, after = decision.before.destination, decision.after.destination
    node = names.get(after)
    if args.json:
        print(json.dumps({"verdict": decision.verdict, "r0": decision.r0, "dst": before,
                          "new_dst": after if decision.rewritten else None, "node": node}))
    elif decision.rewritten:
        print(f"rewrite: {before} -> {after}" + (f" ({node})" if node else ""))
    else:
        print(f"{decision.verdict}: {before} unchanged")
    return 0


def _include_dir(args: argparse.Namespace) -> int:
    from .compiler import include_dir

    print(include_dir())
    return 0


def _sign_map(args: argparse.Namespace) -> int:
    import time

    from freeoffload.errors import Location, PolicyError

    from .compiler import write_atomically
    from .dryrun import load_map_file
    from .keys import load_private_key
    from .mapupdate import sign_map_update

    package = _open(argparse.Namespace(package=args.package, pubkey=[]))
    name, sep, path = args.map.partition("=")
    if not sep or not name or not path:
        raise PolicyError.at(Location("--map"), "", f"expected NAME=FILE, got {args.map!r}")
    rows, _ = load_map_file(name, path, package.manifest.map(name), args.from_node)
    version = int(time.time()) if args.version is None else args.version
    data = sign_map_update(package.manifest.name, name, version, rows,
                           load_private_key(args.key))
    write_atomically(args.output, data)
    print(f"{args.output}: map {name} of policy {package.manifest.name}, version {version}, "
          f"{len(rows)} rows")
    return 0


def _push(args: argparse.Namespace) -> int:
    from freeoffload.errors import Location, PolicyError

    from .mapupdate import MAGIC_MAP
    from .push import push_map_update, push_package

    data = _read(args.package)
    if args.group:
        if not data.startswith(b"FOPOLICY"):
            raise PolicyError.at(Location(args.package), "", "--group sends policy packages",
                                 "push map updates to a device with --to")
        return _push_group(args, data)
    if data.startswith(MAGIC_MAP):
        manifest, _ = _peek(data, args.package)
        answer = push_map_update(data, args.to, str(manifest.get("map")))
    elif data.startswith(b"FOPOLICY"):
        answer = push_package(data, args.to)
    else:
        raise PolicyError.at(Location(args.package), "", "neither a policy package nor a map "
                             "update", "make one with `policy compile` or `policy sign-map`")
    print(f"{args.package} -> {args.to}: " + json.dumps(answer, sort_keys=True))
    return 0


def _push_group(args: argparse.Namespace, data: bytes) -> int:
    # The agent owns groups and centers; its client is imported only for this option.
    from freeoffload.agent.peers import push_to_group

    results = push_to_group(args.group, data, center=args.center, token=args.token)
    failed = 0
    for result in results:
        status = int(result.get("status", 0))
        answer = result.get("answer", {})
        failed += status >= 400 or status == 0
        print(f"{result.get('device')}: {status} " + json.dumps(answer, sort_keys=True))
    if not results:
        print(f"group {args.group}: the center knows no device to send it to", file=sys.stderr)
        return 1
    return 1 if failed else 0


def _peek(data: bytes, source: str) -> tuple[dict[str, Any], bytes]:
    from freeoffload.errors import PolicyError

    from ._container import Unreadable, unpack_container
    from .mapupdate import MAGIC_MAP

    try:
        box = unpack_container(data, MAGIC_MAP, "map update", source)
    except Unreadable as err:
        raise PolicyError([err.problem]) from err
    return box.manifest, box.payload


def _keys_gen(args: argparse.Namespace) -> int:
    from .keys import generate_keys, key_id, load_public_key

    priv, pub = generate_keys(args.out, args.name, args.force)
    print(f"{priv} (private: keep it on the signing host)\n{pub} (public: give it to devices)"
          f"\nkey id {key_id(load_public_key(pub))}")
    return 0
