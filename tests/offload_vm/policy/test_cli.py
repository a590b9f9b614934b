"""The `freeoffload policy` and `freeoffload keys` commands, run as a user runs them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from .vmtools import EXAMPLES, fo, fo_process

ROOT = Path(__file__).resolve().parents[3]
BAD = Path(__file__).resolve().parent / "data" / "bad"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from freeoffload.offload_vm.policy import generate_keys

    out = tmp_path_factory.mktemp("keys")
    generate_keys(out, "other")
    return generate_keys(out)


def test_keys_gen(tmp_path: Path) -> None:
    from freeoffload.offload_vm.policy import key_id, load_private_key, load_public_key

    done = fo_process("keys", "gen", "--out", tmp_path / "k")
    assert done.returncode == 0, done.stderr
    public = load_public_key(tmp_path / "k" / "signing.pub")
    assert key_id(load_private_key(tmp_path / "k" / "signing.key").public_key()) == key_id(
        public)
    assert done.stdout.splitlines()[-1] == f"key id {key_id(public)}"
    again = fo("keys", "gen", "--out", tmp_path / "k")
    assert again.returncode == 2
    assert "already exists; refusing to overwrite" in again.stderr


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, keys: tuple[Path, Path]) -> Path:
    from .conftest import need_vm

    need_vm()
    out = tmp_path_factory.mktemp("signed") / "redirect.fop"
    done = fo("policy", "compile", EXAMPLES / "redirect.c", "-o", out, "--key", keys[0],
              "--version", "3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{out}: policy redirect version 3 (redirects), signed by key")
    return out


def test_include_dir_holds_the_header() -> None:
    done = fo_process("policy", "include-dir")
    assert done.returncode == 0
    assert (Path(done.stdout.strip()) / "freeoffload" / "policy.h").is_file()


def test_compile_then_verify(signed: Path, keys: tuple[Path, Path]) -> None:
    done = fo("policy", "verify", signed, "--pubkey", keys[1])
    assert done.returncode == 0, done.stderr
    assert "ok: policy redirect version 3, hook connect" in done.stdout
    assert "maps: redirects" in done.stdout


def test_verify_refusals_are_one_line_each(signed: Path, keys: tuple[Path, Path],
                                           tmp_path: Path) -> None:
    other = keys[1].with_name("other.pub")
    wrong = fo("policy", "verify", signed, "--pubkey", other)
    older = fo("policy", "verify", signed, "--pubkey", keys[1], "--min-version", "4")
    tampered = tmp_path / "tampered.fop"
    data = bytearray(signed.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    changed = fo("policy", "verify", tampered, "--pubkey", keys[1])
    for done, text in ((wrong, "which is not trusted"), (older, "version 3 is older"),
                       (changed, "does not verify")):
        assert done.returncode == 2, done.stderr
        assert text in done.stderr
        assert "Traceback" not in done.stderr


def test_unsigned_build_verifies_as_unsigned(tmp_path: Path, keys: tuple[Path, Path],
                                             clang: str, vm: None) -> None:
    out = tmp_path / "u.fop"
    done = fo("policy", "compile", EXAMPLES / "http.c", "-o", out, "--version", "1")
    assert done.returncode == 0
    assert "is not signed" in done.stderr
    verified = fo("policy", "verify", out, "--pubkey", keys[1])
    assert verified.returncode == 2
    assert verified.stderr.strip() == f"{out}: signature: the file is not signed; build it " \
        "with `freeoffload policy compile ... --key KEY`"


def test_clang_errors_are_shown_as_clang_printed_them(tmp_path: Path, clang: str) -> None:
    done = fo_process("policy", "compile", BAD / "syntax.c", "-o", tmp_path / "x.fop")
    assert done.returncode == 2
    assert f"{BAD / 'syntax.c'}:6:28: error: expected expression" in done.stderr
    assert f"{BAD / 'syntax.c'}: clang failed (exit 1); its messages are above" in done.stderr
    assert not (tmp_path / "x.fop").exists()


REJECTED = sorted(p for p in BAD.glob("*.c") if "expect: line" in p.read_text())


@pytest.mark.parametrize("source", REJECTED, ids=[p.stem for p in REJECTED])
def test_verifier_rejection_names_the_source_line(source: Path, tmp_path: Path, clang: str,
                                                  vm: None) -> None:
    expected_line = int(source.read_text().split("expect: line ", 1)[1].split(":", 1)[0])
    done = fo("policy", "compile", source, "-o", tmp_path / "x.fop")
    assert done.returncode == 2
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(f"{source}:{expected_line}:0: verifier: the VM rejects"), line
    assert "99" in line and "at PC" in line  # the VM names the helper and the instruction
    assert not (tmp_path / "x.fop").exists()


def test_dry_run_of_the_selection_policy(tmp_path: Path, keys: tuple[Path, Path],
                                         clang: str, vm: None) -> None:
    out = tmp_path / "select.fop"
    assert fo("policy", "compile", EXAMPLES / "select_target.c", "-o", out, "--key",
              keys[0]).returncode == 0
    ctx = json.dumps({"dst": "10.0.1.11:8080", "task": "examples/tasks/audio.yaml",
                      "from": "dev1"})
    done = fo("policy", "run", out, "--ctx", ctx, "--map",
              "candidates=examples/topologies/paper.yaml", "--pubkey", keys[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "rewrite: 10.0.1.11:8080 -> 10.0.2.13:8080 (edge3)"
    other = fo("policy", "run", out, "--ctx", json.dumps({"dst": "127.0.0.53:53"}), "--json")
    assert json.loads(other.stdout) == {"verdict": "pass", "r0": 0, "dst": "127.0.0.53:53",
                                        "new_dst": None, "node": None}
    plain = json.dumps({"dst": "10.0.1.11:8080", "task": "examples/tasks/audio.yaml"})
    from_flag = fo("policy", "run", out, "--ctx", plain, "--from", "dev1", "--map",
                   "candidates=examples/topologies/paper.yaml")
    assert from_flag.stdout == done.stdout, from_flag.stderr
    missing = fo("policy", "run", out, "--ctx", ctx, "--map", "routes=examples/topologies/"
                 "paper.yaml")
    assert missing.returncode == 2
    assert "the policy has no map 'routes'" in missing.stderr


def test_dry_run_of_a_redirect_table(signed: Path, tmp_path: Path) -> None:
    table = tmp_path / "table.yaml"
    table.write_text('- {from: "10.0.0.11:80", to: "10.0.0.13:8080"}\n')
    done = fo("policy", "run", signed, "--ctx", '{"dst": "10.0.0.11:80"}', "--map",
              f"redirects={table}")
    assert done.stdout.strip() == "rewrite: 10.0.0.11:80 -> 10.0.0.13:8080", done.stderr
    bad = fo("policy", "run", signed, "--ctx", '{"dst": "10.0.0.11"}')
    assert bad.returncode == 2
    assert "--ctx: dst: expected ADDRESS:PORT, got '10.0.0.11'" in bad.stderr


class _Device(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, body))
        refuse = len(self.received) > 1
        answer = {"error": "version 3 is not newer than the installed 3"} if refuse else {
            "installed": "redirect", "version": 3}
        data = json.dumps(answer).encode()
        self.send_response(409 if refuse else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def device() -> Iterator[str]:
    _Device.received = []
    server = HTTPServer(("127.0.0.1", 0), _Device)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_push_puts_the_file_and_shows_refusals(signed: Path, device: str) -> None:
    done = fo("policy", "push", signed, "--to", device)
    assert done.returncode == 0, done.stderr
    assert _Device.received == [("/v1/policy", signed.read_bytes())]
    assert '"installed": "redirect"' in done.stdout
    again = fo("policy", "push", signed, "--to", device + "/")
    assert again.returncode == 2
    assert "the device refused it (HTTP 409): version 3 is not newer" in again.stderr
    down = fo("policy", "push", signed, "--to", "http://127.0.0.1:9")
    assert down.returncode == 2
    assert "cannot reach the device" in down.stderr


def test_sign_map_and_push_it(signed: Path, keys: tuple[Path, Path], tmp_path: Path,
                              device: str) -> None:
    from freeoffload.offload_vm.policy import load_public_key, read_map_update, redirect_entry

    table = tmp_path / "table.yaml"
    table.write_text('- {from: "10.0.0.11:80", to: "10.0.0.13:8080"}\n'
                     '- {from: "[::1]:80", to: "[::1]:8080"}\n')
    out = tmp_path / "redirects.fmu"
    done = fo("policy", "sign-map", signed, "--map", f"redirects={table}", "--key", keys[0],
              "--version", "8", "-o", out)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{out}: map redirects of policy redirect, version 8, 2 rows"
    update = read_map_update(out.read_bytes(), [load_public_key(keys[1])], str(out))
    assert update.rows[0] == redirect_entry("10.0.0.11:80", "10.0.0.13:8080")
    pushed = fo("policy", "push", out, "--to", device)
    assert pushed.returncode == 0, pushed.stderr
    assert _Device.received == [("/v1/maps/redirects", out.read_bytes())]


def test_compile_passes_defines_to_clang(tmp_path: Path, clang: str, vm: None) -> None:
    source = Path(__file__).parent / "data" / "ok" / "port_define.c"
    out = tmp_path / "p.fop"
    done = fo("policy", "compile", source, "-o", out, "-D", "FROM_PORT=80", "-DTO_PORT=8080")
    assert done.returncode == 0, done.stderr
    ran = fo("policy", "run", out, "--ctx", '{"dst": "10.0.0.1:80"}')
    assert ran.stdout.strip() == "rewrite: 10.0.0.1:80 -> 10.0.0.1:8080", ran.stderr
    missing = fo("policy", "compile", source, "-o", out, "-D", "FROM_PORT=80")
    assert missing.returncode == 2
    assert "use of undeclared identifier 'TO_PORT'" in missing.stderr


class _Center(BaseHTTPRequestHandler):
    """A group center's `PUT /v1/group/policy` (the agent forwards to its devices)."""

    received: list[tuple[str, bytes]] = []
    devices: list[dict[str, object]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, body))
        data = json.dumps({"devices": self.devices}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def test_push_to_a_group_through_its_center(signed: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Center)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    center = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        _Center.received = []
        _Center.devices = [{"device": "dev1", "status": 200, "answer": {"version": 3}},
                           {"device": "dev2", "status": 200, "answer": {"version": 3}}]
        done = fo("policy", "push", signed, "--group", "campus-a", "--center", center,
                  "--token", "t0ken")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ['dev1: 200 {"version": 3}', 'dev2: 200 {"version": 3}']
        assert _Center.received == [("/v1/group/policy", signed.read_bytes())]
        _Center.devices[1] = {"device": "dev2", "status": 409, "answer": {"error": "older"}}
        refused = fo("policy", "push", signed, "--group", "campus-a", "--center", center)
        assert refused.returncode == 1
        assert 'dev2: 409 {"error": "older"}' in refused.stdout
    finally:
        server.shutdown()
        server.server_close()
    both = fo("policy", "push", signed, "--group", "g", "--to", center)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
