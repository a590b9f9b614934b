"""The kernel path: a cgroup whose connect4/6 programs run the installed policy.

``freeoffload run --kernel`` calls :func:`run_in_cgroup`. The policy object the store holds
runs in the kernel itself (linked behind a small wrapper, see ``_wrapper.py``), with its maps
kept equal to the store's rows, so statically linked programs and raw ``connect`` system
calls are redirected exactly as the user-space hook redirects dynamic ones.
:func:`kernel_support` says whether (and why not) this kernel and user can do it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from ._run import Snapshot, kernel_support, run_with_source, task_from_env
from ._source import store_source

__all__ = ["Snapshot", "kernel_support", "run_in_cgroup", "run_with_source", "task_from_env",
           "without_hook"]

_HOOK_LIBRARY = "libfreeoffload_hook.so"


def run_in_cgroup(argv: Sequence[str], store_dir: str | os.PathLike[str],
                  env: Mapping[str, str]) -> int:
    """Run ``argv`` (with environment ``env``) in a new cgroup v2 whose connect4/6 programs
    apply the policy in ``store_dir``; returns its exit status (128+N for signal N).

    Raises :class:`~freeoffload.errors.HookError` before starting anything when the kernel
    path cannot run here (no cgroup v2, no bpf(), no cgroup sock_addr programs, not root).

    The kernel programs decide every connect of the program, so the LD_PRELOAD hook is taken
    out of ``env``'s ``LD_PRELOAD`` (other preloads stay): a connection decided twice would
    differ from the user-space path's one decision (a redirect table A->B, B->C would send a
    dynamic program's A two hops, to C).
    """
    return run_with_source(argv, store_source(store_dir), without_hook(env))


def without_hook(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with libfreeoffload_hook.so removed from LD_PRELOAD."""
    out = dict(env)
    preload = out.get("LD_PRELOAD", "").replace(":", " ").split()
    kept = [p for p in preload if os.path.basename(p) != _HOOK_LIBRARY]
    if kept:
        out["LD_PRELOAD"] = " ".join(kept)
    else:
        out.pop("LD_PRELOAD", None)
    return out
