"""The node daemon: members, group centers, the cloud, offload queries, the re-offload trigger."""
