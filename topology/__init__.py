"""The computing-resource topology graph (CR-map) and the offload target selection."""
