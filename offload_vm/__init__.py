"""Our userspace eBPF VM (C core, cffi binding) and the offload policy toolchain."""
