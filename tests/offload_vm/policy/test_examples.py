"""Every example policy compiles with clang and does its job in the VM on realistic connects."""

from __future__ import annotations

from pathlib import Path

import pytest
from freeoffload.offload_vm.policy import compile_object, pack_addr, redirect_entry

from .vmtools import EXAMPLES, ctx, example_vm, run

PASS, REWRITE = 0, 1
PROTOCOL_EXAMPLES = ["http", "mqtt", "rtsp", "coap", "redirect"]
ALL = sorted(p.stem for p in EXAMPLES.glob("*.c"))


def _slot(i: int, endpoint: str) -> tuple[bytes, bytes]:
    return i.to_bytes(4, "little"), pack_addr(endpoint)


def test_there_are_examples_and_each_is_tested() -> None:
    assert set(PROTOCOL_EXAMPLES) | {"select_target"} == set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_every_example_compiles(name: str, clang: str) -> None:
    elf = compile_object(EXAMPLES / f"{name}.c")
    assert elf[:4] == b"\x7fELF"


@pytest.mark.parametrize("name", PROTOCOL_EXAMPLES)
def test_protocol_examples_are_at_most_50_lines(name: str) -> None:
    lines = (EXAMPLES / f"{name}.c").read_text().splitlines()
    assert len(lines) <= 50


def test_http_as_curl_connects(clang: str, vm: None) -> None:
    policy = example_vm("http", target=[_slot(0, "10.0.2.13:0")])
    assert run(policy, ctx("10.0.0.11:80")) == (REWRITE, "10.0.2.13:80")
    assert run(policy, ctx("10.0.0.11:8080", protocol=0)) == (REWRITE, "10.0.2.13:8080")
    assert run(policy, ctx("10.0.0.11:80", v4mapped=True)) == (REWRITE, "10.0.2.13:80")
    assert run(policy, ctx("10.0.0.11:443")) == (PASS, "10.0.0.11:443")  # HTTPS untouched
    assert run(policy, ctx("10.0.0.11:80", udp=True)) == (PASS, "10.0.0.11:80")
    empty = example_vm("http")
    assert run(empty, ctx("10.0.0.11:80")) == (PASS, "10.0.0.11:80")


def test_mqtt_clients_stick_to_one_broker_each(clang: str, vm: None) -> None:
    policy = example_vm("mqtt", brokers=[_slot(0, "10.0.1.11:1883"),
                                         _slot(1, "[2001:db8::12]:1884")])
    assert run(policy, ctx("127.0.0.1:1883", pid=100)) == (REWRITE, "10.0.1.11:1883")
    assert run(policy, ctx("127.0.0.1:1883", pid=101)) == (REWRITE, "[2001:db8::12]:1884")
    assert run(policy, ctx("127.0.0.1:1883", pid=100)) == (REWRITE, "10.0.1.11:1883")
    assert run(policy, ctx("127.0.0.1:8883")) == (PASS, "127.0.0.1:8883")  # TLS untouched
    assert run(example_vm("mqtt"), ctx("127.0.0.1:1883")) == (PASS, "127.0.0.1:1883")


def test_rtsp_urgent_streams_go_to_the_near_server(clang: str, vm: None) -> None:
    policy = example_vm("rtsp", servers=[_slot(0, "10.0.1.11:8554"), _slot(1, "10.0.0.1:554")])
    assert run(policy, ctx("192.168.1.64:554", task_type=1, task_flags=2)) == (
        REWRITE, "10.0.1.11:8554")
    assert run(policy, ctx("192.168.1.64:554", task_type=1)) == (REWRITE, "10.0.0.1:554")
    assert run(policy, ctx("192.168.1.64:80")) == (PASS, "192.168.1.64:80")


def test_coap_connected_udp(clang: str, vm: None) -> None:
    policy = example_vm("coap", target=[_slot(0, "[2001:db8::13]:5683")])
    assert run(policy, ctx("10.0.0.11:5683", udp=True)) == (REWRITE, "[2001:db8::13]:5683")
    assert run(policy, ctx("10.0.0.11:5683", udp=True, protocol=0)) == (
        REWRITE, "[2001:db8::13]:5683")
    assert run(policy, ctx("224.0.1.187:5683", udp=True)) == (PASS, "224.0.1.187:5683")
    assert run(policy, ctx("[ff02::fd]:5683", udp=True)) == (PASS, "[ff02::fd]:5683")
    assert run(policy, ctx("10.0.0.11:5684", udp=True)) == (PASS, "10.0.0.11:5684")
    assert run(policy, ctx("10.0.0.11:5683")) == (PASS, "10.0.0.11:5683")  # TCP: not CoAP/UDP


def test_redirect_table(clang: str, vm: None) -> None:
    policy = example_vm("redirect", redirects=[
        redirect_entry("10.0.0.11:80", "10.0.0.13:8080"),
        redirect_entry("[2001:db8::1]:443", "10.0.0.14:443"),
        redirect_entry("127.0.0.1:1883", "[::1]:1884"),
    ])
    assert run(policy, ctx("10.0.0.11:80")) == (REWRITE, "10.0.0.13:8080")
    assert run(policy, ctx("10.0.0.11:80", v4mapped=True)) == (REWRITE, "10.0.0.13:8080")
    assert run(policy, ctx("[2001:db8::1]:443")) == (REWRITE, "10.0.0.14:443")
    assert run(policy, ctx("127.0.0.1:1883")) == (REWRITE, "[::1]:1884")
    assert run(policy, ctx("10.0.0.11:81")) == (PASS, "10.0.0.11:81")
    assert run(policy, ctx("10.0.0.12:80")) == (PASS, "10.0.0.12:80")


def test_redirect_with_an_empty_table_passes(clang: str, vm: None) -> None:
    assert run(example_vm("redirect"), ctx("10.0.0.11:80")) == (PASS, "10.0.0.11:80")


def test_examples_readme_names_every_example() -> None:
    text = (EXAMPLES / "README.md").read_text()
    for name in ALL:
        assert f"{name}.c" in text
    assert Path(EXAMPLES / "README.md").exists()
