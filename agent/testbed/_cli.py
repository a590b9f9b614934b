"""``freeoffload testbed up|down|status|run SCENARIO``."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register"]

SCENARIOS = ("fig7", "fig9")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "testbed", help="the paper's network on this machine and its experiments",
        description="Build the CR-map's nodes as network namespaces with their latencies, "
                    "bandwidths and CPU shares; run the paper's experiments on them.")
    sub = parser.add_subparsers(dest="testbed_command", metavar="ACTION", required=True)

    p = sub.add_parser("up", help="build the testbed (root)")
    p.add_argument("--config", help="testbed file (default: examples/testbed/testbed.yaml)")
    p.add_argument("--no-services", action="store_true",
                   help="only the network and cgroups, no task services")
    p.add_argument("--agents", action="store_true",
                   help="also `freeoffload device` on the devices and `freeoffload agent` on "
                        "the edges and the cloud (groups, centers and triggers as configured)")
    p.set_defaults(func=_up)

    p = sub.add_parser("down", help="remove every namespace, cgroup and process of the testbed")
    p.add_argument("--prefix", help="name prefix to clean up (default: the state file's, fotb-)")
    p.set_defaults(func=_down)

    p = sub.add_parser("status", help="show what is up")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_status)

    p = sub.add_parser("run", help="run an experiment (brings the testbed up when needed)")
    p.add_argument("scenario", choices=SCENARIOS)
    p.add_argument("--size", choices=("reduced", "full"), default="reduced")
    p.add_argument("--config", help="testbed file (default: examples/testbed/testbed.yaml)")
    p.add_argument("--out", default="out", help="directory for CSV and PNG (default: out)")
    p.set_defaults(func=_run)


def _plan(args: argparse.Namespace) -> Any:
    from .config import DEFAULT_CONFIG, load_plan

    return load_plan(args.config or DEFAULT_CONFIG)


def _up(args: argparse.Namespace) -> int:
    from .bed import up

    plan = _plan(args)
    state = up(plan, services=not args.no_services)
    if args.agents:
        from .agents import start_all
        from .bed import STATE_DIR, down
        from .cgroups import find_cgroups

        try:
            agents = start_all(plan, find_cgroups(plan.prefix), STATE_DIR)
        except BaseException:
            down(plan.prefix)
            raise
        roles = [f"{name} ({cfg['role']})" for name, cfg in agents.configs.items()]
        print(f"agents: {', '.join(roles)}")
    how = "netem" if state["netem"] else "fo-relay delay stage"
    print(f"testbed up: {len(plan.nodes)} nodes, latency by {how}, "
          f"cgroup v{state['cgroup_version']}")
    for node in plan.nodes:
        print(f"  {node.name:8} {node.netns:14} {node.ip:15} cpu {node.cpu:.3f} cores")
    return 0


def _down(args: argparse.Namespace) -> int:
    from .bed import down

    removed = down(args.prefix)
    print(f"testbed down: {len(removed.processes)} processes, "
          f"{len(removed.namespaces)} namespaces, {len(removed.cgroups)} cgroups removed")
    return 0


def _status(args: argparse.Namespace) -> int:
    from .bed import status

    st = status()
    if args.json:
        print(json.dumps({"up": st.is_up, "prefix": st.prefix, "namespaces": st.namespaces,
                          "cgroups": st.cgroups, "processes": st.processes}, indent=1))
        return 0 if st.is_up else 3
    if not st.namespaces and not st.cgroups and st.state is None:
        print("testbed: down (nothing left)")
        return 3
    print(f"testbed: {'up' if st.is_up else 'INCOMPLETE (run `freeoffload testbed down`)'}")
    print(f"  namespaces: {' '.join(st.namespaces) or '-'}")
    for name, info in st.cgroups.items():
        quota = info["cpu_quota"]
        quota_text = f"{quota:.3f} cores" if quota is not None else "unlimited"
        print(f"  cgroup {name:8} {quota_text:14} used {info['cpu_used_seconds']:.1f}s "
              f"pids {len(info['pids'])}")
    for proc in st.processes:
        print(f"  {proc['name']:8} {proc['node']:8} pid {proc['pid']:<7} "
              f"{'alive' if proc['alive'] else 'DEAD'}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from .scenarios import run_scenario

    return run_scenario(args.scenario, args.size, _plan(args), args.out)
