"""The kernel path: a cgroup whose connect4/6 programs run the installed policy."""
