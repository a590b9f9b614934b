"""The device daemon over real HTTP on loopback: a child process, restarted, its store real."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _daemon import DATA, ROOT, Daemon, compile_policy, write_config
from conftest import need

from freeoffload.errors import HookError


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    need(shutil.which("clang") is not None, "clang")
    from freeoffload.offload_vm.policy import MapSchema, generate_keys, load_private_key

    out = tmp_path_factory.mktemp("material")
    generate_keys(out / "center", "center")
    generate_keys(out / "rogue", "rogue")
    return {
        "pub": out / "center" / "center.pub",
        "key": load_private_key(out / "center" / "center.key"),
        "rogue": load_private_key(out / "rogue" / "rogue.key"),
        "redirect": compile_policy(ROOT / "examples/policies/redirect.c", out / "redirect.o"),
        "bad": compile_policy(DATA / "bad_helper.c", out / "bad.o"),
        "schema": [MapSchema("redirects", 1, 24, 24, 1024)],
    }


def _package(m: dict[str, Any], version: int, key: str | None = "key", elf: str = "redirect",
             name: str = "redirect") -> bytes:
    from freeoffload.offload_vm.policy import build_package

    maps = m["schema"] if elf == "redirect" else []
    return build_package(m[elf], name, version, maps, m[key] if key else None)


def _update(m: dict[str, Any], version: int, rules: list[tuple[str, str]],
            map_name: str = "redirects", policy: str = "redirect", replace: bool = True) -> bytes:
    from freeoffload.offload_vm.policy import redirect_entry, sign_map_update

    rows = [redirect_entry(a, b) for a, b in rules]
    return sign_map_update(policy, map_name, version, rows, m["key"], replace=replace)


@pytest.fixture
def daemon(tmp_path: Path, material: dict[str, Any]) -> Iterator[Daemon]:
    from freeoffload.firmware_hooks.store import PolicyStore

    try:
        PolicyStore(tmp_path / "probe").init()
    except HookError as err:
        need(False, f"policy store library: {err}")
    d = Daemon(write_config(tmp_path, material["pub"])).start()
    yield d
    d.stop()


def _store_rows(tmp_path: Path) -> dict[bytes, bytes]:
    from freeoffload.firmware_hooks.store import PolicyStore

    return PolicyStore(tmp_path / "store").map_items("redirects")


def test_a_signed_policy_and_map_update_are_installed(
        daemon: Daemon, material: dict[str, Any], tmp_path: Path) -> None:
    from freeoffload.firmware_hooks.store import PolicyStore
    from freeoffload.offload_vm.policy import redirect_entry

    assert daemon.status()["policy"] is None
    code, answer = daemon.put("/v1/policy", _package(material, 3))
    assert code == 200, answer
    assert (answer["installed"], answer["version"]) == ("redirect", 3)
    current = PolicyStore(tmp_path / "store").current()
    assert current is not None and (current.name, current.version) == ("redirect", 3)
    code, answer = daemon.put("/v1/maps/redirects",
                              _update(material, 1, [("10.0.0.11:80", "127.0.0.1:8080")]))
    assert code == 200, answer
    key, value = redirect_entry("10.0.0.11:80", "127.0.0.1:8080")
    assert _store_rows(tmp_path) == {key: value}
    status = daemon.status()
    assert status["policy"]["name"] == "redirect" and status["policy"]["running"] is True
    assert status["maps"]["redirects"]["version"] == 1
    assert status["maps"]["redirects"]["rows"] == 1


def _refused(daemon: Daemon, path: str, body: bytes, status: int, *words: str) -> None:
    code, answer = daemon.put(path, body)
    assert code == status, answer
    assert set(answer) == {"error"}
    for word in words:
        assert word in answer["error"], answer["error"]


def test_every_refusal_has_a_reason_and_keeps_the_last_good_policy(
        daemon: Daemon, material: dict[str, Any]) -> None:
    one = [("10.0.0.11:80", "127.0.0.1:8080")]
    _refused(daemon, "/v1/maps/redirects", _update(material, 1, one), 409, "no policy")
    assert daemon.put("/v1/policy", _package(material, 5))[0] == 200
    good = daemon.status()["policy"]
    _refused(daemon, "/v1/policy", _package(material, 6, key=None), 403, "not signed")
    _refused(daemon, "/v1/policy", _package(material, 6, key="rogue"), 403, "not trusted")
    tampered = bytearray(_package(material, 6))
    tampered[-40] ^= 0x01
    code, answer = daemon.put("/v1/policy", bytes(tampered))
    assert code in (400, 403) and answer["error"]
    _refused(daemon, "/v1/policy", _package(material, 5), 409, "replay")
    _refused(daemon, "/v1/policy", _package(material, 4), 409, "older")
    _refused(daemon, "/v1/policy", b"hello", 400, "not a freeoffload")
    _refused(daemon, "/v1/policy", b"", 400, "empty")
    _refused(daemon, "/v1/policy", _package(material, 9, elf="bad", name="bad"), 422,
             "verifier")
    _refused(daemon, "/v1/maps/nosuch", _update(material, 1, one, map_name="nosuch"), 422,
             "no map 'nosuch'")
    _refused(daemon, "/v1/maps/other", _update(material, 1, one), 400, "URL")
    assert daemon.put("/v1/maps/redirects", _update(material, 2, one))[0] == 200
    _refused(daemon, "/v1/maps/redirects", _update(material, 2, one), 409, "replay")
    _refused(daemon, "/v1/maps/redirects", _update(material, 1, one), 409, "older")
    status = daemon.status()
    assert {k: status["policy"][k] for k in ("name", "version", "sha256")} == {
        k: good[k] for k in ("name", "version", "sha256")}
    assert status["policy"]["running"] is True
    assert status["refused"] == 13
    code, answer = daemon.request("DELETE", "/v1/policy")
    assert code == 405 and "PUT /v1/policy" in answer["error"]
    code, answer = daemon.request("GET", "/v2/anything")
    assert code == 404 and "not part of the device API" in answer["error"]


def test_restarts_lose_nothing_and_replays_stay_refused(
        daemon: Daemon, material: dict[str, Any], tmp_path: Path) -> None:
    rules = [("10.0.0.11:80", "127.0.0.1:8080"), ("10.0.0.12:1883", "127.0.0.1:1884")]
    assert daemon.put("/v1/policy", _package(material, 2))[0] == 200
    assert daemon.put("/v1/maps/redirects", _update(material, 7, rules))[0] == 200
    before = daemon.status()
    rows = _store_rows(tmp_path)
    daemon.stop(signal.SIGKILL)  # no chance to tidy up
    daemon.start()
    assert daemon.status()["policy"] == before["policy"]
    assert daemon.status()["maps"] == before["maps"]
    _refused(daemon, "/v1/policy", _package(material, 2), 409, "replay")
    _refused(daemon, "/v1/maps/redirects", _update(material, 7, rules), 409, "replay")
    # a reboot empties /run: the daemon puts the policy and its rows back
    err = daemon.stop()
    shutil.rmtree(tmp_path / "store")
    daemon.start()
    status = daemon.status()
    assert status["policy"]["running"] is True
    assert status["policy"]["version"] == 2
    assert _store_rows(tmp_path) == rows
    err = daemon.stop()
    assert "restored into" in err


def test_a_store_in_an_older_storage_format_is_installed_again_at_start(
        daemon: Daemon, material: dict[str, Any], tmp_path: Path) -> None:
    rules = [("10.0.0.11:80", "127.0.0.1:8080")]
    assert daemon.put("/v1/policy", _package(material, 3))[0] == 200
    assert daemon.put("/v1/maps/redirects", _update(material, 4, rules))[0] == 200
    rows = _store_rows(tmp_path)
    daemon.stop()
    # the map storage as an older build wrote it: same policy, another format version
    stored = [f for f in (tmp_path / "store").rglob("*")
              if f.is_file() and f.read_bytes()[:4] == b"FOVM"]
    assert stored
    for path in stored:
        data = bytearray(path.read_bytes())
        data[4:8] = (1).to_bytes(4, "little")
        path.write_bytes(bytes(data))
    with pytest.raises(HookError, match="version"):
        _store_rows(tmp_path)
    daemon.start()
    status = daemon.status()
    assert status["policy"]["running"] is True and status["policy"]["version"] == 3
    assert _store_rows(tmp_path) == rows
    assert "restored into" in daemon.stop()


def test_a_newer_policy_replaces_the_old_one_and_keeps_its_rows(
        daemon: Daemon, material: dict[str, Any], tmp_path: Path) -> None:
    assert daemon.put("/v1/policy", _package(material, 1))[0] == 200
    assert daemon.put("/v1/maps/redirects",
                      _update(material, 1, [("10.0.0.11:80", "127.0.0.1:8080")]))[0] == 200
    code, answer = daemon.put("/v1/policy", _package(material, 2))
    assert code == 200 and answer["version"] == 2
    assert len(_store_rows(tmp_path)) == 1
    assert daemon.status()["maps"]["redirects"]["version"] == 1


def test_a_body_over_the_limit_is_refused(tmp_path: Path, material: dict[str, Any]) -> None:
    d = Daemon(write_config(tmp_path, material["pub"], max_body_bytes="2048")).start()
    try:
        code, answer = d.put("/v1/policy", b"x" * 4096)
        assert code == 413 and "2048" in answer["error"]
    finally:
        d.stop()


@pytest.mark.parametrize("bad", sorted((DATA / "bad").glob("*.yaml")), ids=lambda p: p.stem)
def test_config_errors_name_line_and_field(bad: Path, tmp_path: Path,
                                           material: dict[str, Any]) -> None:
    from freeoffload.firmware_hooks.device import DeviceConfigError, load_config

    shutil.copy(material["pub"], tmp_path / "center.pub")
    config = tmp_path / bad.name
    shutil.copy(bad, config)
    expected = bad.read_text().splitlines()[0].removeprefix("# error: ")
    with pytest.raises(DeviceConfigError) as caught:
        load_config(config)
    assert f"{config}:{expected}" in str(caught.value)


def test_the_command_prints_every_config_problem_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "device.yaml"
    config.write_text("listen: nowhere\nmax_body_bytes: -1\n")
    proc = subprocess.run([sys.executable, "-m", "freeoffload", "device", "--config",
                           str(config)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert lines[0].startswith(f"{config}:1:9: listen: 'nowhere' is not HOST:PORT")
    assert any(line.startswith(f"{config}:1:1: trusted_keys:") for line in lines)
    assert any(line.startswith(f"{config}:2:17: max_body_bytes:") for line in lines)


def test_a_good_config_loads(tmp_path: Path, material: dict[str, Any]) -> None:
    from freeoffload.firmware_hooks.device import load_config

    shutil.copy(material["pub"], tmp_path / "center.pub")
    shutil.copy(DATA / "ok" / "full.yaml", tmp_path / "device.yaml")
    config = load_config(tmp_path / "device.yaml")
    assert (config.name, config.host, config.port) == ("pi-kitchen", "::1", 7701)
    assert config.store == tmp_path / "store" and config.state_dir == tmp_path / "state"
    assert len(config.trusted_keys) == 1 and config.max_body_bytes == 65536


def test_check_validates_and_exits(tmp_path: Path, material: dict[str, Any]) -> None:
    config = write_config(tmp_path, material["pub"])
    proc = subprocess.run([sys.executable, "-m", "freeoffload", "device", "--config",
                           str(config), "--check"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{config}: ok: listen 127.0.0.1:0")
    assert "1 trusted key(s)" in proc.stdout
    assert not (tmp_path / "state").exists()  # nothing started, nothing written


def test_a_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "freeoffload", "device", "--config",
                           str(tmp_path / "none.yaml")], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ))
    assert proc.returncode == 2
    assert "none.yaml: cannot read file" in proc.stderr


def test_a_damaged_state_file_stops_the_daemon_with_the_path(
        tmp_path: Path, material: dict[str, Any]) -> None:
    config = write_config(tmp_path, material["pub"])
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.json").write_text('{"policy": {"nme": "x"}}')
    proc = subprocess.run([sys.executable, "-m", "freeoffload", "device", "--config",
                           str(config)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert f"{tmp_path / 'state' / 'state.json'}: unreadable device state" in proc.stderr
    assert "move it away" in proc.stderr


def test_a_key_taken_out_of_the_config_revokes_what_it_signed(
        daemon: Daemon, material: dict[str, Any], tmp_path: Path) -> None:
    from freeoffload.firmware_hooks.store import PolicyStore
    from freeoffload.offload_vm.policy import generate_keys

    assert daemon.put("/v1/policy", _package(material, 4))[0] == 200
    daemon.stop()
    generate_keys(tmp_path / "new", "other")  # the only trusted key from now on
    shutil.copy(tmp_path / "new" / "other.pub", tmp_path / "center.pub")
    daemon.start()
    assert daemon.status()["policy"] is None
    assert PolicyStore(tmp_path / "store").current() is None  # hooked programs pass again
    assert "no longer passes" in daemon.stop()
    # the version it had reached still counts: an old push stays a replay
    shutil.copy(material["pub"], tmp_path / "center.pub")
    daemon.start()
    _refused(daemon, "/v1/policy", _package(material, 4), 409, "replay")


def test_sighup_reloads_the_trusted_keys(daemon: Daemon, material: dict[str, Any],
                                         tmp_path: Path) -> None:
    import time

    from freeoffload.offload_vm.policy import build_package, generate_keys, load_private_key

    assert daemon.put("/v1/policy", _package(material, 1))[0] == 200
    generate_keys(tmp_path / "rotated", "next")
    new_key = load_private_key(tmp_path / "rotated" / "next.key")
    shutil.copy(tmp_path / "rotated" / "next.pub", tmp_path / "center.pub")
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while daemon.status()["policy"] is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert daemon.status()["policy"] is None  # signed by a key no longer trusted: revoked
    _refused(daemon, "/v1/policy", _package(material, 2), 403, "not trusted")
    fresh = build_package(material["redirect"], "redirect", 2, material["schema"], new_key)
    assert daemon.put("/v1/policy", fresh)[0] == 200
    # a broken file on reload is refused; the daemon goes on with what it had
    config = tmp_path / "device.yaml"
    config.write_text(config.read_text() + "bogus: 1\n")
    daemon.proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    assert daemon.status()["policy"]["version"] == 2
    err = daemon.stop()
    assert "reload refused" in err and "bogus: unknown setting" in err


def test_an_empty_replacing_update_clears_the_map(
        daemon: Daemon, material: dict[str, Any], tmp_path: Path) -> None:
    rules = [("10.0.0.11:80", "127.0.0.1:8080"), ("10.0.0.12:80", "127.0.0.1:8081")]
    assert daemon.put("/v1/policy", _package(material, 1))[0] == 200
    assert daemon.put("/v1/maps/redirects", _update(material, 1, rules))[0] == 200
    assert len(_store_rows(tmp_path)) == 2
    code, answer = daemon.put("/v1/maps/redirects", _update(material, 2, []))
    assert code == 200, answer
    assert _store_rows(tmp_path) == {}
    # a non-replacing update adds to what is there
    code, _ = daemon.put("/v1/maps/redirects", _update(material, 3, rules[:1], replace=False))
    assert code == 200 and len(_store_rows(tmp_path)) == 1
    assert daemon.put("/v1/maps/redirects",
                      _update(material, 4, rules[1:], replace=False))[0] == 200
    assert len(_store_rows(tmp_path)) == 2


def test_a_replacing_update_of_an_array_zeroes_the_rows_it_does_not_give(
        daemon: Daemon, material: dict[str, Any], tmp_path: Path) -> None:
    from freeoffload.firmware_hooks.store import PolicyStore
    from freeoffload.offload_vm.policy import MapSchema, build_package, sign_map_update

    elf = compile_policy(ROOT / "examples/policies/select_target.c", tmp_path / "select.o")
    schema = [MapSchema("candidates", 2, 4, 128, 64), MapSchema("local_placed", 2, 4, 16, 65)]
    assert daemon.put("/v1/policy", build_package(elf, "select", 1, schema,
                                                  material["key"]))[0] == 200
    row = lambda i, b: (i.to_bytes(4, sys.byteorder), bytes([b]) * 128)  # noqa: E731
    full = [row(i, 7) for i in range(64)]
    assert daemon.put("/v1/maps/candidates",
                      sign_map_update("select", "candidates", 1, full, material["key"]))[0] == 200
    two = [row(0, 1), row(1, 2)]
    assert daemon.put("/v1/maps/candidates",
                      sign_map_update("select", "candidates", 2, two, material["key"]))[0] == 200
    items = PolicyStore(tmp_path / "store").map_items("candidates")
    assert items[row(0, 0)[0]] == bytes([1]) * 128 and items[row(1, 0)[0]] == bytes([2]) * 128
    assert all(items[row(i, 0)[0]] == bytes(128) for i in range(2, 64))
