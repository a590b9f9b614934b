"""fig7's story names the push that moved dev1: the trigger's fire, or a refresh that came first."""

from __future__ import annotations

from typing import Any

from freeoffload.agent.testbed.fig7 import _moving_push


def _push(action: str, at: float, targets: list[str], device: str = "dev1",
          result: str = "ok") -> dict[str, Any]:
    return {"device": device, "action": action, "at": at, "targets": targets, "result": result,
            "reason": f"{action} at {at}"}


def test_the_newest_push_since_the_start_that_left_edge1_out_is_named() -> None:
    answer = {
        "pushes": [_push("fire", 50.0, ["cloud", "edge3"]),   # an earlier scenario's
                   _push("fire", 130.0, ["cloud", "edge3"])],
        "refreshes": [_push("refresh", 110.0, ["edge1", "edge3"]),  # edge1 still offered
                      _push("refresh", 120.0, ["cloud", "edge3"]),
                      _push("refresh", 125.0, ["cloud"], result="failed"),
                      _push("refresh", 140.0, ["cloud"], device="dev2")],
    }
    assert _moving_push(answer, since=100.0)["reason"] == "fire at 130.0"
    answer["pushes"].pop()
    assert _moving_push(answer, since=100.0)["reason"] == "refresh at 120.0"
    assert _moving_push(answer, since=121.0) is None
    assert _moving_push({"error": "unauthenticated"}, since=0.0) is None
