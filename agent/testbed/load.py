"""A CPU load that ramps up inside a node's CPU share.

``python -m freeoffload.agent.testbed.load --cores 0.1 --ramp 20 --hold 30`` burns, every 100 ms,
a growing share of ``cores`` (from 10% to 120% of it over ``ramp`` seconds, then held), so a node
limited to ``cores`` goes from lightly loaded to saturated.
"""

from __future__ import annotations

import argparse
import sys
import time

__all__ = ["level_at", "main", "ramp"]

PERIOD = 0.1


def level_at(t: float, ramp_s: float, start: float = 0.1, top: float = 1.2) -> float:
    """The share of the node's CPU to burn at ``t`` seconds into the ramp."""
    if ramp_s <= 0:
        return top
    return min(top, start + (top - start) * t / ramp_s)


def ramp(cores: float, ramp_s: float, hold_s: float) -> None:
    begin = time.monotonic()
    while (t := time.monotonic() - begin) < ramp_s + hold_s:
        busy = PERIOD * cores * level_at(t, ramp_s)
        end = time.monotonic() + busy
        x = 0
        while time.monotonic() < end:
            x += 1
        time.sleep(max(0.0, PERIOD - busy))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="freeoffload-testbed-load")
    parser.add_argument("--cores", type=float, required=True, help="the node's CPU share")
    parser.add_argument("--ramp", type=float, default=20.0, help="seconds from 10%% to 120%%")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds at the top")
    args = parser.parse_args(argv)
    print(f"load: ramping {args.cores} cores over {args.ramp}s, holding {args.hold}s",
          flush=True)
    ramp(args.cores, args.ramp, args.hold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
