"""The testbed's network, made with pyroute2.

Every node is a namespace ``PREFIX+Name`` whose ``eth0`` has the node's address. A hub namespace
(``PREFIX+"hub"``) holds the bridge and, per node, two veth ends the delay stage joins::

    node ns           hub ns
    eth0 ===veth=== N a  <-- relay -->  N b ===veth=== N p --+ bridge
                                                             |
    (other nodes the same way) ------------------------------+

Bandwidth is shaped where each node sends: HTB on its ``eth0`` with one class per peer (the
bottleneck bandwidth along the CR-map path) and a u32 filter on the peer's address. Where the
kernel has netem the delay goes there too (a netem qdisc under each class) and no relay runs.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from freeoffload.errors import TestbedError

from .config import NodePlan, Plan

__all__ = [
    "build_network",
    "has_netem",
    "hub_ports",
    "list_namespaces",
    "remove_namespaces",
]

_NETNS_DIR = Path("/run/netns")
_DEFAULT_CLASS = 0xFFFF  # broadcast, ARP and anything not to a known peer: unshaped


def list_namespaces(prefix: str) -> list[str]:
    """Namespaces whose name starts with ``prefix`` (found by name, so leftovers count)."""
    if not _NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in _NETNS_DIR.iterdir() if p.name.startswith(prefix))


def hub_ports(plan: Plan, node: NodePlan) -> tuple[str, str, str]:
    """Names of a node's veth ends in the hub: relay-to-node, relay-to-bridge, bridge port."""
    base = f"{plan.prefix}{node.index}"
    return f"{base}a", f"{base}b", f"{base}p"


def has_netem() -> bool:
    """Whether this kernel has the netem qdisc (tried on a scratch namespace's loopback)."""
    from pyroute2 import NetNS, netns
    from pyroute2.netlink.exceptions import NetlinkError

    name = f"fotb-probe-{id(object())}"
    netns.create(name)
    try:
        with NetNS(name) as ns:
            lo = ns.link_lookup(ifname="lo")[0]
            ns.link("set", index=lo, state="up")
            try:
                ns.tc("add", "netem", index=lo, handle="1:", delay=1000)
            except NetlinkError:
                return False
            return True
    finally:
        netns.remove(name)


def _sysctl(ns: str, key: str, value: str) -> None:
    import subprocess

    path = "/proc/sys/" + key.replace(".", "/")
    subprocess.run(["nsenter", f"--net={_NETNS_DIR / ns}", "sh", "-c", f"echo {value} > {path}"],
                   check=True, capture_output=True)


def _make_hub(plan: Plan) -> None:
    from pyroute2 import NetNS

    _sysctl(plan.hub, "net.ipv6.conf.all.disable_ipv6", "1")
    _sysctl(plan.hub, "net.ipv6.conf.default.disable_ipv6", "1")
    with NetNS(plan.hub) as ns:
        ns.link("add", ifname=f"{plan.prefix}br", kind="bridge", br_forward_delay=0)
        bridge = ns.link_lookup(ifname=f"{plan.prefix}br")[0]
        ns.link("set", index=bridge, state="up")


def _wire_node(plan: Plan, node: NodePlan, relay: bool) -> None:
    from pyroute2 import NetNS

    a, b, p = hub_ports(plan, node)
    with NetNS(plan.hub) as ns:
        bridge = ns.link_lookup(ifname=f"{plan.prefix}br")[0]
        tmp = f"{plan.prefix}{node.index}n"
        ns.link("add", ifname=tmp, kind="veth", peer={"ifname": a})
        ns.link("set", index=ns.link_lookup(ifname=tmp)[0], net_ns_fd=node.netns)
        if relay:
            ns.link("add", ifname=b, kind="veth", peer={"ifname": p})
            port = ns.link_lookup(ifname=p)[0]
            for name in (a, b):
                ns.link("set", index=ns.link_lookup(ifname=name)[0], state="up")
        else:
            port = ns.link_lookup(ifname=a)[0]
        ns.link("set", index=port, master=bridge, state="up")
    with NetNS(node.netns) as ns:
        lo = ns.link_lookup(ifname="lo")[0]
        ns.link("set", index=lo, state="up")
        eth = ns.link_lookup(ifname=tmp)[0]
        ns.link("set", index=eth, ifname="eth0", address=node.mac)
        ns.addr("add", index=eth, address=node.ip, prefixlen=plan.prefixlen)
        ns.link("set", index=eth, state="up")


def _shape_node(plan: Plan, node: NodePlan, netem: bool) -> None:
    """HTB on the node's eth0: one class per peer at the path's bandwidth (netem delay inside)."""
    from pyroute2 import NetNS

    with NetNS(node.netns) as ns:
        eth = ns.link_lookup(ifname="eth0")[0]
        ns.tc("add", "htb", index=eth, handle="1:", default=_DEFAULT_CLASS)
        ns.tc("add-class", "htb", index=eth, handle=f"1:{_DEFAULT_CLASS:x}", parent="1:",
              rate="10gbit")
        for peer in plan.nodes:
            mbit = plan.bandwidth_mbit.get((node.name, peer.name))
            if peer is node or mbit is None:
                continue
            minor = peer.index + 1
            rate = f"{max(int(mbit * 1000), 100)}kbit" if mbit > 0 else "10gbit"
            burst = max(16_000, int((mbit or 10_000) * 1e6 / 8 / 200))
            ns.tc("add-class", "htb", index=eth, handle=f"1:{minor:x}", parent="1:",
                  rate=rate, ceil=rate, burst=burst, cburst=burst)
            if netem:
                delay_us = int(plan.delay_ms[(node.name, peer.name)] * 1000)
                ns.tc("add", "netem", index=eth, handle=f"{minor + 1:x}:",
                      parent=f"1:{minor:x}", delay=delay_us, limit=10_000)
            key = f"0x{int(ipaddress.IPv4Address(peer.ip)):08x}/0xffffffff+16"
            ns.tc("add-filter", "u32", index=eth, parent="1:", prio=1, protocol=0x0800,
                  target=f"1:{minor:x}", keys=[key])


def build_network(plan: Plan, netem: bool) -> None:
    """Make every namespace, veth, the bridge and the shaping; raise TestbedError on failure."""
    from pyroute2 import netns
    from pyroute2.netlink.exceptions import NetlinkError

    taken = list_namespaces(plan.prefix)
    if taken:
        raise TestbedError(f"testbed namespaces exist already ({', '.join(taken)}); "
                           "run `freeoffload testbed down` first")
    try:
        netns.create(plan.hub)
        _make_hub(plan)
        for node in plan.nodes:
            netns.create(node.netns)
            _wire_node(plan, node, relay=not netem)
            _shape_node(plan, node, netem)
    except (NetlinkError, OSError) as err:
        raise TestbedError(f"building the testbed network failed: {err}") from err


def remove_namespaces(prefix: str) -> list[str]:
    """Delete every namespace named ``prefix*`` (with their interfaces); return their names."""
    from pyroute2 import netns

    names = list_namespaces(prefix)
    for name in names:
        netns.remove(name)
    return names
