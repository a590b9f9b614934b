"""Probe descriptions: the built-in ones load, bad ones say file:line:col and what is allowed,
and a description that does not match its program is refused when the program loads."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from freeoffload.probes import builtin_names, load_probe
from freeoffload.probes.spec import BUILTIN_DIR, load_probe_text

from freeoffload.errors import ProbeSpecError

BAD = sorted((Path(__file__).parent / "data" / "bad").glob("*.yaml"))


def test_the_builtin_probes_load_with_metric_names_and_units() -> None:
    assert builtin_names() == ["cpu", "disk", "net", "tcp"]
    for name in builtin_names():
        spec = load_probe(name)
        assert spec.source.is_file() and spec.tracepoints
        for metric in spec.metrics:
            assert metric.unit and metric.key_size > 0
            assert metric.name.endswith(("_total", "_seconds")), metric.name
    assert load_probe("tcp").metric("tcp_peer_rtt_seconds").value == "sum_count"
    assert load_probe("disk").metric("disk_bytes_total").labels == ("dev", "op")


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_a_bad_description_names_where_and_what(path: Path) -> None:
    text = path.read_text()
    expected = text.splitlines()[0].removeprefix("# error: ")
    source = f"bad/{path.name}"
    with pytest.raises(ProbeSpecError) as err:
        load_probe_text(path.stem, text, source)
    message = str(err.value)
    if expected[0].isdigit():
        assert any(line.startswith(f"{source}:{expected}") for line in message.splitlines()), \
            message
    else:
        assert message.startswith(source) and expected in message, message


def test_a_probe_without_its_program_is_refused(tmp_path: Path) -> None:
    shutil.copy(BUILTIN_DIR / "net.yaml", tmp_path / "net.yaml")
    with pytest.raises(ProbeSpecError, match=r"net.yaml: no program net.bpf.c beside it"):
        load_probe("net", tmp_path)


def _copy_probe(tmp_path: Path, name: str, edit: tuple[str, str]) -> Path:
    for suffix in (".bpf.c", ".yaml"):
        shutil.copy(BUILTIN_DIR / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    shutil.copy(BUILTIN_DIR / "fo_probe.h", tmp_path / "fo_probe.h")
    yaml_path = tmp_path / f"{name}.yaml"
    text = yaml_path.read_text()
    assert edit[0] in text
    yaml_path.write_text(text.replace(edit[0], edit[1], 1))
    return tmp_path


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.parametrize(("edit", "message"), [
    (("type: \"char[16]\"", "type: \"char[12]\""),
     "map 'net_dev_bytes_total' has a 20-byte key; the fields described add up to 16"),
    (("name: net_dev_packets_total", "name: net_dev_frames_total"),
     "net.bpf.c has no map 'net_dev_frames_total'; the metric name is the map's name"),
    (("{name: dir, type: u32", "{name: direction, type: u32"),
     "map 'net_dev_bytes_total' key fields are ['ifname', 'dir']; the YAML describes "
     "['ifname', 'direction']"),
])
def test_the_loader_checks_the_description_against_the_program(
        bpf: None, tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    from freeoffload.probes import _bcc

    spec = load_probe("net", _copy_probe(tmp_path, "net", edit))
    with pytest.raises(ProbeSpecError) as err:
        _bcc.load(spec).close()
    assert message in str(err.value)
    assert str(err.value).startswith(str(tmp_path / "net.yaml"))


@pytest.mark.root
@pytest.mark.bpf
def test_the_kprobe_fallbacks_compile_and_pass_the_verifier(bpf: None) -> None:
    """This kernel has the sock_*_length tracepoints (and no kprobes), so the fallback for
    kernels without them is built and verified here, not attached."""
    from bcc import BPF

    spec = load_probe("tcp")
    assert dict(spec.kprobes) == {"sock:sock_send_length": "tcp_sendmsg",
                                  "sock:sock_recv_length": "tcp_recvmsg"}
    flags = [f"-I{BUILTIN_DIR}", "-DFO_KPROBE_sock_sock_send_length",
             "-DFO_KPROBE_sock_sock_recv_length"]
    bpf = BPF(text=spec.source.read_bytes(), cflags=flags)
    try:
        for fn in ("tcp_sendmsg", "tcp_recvmsg"):
            for kind in ("kprobe", "kretprobe"):
                assert bpf.load_func(f"fo_{kind}_{fn}".encode(), BPF.KPROBE).fd >= 0
    finally:
        bpf.cleanup()


@pytest.mark.root
@pytest.mark.bpf
def test_a_program_that_does_not_compile_names_file_line_and_error(
        bpf: None, tmp_path: Path) -> None:
    from freeoffload.probes import _bcc

    from freeoffload.errors import ProbeError

    directory = _copy_probe(tmp_path, "net", ("tx, rx", "tx, rx"))
    source = directory / "net.bpf.c"
    source.write_text(source.read_text().replace("args->len", "args->length", 1))
    line = next(i for i, text in enumerate(source.read_text().splitlines(), 1)
                if "args->length" in text)
    with pytest.raises(ProbeError) as err:
        _bcc.load(load_probe("net", directory)).close()
    assert str(err.value).startswith(f"probe net: net.bpf.c:{line}:")
    assert "error: no member named 'length'" in str(err.value)


@pytest.mark.root
@pytest.mark.bpf
def test_a_missing_tracepoint_falls_back_to_procfs_naming_it(bpf: None, tmp_path: Path) -> None:
    from freeoffload.probes import open_collector

    from freeoffload.errors import ProbeError

    directory = _copy_probe(tmp_path, "net", ("net:netif_receive_skb]", "net:netif_nothing]"))
    spec = load_probe("net", directory)
    collector = open_collector("auto", probes=[spec])
    try:
        assert collector.mode == "procfs"
        assert collector.reason == "probe net: this kernel has no tracepoint net:netif_nothing"
        assert collector.sample().reason == collector.reason
    finally:
        collector.close()
    with pytest.raises(ProbeError, match="no tracepoint net:netif_nothing"):
        open_collector("ebpf", probes=[spec])


@pytest.mark.root
@pytest.mark.bpf
def test_a_tracepoint_the_yaml_does_not_list_is_refused(bpf: None, tmp_path: Path) -> None:
    from freeoffload.probes import _bcc

    directory = _copy_probe(tmp_path, "net", ("net:net_dev_xmit, ", ""))
    with pytest.raises(ProbeSpecError) as err:
        _bcc.load(load_probe("net", directory)).close()
    assert str(err.value) == (
        f"{directory / 'net.yaml'}:2:1: tracepoints: net.bpf.c attaches to net:net_dev_xmit, "
        "which the YAML does not list; add them to tracepoints (or optional)")


@pytest.mark.root
@pytest.mark.bpf
def test_a_map_the_yaml_does_not_describe_is_refused(bpf: None, tmp_path: Path) -> None:
    from freeoffload.probes import _bcc

    directory = _copy_probe(tmp_path, "disk", ("internal: [disk_started]", "internal: []"))
    with pytest.raises(ProbeSpecError) as err:
        _bcc.load(load_probe("disk", directory)).close()
    assert str(err.value) == (
        f"{directory / 'disk.yaml'}:3:1: metrics: map 'disk_started' of disk.bpf.c is not "
        "described; add it to metrics or internal")


@pytest.mark.root
@pytest.mark.bpf
def test_kernels_without_batch_lookups_are_read_key_by_key(bpf: None) -> None:
    """The fallback for kernels before 5.6 gives what the batch read gives."""
    import struct

    from freeoffload.probes import _bcc

    probe = _bcc.load(load_probe("cpu"))
    try:
        reader = probe.readers["cpu_runq_latency_seconds"]
        batch_keys, batch_values = reader.read()
        calls = reader.syscalls
        reader.batched = False
        walk_keys, walk_values = reader.read()
        assert reader.syscalls - calls > 40  # a next-key and a lookup per entry
    finally:
        probe.close()
    assert sorted(struct.iter_unpack("=I", walk_keys)) == \
        sorted(struct.iter_unpack("=I", batch_keys)) == [(i,) for i in range(40)]
    before = dict(zip(struct.iter_unpack("=I", batch_keys), struct.iter_unpack("=Q", batch_values),
                      strict=True))
    after = dict(zip(struct.iter_unpack("=I", walk_keys), struct.iter_unpack("=Q", walk_values),
                     strict=True))
    assert all(after[k] >= before[k] for k in before)  # counters only grow
