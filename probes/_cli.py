"""``freeoffload probes``: list the probes, check they load here, watch a node live."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("probes", help="eBPF collectors: list, check, watch",
                                   description="The node's eBPF collectors and procfs fallback.")
    sub = parser.add_subparsers(dest="probes_command", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="the built-in probes, their tracepoints and metrics")
    listing.set_defaults(func=_list)
    check = sub.add_parser("check", help="load and attach every probe, report, exit")
    check.add_argument("--scope", help="cgroup v2 path to limit the probes to")
    check.set_defaults(func=_check)
    watch = sub.add_parser("watch", help="a live table of the node's figures")
    watch.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    watch.add_argument("--count", type=int, default=0, help="stop after N samples (0: never)")
    watch.add_argument("--mode", choices=("auto", "ebpf", "procfs"), default="auto")
    watch.add_argument("--scope", help="cgroup v2 path to limit the probes to")
    watch.add_argument("--format", choices=("table", "json", "record"), default="table",
                       help="table (live), json (one sample a line) or record (CR-map YAML)")
    watch.add_argument("--name", default=None, help="the node's Name in records")
    watch.set_defaults(func=_watch)


def _list(args: argparse.Namespace) -> int:
    from ._features import missing_tracepoints, tracefs
    from .spec import builtin_names, load_probe

    base = tracefs(mount=False)
    for name in builtin_names():
        spec = load_probe(name)
        print(f"{name}: {spec.description}")
        missing = set(missing_tracepoints(spec.tracepoints + spec.optional, base)) if base \
            else set()
        for tp in spec.tracepoints + spec.optional:
            kind = "optional " if tp in spec.optional else ""
            state = "unknown (tracefs absent or not readable)" if base is None else \
                "missing" if tp in missing else "present"
            print(f"  {kind}tracepoint {tp}: {state}")
        for m in spec.metrics:
            labels = ",".join(m.labels)
            print(f"  {m.name} {m.type} [{m.unit}] {{{labels}}} {m.help}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from freeoffload.errors import ProbeError

    from ._features import ebpf_off_reason, has_kprobes, tracefs

    reason = ebpf_off_reason()
    print(f"kprobes: {'available' if has_kprobes(tracefs(mount=False)) else 'absent'}"
          " (used only where a tracepoint is missing)")
    if reason is not None:
        print(f"mode: procfs ({reason})")
        return 1
    from . import _bcc
    from ._scope import resolve_scope
    from .spec import builtin_names, load_probe

    scope = resolve_scope(args.scope) if args.scope else None
    failed = 0
    for name in builtin_names():
        spec = load_probe(name)
        try:
            probe = _bcc.load(spec, scope)
        except ProbeError as err:
            print(f"{name}: FAILED: {err}")
            failed += 1
            continue
        try:
            reads = [(r.name, r.read()) for r in probe.readers.values()]
            how = "batch" if all(r.batched for r in probe.readers.values()) else "per key"
            skipped = f"; absent optional: {', '.join(probe.skipped)}" if probe.skipped else ""
            print(f"{name}: ok, compiled in {probe.compile_seconds:.2f} s, "
                  f"{len(probe.tracepoints)} tracepoints attached{skipped}; "
                  f"{len(reads)} maps read ({how})")
        finally:
            probe.close()
    print(f"mode: {'ebpf' if not failed else 'procfs'}"
          + (f" ({failed} probe(s) failed)" if failed else ""))
    return 1 if failed else 0


def _watch(args: argparse.Namespace) -> int:
    import socket

    from . import open_collector, stream
    from .record import RecordBuilder

    if args.interval <= 0:
        from freeoffload.errors import ConfigError, Location

        raise ConfigError.at(Location("--interval"), "interval", "must be above 0 seconds")
    collector = open_collector(args.mode, args.scope)
    builder = RecordBuilder(args.name or socket.gethostname())
    try:
        for sample in stream(collector, args.interval, args.count):
            builder.add(sample)
            if args.format == "json":
                print(json.dumps(sample.to_dict()), flush=True)
            elif args.format == "record":
                _print_record(builder.record())
            else:
                from ._table import render

                clear = "\x1b[H\x1b[2J" if sys.stdout.isatty() else ""
                print(clear + render(sample), flush=True)
    finally:
        collector.close()
    return 0


def _print_record(record: dict[str, Any]) -> None:
    import yaml

    print("---")
    print(yaml.safe_dump({"nodes": [record["node"]], "edges": record["edges"]},
                         sort_keys=False), end="", flush=True)
