"""``freeoffload agent [--config FILE] [--listen HOST:PORT]`` and ``freeoffload agent check``."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def _load(args: argparse.Namespace) -> Any:
    from .config import default_config, load_config

    if args.config:
        return load_config(args.config, listen=args.listen)
    return default_config(args.listen)


def _run(args: argparse.Namespace) -> int:
    from .daemon import run_daemon
    from .log import setup_logging

    cfg = _load(args)
    setup_logging(args.log_level)
    return run_daemon(cfg)


def _check(args: argparse.Namespace) -> int:
    from .node import LocalNode

    cfg = _load(args)
    node = LocalNode(cfg).sample()
    print(f"{cfg.source}: ok: node {cfg.node}, role {cfg.role}, group {cfg.group}, "
          f"listen {cfg.listen[0]}:{cfg.listen[1]}, {node.computing_power.cpu.cores:g} cores, "
          f"auth {'mtls+token' if cfg.tls else 'token' if cfg.token else 'none'}")
    if cfg.trigger.devices:
        from .trigger import load_push_material

        load_push_material(cfg)
        print(f"trigger: {len(cfg.trigger.devices)} device(s), threshold "
              f"{cfg.trigger.threshold:g}% for {cfg.trigger.samples} samples")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "agent", help="run the node agent (member, group center or cloud)",
        description="Run the telemetry agent: report this node to its group's center, or "
                    "serve as a center or the cloud. With no --config: a one-node group that "
                    "is its own center.")
    parser.add_argument("--config", metavar="FILE", help="agent configuration (YAML)")
    parser.add_argument("--listen", metavar="HOST:PORT", help="address to serve the HTTP API on")
    parser.add_argument("--log-level", default="info",
                        choices=("debug", "info", "warning", "error"))
    parser.set_defaults(func=_run)
    sub = parser.add_subparsers(dest="agent_command", metavar="COMMAND")
    check = sub.add_parser("check", help="load and validate the configuration, then exit")
    check.add_argument("--config", metavar="FILE", help="agent configuration (YAML)")
    check.add_argument("--listen", metavar="HOST:PORT", help="address to serve the HTTP API on")
    check.set_defaults(func=_check)
