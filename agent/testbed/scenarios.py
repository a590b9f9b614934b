"""``testbed run SCENARIO``: bring the testbed up if it is not, run, and take down what we made."""

from __future__ import annotations

import time
from pathlib import Path

from freeoffload.errors import TestbedError

from . import bed
from .cgroups import find_cgroups
from .config import Plan

__all__ = ["run_scenario"]


def run_scenario(name: str, size: str, plan: Plan, out: str | Path) -> int:
    """Run ``fig7`` or ``fig9`` at ``size``; outputs go to ``out``. Returns the exit status."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    current = bed.status(plan.prefix)
    made_here = not current.is_up
    if made_here:
        if current.namespaces or current.state is not None:
            raise TestbedError("a broken testbed is left over; run `freeoffload testbed down`")
        print(f"testbed: bringing up {len(plan.nodes)} nodes", flush=True)
        bed.up(plan)
    started = time.monotonic()
    try:
        cgroups = find_cgroups(plan.prefix)
        if name == "fig9":
            from .fig9 import run_fig9

            run_fig9(plan, cgroups, size, out_dir, bed.STATE_DIR)
        elif name == "fig7":
            from .fig7 import run_fig7

            run_fig7(plan, cgroups, size, out_dir, bed.STATE_DIR)
        else:
            raise TestbedError(f"unknown scenario '{name}'; expected fig7 or fig9")
    finally:
        if made_here:
            bed.down(plan.prefix)
    print(f"{name}: done in {time.monotonic() - started:.0f}s; results in {out_dir}/")
    return 0
