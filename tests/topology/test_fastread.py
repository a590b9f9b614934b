"""The common-case readers (topology/_fastread.py) agree with the loader's full checks.

They exist for speed only: whenever they return a node or edge, the checker must find nothing
to report about it and build the very same record; for anything else they must step aside.
"""

from __future__ import annotations

import math
from typing import Any

import yaml
from freeoffload.topology._check import Checker
from freeoffload.topology._fastread import fast_edge, fast_node
from freeoffload.topology.loader import _edge, _node
from hypothesis import given, settings
from hypothesis import strategies as st

from freeoffload.yamlfile import LocMap, load_yaml_text

JUNK = st.sampled_from([None, True, False, -1, 0, 0.0, -0.0, 1.5, 101, 2**70, math.inf,
                        math.nan, "", " ", "x", "7", [], {}, [1], {"a": 1}, "10.0.0.1:80",
                        "host:0", "host:99999", ":80", "edge", "cloud", "device", "cpu"])
NUMBER = st.sampled_from([0, 1, 2, 4, 0.5, 100, 2048, 8192, 99.5, 1e6])


def _field(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(good, good, good, JUNK)


CPU = st.fixed_dictionaries({"cores": _field(NUMBER)}, optional={"MHz": _field(NUMBER),
                                                                  "GHz": JUNK})
POWER = st.fixed_dictionaries({}, optional={"CPU": _field(CPU), "Memory": _field(NUMBER),
                                            "Storage": _field(NUMBER), "Disk": JUNK})
RESOURCE = st.fixed_dictionaries({}, optional={
    "cpu_percent": _field(NUMBER), "memory_used": _field(NUMBER),
    "storage_used": _field(NUMBER), "running_tasks": _field(NUMBER), "gpu": JUNK})
CAPABILITY = st.dictionaries(st.sampled_from(["cpu", "io", "gpu", "CPU"]), _field(NUMBER),
                             max_size=3)
NODE = st.fixed_dictionaries({}, optional={
    "Name": _field(st.sampled_from(["edge1", "cloud", "n-7"])),
    "Role": _field(st.sampled_from(["cloud", "edge", "device"])),
    "Group": _field(st.sampled_from(["g1", "g2"])),
    "Address": _field(st.sampled_from(["10.0.0.1:8080", "[fd00::1]:80", "h:65535"])),
    "ComputingPower": _field(POWER), "Security": _field(st.booleans()),
    "Resource": _field(RESOURCE), "Capability": _field(CAPABILITY),
    "Online": _field(st.booleans()), "Updated": _field(NUMBER), "Colour": JUNK,
})
EDGE = st.fixed_dictionaries({}, optional={
    "StartNode": _field(st.sampled_from(["a", "b", "c"])),
    "EndNode": _field(st.sampled_from(["a", "b", "c"])),
    "BandWidth": _field(NUMBER), "Latency": _field(NUMBER), "Jitter": JUNK,
})


def _located(value: dict[str, Any]) -> LocMap:
    data = load_yaml_text(yaml.safe_dump(value), "fast.yaml")
    assert isinstance(data, LocMap)
    return data


@settings(max_examples=400, deadline=None)
@given(NODE)
def test_a_node_read_fast_is_the_one_the_checker_builds(value: dict[str, Any]) -> None:
    data = _located(value)
    fast = fast_node(data)
    check = Checker("fast.yaml")
    full = _node(check, data, 0)
    if fast is not None:
        assert check.problems == []
        assert repr(fast) == repr(full)  # repr: 4 and 4.0 differ
    else:  # it steps aside only for something the checker reports
        assert check.problems


@settings(max_examples=200, deadline=None)
@given(EDGE)
def test_an_edge_read_fast_is_the_one_the_checker_builds(value: dict[str, Any]) -> None:
    data = _located(value)
    names = {name: LocMap() for name in ("a", "b")}
    fast = fast_edge(data, names)
    check = Checker("fast.yaml")
    full = _edge(check, data, 0, names)
    if fast is not None:
        assert check.problems == []
        assert repr(fast) == repr(full)
    else:
        assert check.problems


def test_a_well_formed_node_and_edge_take_the_fast_path() -> None:
    node = _located({"Name": "e1", "Role": "edge", "Group": "g", "Address": "10.0.0.1:80",
                     "ComputingPower": {"CPU": {"cores": 4, "MHz": 2000}, "Memory": 8192,
                                        "Storage": 256},
                     "Resource": {"cpu_percent": 20, "memory_used": 2048},
                     "Capability": {"cpu": 5.5}, "Security": True, "Online": True})
    assert fast_node(node) is not None
    edge = _located({"StartNode": "a", "EndNode": "b", "BandWidth": 1000, "Latency": 2.5})
    assert fast_edge(edge, {"a": LocMap(), "b": LocMap()}) is not None
