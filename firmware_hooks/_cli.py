"""``freeoffload run``: run an unmodified program with the connect() hook and a task's attributes.

Module-level imports stay light: every ``freeoffload`` command imports this module.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["register", "run_environment"]

# FO_TASK_* of policy.h
_TASK_TYPES = {"cpu": 1, "io": 2}
_SENSITIVE = 0x1
_URGENT = 0x2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a program with its connect() calls under the installed offload policy",
        description=(
            "Run PROGRAM with libfreeoffload_hook.so preloaded: each connect() it makes runs the "
            "policy installed in the store, which may send the connection elsewhere. Without a "
            "policy, or if the hook cannot do its job, connect() behaves as if it were not there."
        ),
    )
    parser.add_argument("--task", metavar="TASK.yaml", type=Path,
                        help="the task file whose attributes (Type, Sensitive, Urgent, Demand) "
                             "the policy sees")
    parser.add_argument("--store", metavar="DIR", type=Path,
                        help="policy store (default: $FREEOFFLOAD_STORE or /run/freeoffload)")
    parser.add_argument("--kernel", action="store_true",
                        help="also put PROGRAM in a cgroup whose connect4/6 BPF programs apply "
                             "the policy's candidates (covers static binaries and raw syscalls)")
    parser.add_argument("--debug", action="store_true",
                        help="print one line per problem the hook meets (FREEOFFLOAD_HOOK_DEBUG=1)")
    parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- PROGRAM ARGS",
                        help="the program and its arguments")
    parser.set_defaults(func=_run)


def _task_variables(path: Path) -> dict[str, str]:
    from freeoffload.topology import load_task

    task = load_task(path)
    flags = (_SENSITIVE if task.sensitive else 0) | (_URGENT if task.urgent else 0)
    return {
        "FREEOFFLOAD_TASK_NAME": task.name,
        "FREEOFFLOAD_TASK_TYPE": str(_TASK_TYPES.get(task.type, 0)),
        "FREEOFFLOAD_TASK_FLAGS": str(flags),
        "FREEOFFLOAD_TASK_CPU_MILLI": str(int(task.demand.cpu_cores * 1000)),
        "FREEOFFLOAD_TASK_MEMORY_MIB": str(int(task.demand.memory_mib)),
        "FREEOFFLOAD_TASK_STORAGE_MIB": str(int(task.demand.storage_mib)),
    }


def run_environment(base: Mapping[str, str], store: Path, task: Path | None = None,
                    debug: bool = False) -> dict[str, str]:
    """The environment ``freeoffload run`` gives the program (the hook first in LD_PRELOAD)."""
    from . import hook_library_path

    env = dict(base)
    preload = str(hook_library_path())
    others = [p for p in env.get("LD_PRELOAD", "").replace(":", " ").split() if p != preload]
    env["LD_PRELOAD"] = " ".join([preload, *others])
    env["FREEOFFLOAD_STORE"] = str(store.resolve())
    if debug:
        env["FREEOFFLOAD_HOOK_DEBUG"] = "1"
    for name in [k for k in env if k.startswith("FREEOFFLOAD_TASK_")]:
        del env[name]
    if task is not None:
        env.update(_task_variables(task))
    return env


def _run(args: argparse.Namespace) -> int:
    from freeoffload.errors import HookError

    from .store import PolicyStore, default_store_dir

    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise HookError("run: no program given; usage: freeoffload run [OPTIONS] -- PROGRAM ARGS")
    store = PolicyStore(args.store or default_store_dir())
    try:
        store.init()  # so a policy installed later reaches the program on its next call
    except HookError as err:
        print(f"freeoffload run: warning: {err}; the program runs without a policy until the "
              "store exists", file=sys.stderr)
    env = run_environment(os.environ, store.directory, args.task, args.debug)
    if args.kernel:
        try:
            from .kernel import run_in_cgroup
        except ImportError as err:
            raise HookError(f"run --kernel: the kernel path is not available: {err}") from err
        return int(run_in_cgroup(argv, store.directory, env))
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(argv[0], argv, env)  # noqa: S606 (the program replaces us)
    except OSError as err:
        raise HookError(f"run: cannot start {argv[0]!r}: {err.strerror}") from err
    return 127  # not reached
