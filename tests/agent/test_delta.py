"""The ingest fast path accepts only what the full validation accepts, and builds the same."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from freeoffload.agent._delta import DeltaCache
from freeoffload.agent._wire import ReportError, parse_report

BASE: dict[str, Any] = {
    "Node": {"Name": "e1", "Role": "edge", "Group": "g", "Address": "10.0.0.1:7070",
             "ComputingPower": {"CPU": {"cores": 2, "MHz": 2000}, "Memory": 4096,
                                "Storage": 32},
             "Security": True,
             "Resource": {"cpu_percent": 20.5, "memory_used": 100, "storage_used": 1,
                          "running_tasks": 3},
             "Capability": {"cpu": 10.0, "io": 12.5}, "Online": True, "Updated": 1000.0},
    "Links": [{"StartNode": "e1", "EndNode": "c", "BandWidth": 100, "Latency": 0.5}],
    "Agent": "10.0.0.1:7070"}


def variant(path: tuple[str, ...], value: Any) -> bytes:
    doc = copy.deepcopy(BASE)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(doc).encode()


VARIANTS = [
    (("Node", "Resource", "cpu_percent"), 99.0), (("Node", "Resource", "cpu_percent"), 100.5),
    (("Node", "Resource", "cpu_percent"), -1), (("Node", "Resource", "cpu_percent"), True),
    (("Node", "Resource", "memory_used"), 5000), (("Node", "Resource", "running_tasks"), 2.5),
    (("Node", "Resource", "extra"), 1), (("Node", "Capability", "gpu"), 1.0),
    (("Node", "Capability", "cpu"), 0), (("Node", "Capability"), KeyError),
    (("Node", "Online"), "yes"), (("Node", "Online"), False), (("Node", "Updated"), "now"),
    (("Node", "Updated"), 2000.5), (("Links",), [{"StartNode": "x", "EndNode": "y",
                                                  "BandWidth": 1, "Latency": 1}]),
    (("Links",), [{"StartNode": "e1", "EndNode": "e1", "BandWidth": 1, "Latency": 1}]),
    (("Links",), []), (("Node", "Security"), False), (("Node", "Memory"), 1),
    (("Node", "ComputingPower", "Memory"), 50), (("Extra",), 1),
    (("Agent",), "10.0.0.2:7070"), (("Agent",), "10.0.0.1:99999"), (("Agent",), 5),
    (("Agent",), KeyError),
    (("Node", "Resource", "storage_used"), 33), (("Node", "Resource", "storage_used"), 32),
    (("Node", "Resource", "memory_used"), 4096), (("Node", "Resource", "running_tasks"), -1),
    (("Node", "Resource", "running_tasks"), True), (("Node", "Resource", "memory_used"), "1"),
    (("Node", "Resource"), [1]), (("Node", "Resource"), KeyError), (("Node", "Updated"), -1),
    (("Node", "Updated"), False), (("Node", "Updated"), KeyError), (("Node", "Updated"), 7),
    (("Links",), [{"StartNode": "e1", "EndNode": "c", "BandWidth": 100, "Latency": -0.5}]),
    (("Links",), [{"StartNode": "e1", "EndNode": "c", "BandWidth": True, "Latency": 1}]),
    (("Links",), [{"StartNode": "c", "EndNode": "e1", "BandWidth": 1, "Latency": 1e308}]),
    (("Links",), [{"StartNode": "e1", "EndNode": "", "BandWidth": 1, "Latency": 1}]),
    (("Links",), {"StartNode": "e1"}),
]


@pytest.mark.parametrize(("path", "value"), VARIANTS)
def test_fast_path_agrees_with_the_full_validation(path: tuple[str, ...], value: Any) -> None:
    cache = DeltaCache()
    first = json.dumps(BASE).encode()
    cache.remember(first, parse_report(first, "r")[0])
    body = variant(path, value)
    fast = cache.parse(body)
    try:
        full = parse_report(body, "r")
    except ReportError:
        assert fast is None, f"fast path accepted what the loader refuses: {path}={value!r}"
        return
    if fast is not None:
        assert fast == full


def test_unchanged_static_part_takes_the_fast_path() -> None:
    cache = DeltaCache()
    first = json.dumps(BASE).encode()
    cache.remember(first, parse_report(first, "r")[0])
    fast = cache.parse(variant(("Node", "Resource", "cpu_percent"), 77.0))
    assert fast is not None and fast[0].resource.cpu_percent == 77.0
    assert cache.parse(variant(("Node", "Security"), False)) is None


@pytest.mark.parametrize("value", ["Infinity", "NaN", "-Infinity"])
@pytest.mark.parametrize("key", ["Latency", "BandWidth"])
def test_a_link_number_json_alone_accepts_is_refused(key: str, value: str) -> None:
    """json (the full path's parser) reads NaN and Infinity; a link's numbers must be finite
    (an infinite latency made the routing call a node unreachable behind the index's back)."""
    body = json.dumps(BASE).encode().replace(f'"{key}": '.encode() + (
        b"0.5" if key == "Latency" else b"100"), f'"{key}": {value}'.encode())
    assert value.encode() in body
    where = f"r:1:[0-9]+: Links\\[0\\]\\.{key}: expected a number"
    with pytest.raises(ReportError, match=where):
        parse_report(body, "r")
    assert DeltaCache().parse(body) is None


@pytest.mark.parametrize(("link", "error"), [
    ({"BandWidth": 0}, "Links\\[0\\]\\.BandWidth: must be above 0, got 0"),
    ({"BandWidth": KeyError}, "Links\\[0\\]\\.BandWidth: missing"),
    ({"Latency": KeyError}, "Links\\[0\\]\\.Latency: missing"),
])
def test_a_link_the_served_map_could_not_hold_is_refused(link: dict[str, Any],
                                                         error: str) -> None:
    """The center's /v1/topology writes accepted links as CR-map edges, which need a BandWidth
    above 0 and both numbers: a report without them made that map unreadable for everyone."""
    (key, value), = link.items()
    doc = copy.deepcopy(BASE)
    if value is KeyError:
        del doc["Links"][0][key]
    else:
        doc["Links"][0][key] = value
    body = json.dumps(doc).encode()
    with pytest.raises(ReportError, match=error):
        parse_report(body, "r")
    cache = DeltaCache()
    first = json.dumps(BASE).encode()
    cache.remember(first, parse_report(first, "r")[0])
    assert cache.parse(body) is None
