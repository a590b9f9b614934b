"""eBPF collectors (bcc) and the procfs fallback that measure a node."""
