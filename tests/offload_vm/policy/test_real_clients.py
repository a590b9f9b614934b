"""The protocol examples with real, unmodified clients under `freeoffload run`: curl,
mosquitto_pub against a real mosquitto broker, and Python's socket module for RTSP and
connected-UDP CoAP. Servers listen on loopback ports the policies send the clients to."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from freeoffload.offload_vm.policy import pack_addr

from .conftest import need
from .vmtools import example_object

pytestmark = pytest.mark.slow


def _slot(i: int, endpoint: str) -> tuple[bytes, bytes]:
    return i.to_bytes(4, "little"), pack_addr(endpoint)


@pytest.fixture
def store(tmp_path: Path, clang: str, vm: None) -> Any:
    from freeoffload.firmware_hooks import PolicyStore, hook_library_path

    from freeoffload.errors import HookError

    try:
        hook_library_path()
    except HookError as err:
        need(False, f"the hook library is not built: {err}")
    made = PolicyStore(tmp_path / "store")
    made.init()
    return made


def _install(store: Any, name: str, rows: dict[str, list[tuple[bytes, bytes]]]) -> None:
    store.install(name, example_object(name), 1)
    for map_name, items in rows.items():
        store.update_map_bulk(map_name, items)


def _run(store: Any, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "freeoffload", "run", "--store",
                           str(store.directory), "--", *argv], capture_output=True, text=True,
                          timeout=timeout, check=False)


class _Server:
    """A loopback server answering each TCP connection or UDP datagram with ``reply``."""

    def __init__(self, kind: int, reply: bytes) -> None:
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.reply = reply
        self.seen: list[bytes] = []
        if kind == socket.SOCK_STREAM:
            self.sock.listen(16)
        threading.Thread(target=self._serve, args=(kind,), daemon=True).start()

    def _serve(self, kind: int) -> None:
        while True:
            try:
                if kind == socket.SOCK_DGRAM:
                    data, peer = self.sock.recvfrom(2048)
                    self.seen.append(data)
                    self.sock.sendto(self.reply, peer)
                    continue
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    self.seen.append(conn.recv(4096))
                    conn.sendall(self.reply)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server() -> Iterator[Any]:
    made: list[_Server] = []

    def make(kind: int, reply: bytes) -> _Server:
        made.append(_Server(kind, reply))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_curl_http_goes_to_the_edge(store: Any, server: Any) -> None:
    need(shutil.which("curl") is not None, "curl is installed by .ci/install-deps")
    edge = server(socket.SOCK_STREAM, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                  b"Connection: close\r\n\r\nedge\n")
    _install(store, "http", {"target": [_slot(0, f"127.0.0.1:{edge.port}")]})
    done = _run(store, "curl", "-sS", "--max-time", "20", "http://127.0.0.1:8080/status")
    assert done.stdout == "edge\n", done.stderr
    assert edge.seen[0].startswith(b"GET /status HTTP/1.1\r\n")


def test_mosquitto_pub_reaches_the_edge_broker(store: Any, tmp_path: Path) -> None:
    broker_bin = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    need(Path(broker_bin).exists() and shutil.which("mosquitto_pub") is not None,
         "mosquitto and mosquitto-clients are installed by .ci/install-deps")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    broker = subprocess.Popen([broker_bin, "-c", str(conf)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        _install(store, "mqtt", {"brokers": [_slot(0, f"127.0.0.1:{port}")]})
        pub = _run(store, "mosquitto_pub", "-h", "127.0.0.1", "-p", "1883", "-t", "fo/test",
                   "-m", "via the edge", "-r")
        assert pub.returncode == 0, pub.stderr
        sub = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t",
                              "fo/test", "-C", "1", "-W", "20"], capture_output=True,
                             text=True, timeout=60, check=False)
        assert sub.stdout == "via the edge\n", sub.stderr
    finally:
        broker.terminate()
        broker.wait(timeout=15)


_RTSP = """
import socket
s = socket.create_connection(("127.0.0.1", 554), timeout=20)
s.sendall(b"OPTIONS rtsp://127.0.0.1/cam RTSP/1.0\\r\\nCSeq: 1\\r\\n\\r\\n")
print(s.recv(1024).decode().splitlines()[0])
"""

_COAP = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(20)
s.connect(("127.0.0.1", 5683))
s.send(bytes([0x40, 0x01, 0x12, 0x34, 0xb4]) + b"temp")  # CON GET /temp, message id 0x1234
print(s.recv(1024).hex())
"""


def test_rtsp_client_goes_to_the_media_server(store: Any, server: Any) -> None:
    media = server(socket.SOCK_STREAM, b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n")
    _install(store, "rtsp", {"servers": [_slot(1, f"127.0.0.1:{media.port}")]})
    done = _run(store, sys.executable, "-c", _RTSP)
    assert done.stdout.strip() == "RTSP/1.0 200 OK", done.stderr
    assert media.seen[0].startswith(b"OPTIONS rtsp://127.0.0.1/cam RTSP/1.0")


def test_coap_over_connected_udp_goes_to_the_edge(store: Any, server: Any) -> None:
    ack = bytes([0x60, 0x45, 0x12, 0x34, 0xff]) + b"21.5"  # ACK 2.05 Content
    coap = server(socket.SOCK_DGRAM, ack)
    _install(store, "coap", {"target": [_slot(0, f"127.0.0.1:{coap.port}")]})
    done = _run(store, sys.executable, "-c", _COAP)
    assert done.stdout.strip() == ack.hex(), done.stderr
    assert coap.seen == [bytes([0x40, 0x01, 0x12, 0x34, 0xb4]) + b"temp"]


def test_selection_policy_moves_a_sensitive_task_off_the_loaded_edge(store: Any,
                                                                     server: Any) -> None:
    """The paper's scenario with a real program: its task is audio (sensitive, urgent), it
    connects to edge1, which is overloaded; it reaches edge3, the other secure edge."""
    from dataclasses import replace

    from freeoffload.topology import load_topology
    from freeoffload.topology.candidates import candidate_items, candidate_rows

    root = Path(__file__).resolve().parents[3]
    crmap = load_topology(root / "examples" / "topologies" / "paper.yaml")
    ports = {}
    for name, node in list(crmap.nodes.items()):
        if node.role != "device":
            ports[name] = server(socket.SOCK_STREAM, name.encode()).port
            crmap.put_node(replace(node, address=f"127.0.0.1:{ports[name]}"))
    store.install("select_target", example_object("select_target"), 1)
    store.update_map_bulk("candidates", candidate_items(candidate_rows(crmap, "dev1")))
    client = ("import socket, sys\n"
              f"s = socket.create_connection(('127.0.0.1', {ports['edge1']}), timeout=20)\n"
              "s.sendall(b'task')\nprint(s.recv(64).decode())\n")
    done = subprocess.run([sys.executable, "-m", "freeoffload", "run", "--store",
                           str(store.directory), "--task",
                           str(root / "examples" / "tasks" / "audio.yaml"), "--",
                           sys.executable, "-c", client], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.stdout.strip() == "edge3", done.stderr
    without_task = _run(store, sys.executable, "-c", client)
    assert without_task.stdout.strip() == "edge1", without_task.stderr
