"""Connects to 127.0.0.1:PORT, prints what the server says, waits for a line on stdin, then
connects again: one process, two decisions, no restart in between."""

import socket
import sys

port = int(sys.argv[1])
for i in range(2):
    if i:
        sys.stdin.readline()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        print(s.recv(64).decode().strip(), flush=True)
