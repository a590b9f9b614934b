"""The text table of ``probes watch``: one screen per sample, rates per second."""

from __future__ import annotations

from .sample import Sample

__all__ = ["render"]


def _size(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.3f}"


def render(sample: Sample) -> str:
    """The sample as a few aligned tables (figures per second of the interval)."""
    per = 1.0 / sample.interval
    mode = sample.mode + (f" ({sample.reason})" if sample.reason else "")
    scope = f"  scope {sample.scope}" if sample.scope else ""
    cpus = " ".join(f"{p:5.1f}" for p in sample.cpu.per_cpu)
    lines = [
        f"mode {mode}{scope}  interval {sample.interval:.2f} s  tasks {sample.tasks}",
        f"cpu {sample.cpu.percent:5.1f}% of {sample.cpu.capacity_cores:g} cores  "
        f"per cpu: {cpus}",
        f"memory {_size(sample.memory.used_bytes)} of {_size(sample.memory.total_bytes)} "
        f"({sample.memory.percent:.1f}%)",
    ]
    if sample.cpu.runq_latency:
        total = sum(sample.cpu.runq_latency.values())
        worst = max(sample.cpu.runq_latency)
        lines.append(f"run queue: {total} waits, slowest bucket <= {worst * 1e3:.3f} ms")
    lines.append(f"{'disk':<12}{'read/s':>12}{'write/s':>12}{'iops':>8}{'lat ms':>10}")
    for d in sorted(sample.disks.values(), key=lambda d: d.name):
        lines.append(f"{d.name:<12}{_size(d.read_bytes * per):>12}{_size(d.write_bytes * per):>12}"
                     f"{(d.reads + d.writes) * per:>8.0f}{_ms(d.latency_seconds):>10}")
    lines.append(f"{'interface':<12}{'tx/s':>12}{'rx/s':>12}{'tx pk/s':>9}{'rx pk/s':>9}")
    for i in sorted(sample.interfaces.values(), key=lambda i: i.name):
        lines.append(f"{i.name:<12}{_size(i.tx_bytes * per):>12}{_size(i.rx_bytes * per):>12}"
                     f"{i.tx_packets * per:>9.0f}{i.rx_packets * per:>9.0f}")
    lines.append(f"{'peer':<24}{'sent/s':>11}{'recv/s':>11}{'rtt ms':>9}{'conn ms':>9}"
                 f"{'conns':>6}{'retx':>6}")
    for p in sorted(sample.peers.values(), key=lambda p: p.address):
        sent = "-" if p.sent_bytes is None else _size(p.sent_bytes * per)
        recv = "-" if p.received_bytes is None else _size(p.received_bytes * per)
        conns = p.connects if p.connections is None else p.connections
        retx = "-" if p.retransmits is None else str(p.retransmits)
        lines.append(f"{p.address:<24}{sent:>11}{recv:>11}{_ms(p.rtt_seconds):>9}"
                     f"{_ms(p.connect_seconds):>9}{conns:>6}{retx:>6}")
    return "\n".join(lines)
