"""``freeoffload device``: the device daemon (signed policies and map updates over HTTP)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from .config import load_config
    from .server import serve

    config = load_config(args.config)
    if args.check:
        print(f"{args.config}: ok: listen {config.host}:{config.port}, store {config.store}, "
              f"state {config.state_dir}, {len(config.trusted_keys)} trusted key(s)")
        return 0
    return serve(config, Path(args.config))


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "device",
        help="run the device daemon that accepts signed policies and map updates",
        description="Accept signed offload policies and map updates from this device's edge "
        "or center over HTTP (PUT /v1/policy, PUT /v1/maps/{map}, GET /v1/status), verify "
        "them and install them into the policy store hooked programs read.",
    )
    parser.add_argument("--config", default="/etc/freeoffload/device.yaml", metavar="FILE",
                        help="the daemon's YAML configuration (default: %(default)s)")
    parser.add_argument("--check", action="store_true",
                        help="validate the configuration (and load its keys), then exit")
    parser.set_defaults(func=_run)
