"""mTLS: with ``tls`` configured, peers must present a certificate signed by the group's CA."""

from __future__ import annotations

import asyncio
import datetime
import functools
import json
import logging
import ssl
from pathlib import Path

import aiohttp
import pytest
from agenttools import SteadyNode, config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from freeoffload.agent import Daemon
from freeoffload.agent._wire import summary_body
from freeoffload.agent.auth import GROUP_HEADER


def _write(path: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
    path.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _cert(name: str, issuer: x509.Name, signer: ec.EllipticCurvePrivateKey | None,
          ca: bool, dns: str | None = None) -> tuple[ec.EllipticCurvePrivateKey,
                                                    x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(subject if ca else issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(dns or name)]), critical=False)
    return key, builder.sign(signer or key, hashes.SHA256())


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    ca_key, ca = _cert("freeoffload test CA", x509.Name([]), None, ca=True)
    _write(tmp_path / "ca", ca_key, ca)
    for name in ("c", "m", "cloud"):  # each certificate names its node
        key, cert = _cert(name, ca.subject, ca_key, ca=False)
        _write(tmp_path / name, key, cert)
    key, cert = _cert("ops team", ca.subject, ca_key, ca=False, dns="m3")  # named by its SAN
    _write(tmp_path / "m3", key, cert)
    rogue_key, rogue_ca = _cert("rogue CA", x509.Name([]), None, ca=True)
    key, cert = _cert("m", rogue_ca.subject, rogue_key, ca=False)
    _write(tmp_path / "rogue", key, cert)
    return tmp_path


def _tls(pki: Path, name: str) -> dict[str, str]:
    return {"cert": str(pki / f"{name}.crt"), "key": str(pki / f"{name}.key"),
            "ca": str(pki / "ca.crt")}


def _client(pki: Path, cert: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.check_hostname = False
    ctx.load_cert_chain(pki / f"{cert}.crt", pki / f"{cert}.key")
    return ctx


def _report(name: str) -> bytes:
    return json.dumps({"Node": {
        "Name": name, "Role": "edge", "Group": "g", "Address": "127.0.0.1:9",
        "ComputingPower": {"CPU": {"cores": 2}, "Memory": 1024, "Storage": 8},
        "Resource": {"cpu_percent": 10}, "Capability": {"cpu": 5.0}}}).encode()


async def _post(pki: Path, cert: str, url: str, body: bytes) -> tuple[int, dict[str, str]]:
    headers = {"Authorization": "Bearer t", GROUP_HEADER: "g"}
    async with aiohttp.ClientSession(headers=headers) as s, s.post(
            url, data=body, ssl=_client(pki, cert)) as r:
        return r.status, await r.json()


def test_members_report_over_mtls_and_strangers_are_refused(pki: Path) -> None:
    tls = functools.partial(_tls, pki)
    center = config(node="c", role="center", group="g", token="t", tls=tls("c"),
                    report_interval=0.2)
    member = config(node="m", role="member", group="g", token="t", tls=tls("m"),
                    center=center.address, report_interval=0.2)

    async def client_status(cert: str | None) -> int | str:
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.check_hostname = False
        if cert:
            ctx.load_cert_chain(pki / f"{cert}.crt", pki / f"{cert}.key")
        try:
            async with aiohttp.ClientSession() as s, s.get(
                    f"https://{center.address}/healthz", ssl=ctx) as r:
                return r.status
        except aiohttp.ClientError as err:
            return type(err).__name__

    async def run() -> None:
        daemons = [Daemon(c, SteadyNode(c)) for c in (center, member)]
        for d in daemons:
            await d.start()
        try:
            for _ in range(100):
                if "m" in daemons[0].agent.store.entries:
                    break
                await asyncio.sleep(0.1)
            assert daemons[0].agent.store.node("m") is not None  # reported over mTLS
            assert await client_status("m") == 200
            assert await client_status(None) != 200  # no client certificate
            assert await client_status("rogue") != 200  # signed by another CA
        finally:
            for d in daemons:
                await d.stop()

    asyncio.run(run())


def test_a_certificate_speaks_only_for_the_node_it_names(pki: Path,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    """A member with a valid certificate for ``m`` cannot report as another node (refused with
    403, logged, nothing changed); a certificate names its node by CN or by DNS SAN."""
    tls = functools.partial(_tls, pki)
    center = config(node="c", role="center", group="g", token="t", tls=tls("c"),
                    report_interval=0.2)
    # a real member daemon configured as m2 but holding m's certificate
    impostor = config(node="m2", role="member", group="g", token="t", tls=tls("m"),
                      center=center.address, report_interval=0.2)
    url = f"https://{center.address}/v1/report"

    async def run() -> None:
        daemons = [Daemon(c, SteadyNode(c)) for c in (center, impostor)]
        for d in daemons:
            await d.start()
        store = daemons[0].agent.store
        try:
            for _ in range(100):
                if any(r.getMessage() == "report.refused" for r in caplog.records):
                    break
                await asyncio.sleep(0.1)
            assert store.node("m2") is None
            own = store.node("c")
            status, answer = await _post(pki, "m", url, _report("c"))  # m as its center
            assert status == 403 and "certificate for 'm'" in answer["error"], answer
            assert store.node("c") is own  # nothing changed
            assert (await _post(pki, "m", url, _report("m")))[0] == 200
            assert (await _post(pki, "m3", url, _report("m3")))[0] == 200  # by its SAN
            assert (await _post(pki, "m3", url, _report("ops team")))[0] == 200  # by its CN
            assert store.node("m") is not None and store.node("m3") is not None
        finally:
            for d in daemons:
                await d.stop()

    with caplog.at_level(logging.WARNING, logger="freeoffload.agent"):
        asyncio.run(run())
    refused = [r for r in caplog.records if r.getMessage() == "report.refused"]
    reasons = [getattr(r, "fields", {}).get("reason", "") for r in refused]
    assert any("report for node 'm2'" in r and "certificate for 'm'" in r for r in reasons)
    assert any("report for node 'c'" in r for r in reasons)


def test_a_summary_comes_only_from_the_center_its_certificate_names(pki: Path) -> None:
    cloud = config(node="cloud", role="cloud", group="g", token="t",
                   tls=_tls(pki, "cloud"))
    url = f"https://{cloud.address}/v1/summary"

    async def run() -> None:
        daemon = Daemon(cloud, SteadyNode(cloud))
        await daemon.start()
        try:
            body = summary_body("g", "c", [], [], "127.0.0.1:9")
            status, answer = await _post(pki, "m", url, body)
            assert status == 403 and "summary from center 'c'" in answer["error"], answer
            assert "c" not in daemon.agent.store.agents and "g" not in daemon.agent.store.centers
            assert (await _post(pki, "c", url, body))[0] == 200
            assert daemon.agent.store.centers["g"] == "c"
        finally:
            await daemon.stop()

    asyncio.run(run())


def test_certificate_names_are_the_common_name_and_dns_alternative_names() -> None:
    from freeoffload.agent.auth import certificate_names

    cert = {"subject": ((("organizationName", "ops"),), (("commonName", "edge1"),)),
            "subjectAltName": (("DNS", "edge1.site-a"), ("IP Address", "10.0.0.1"))}
    assert certificate_names(cert) == {"edge1", "edge1.site-a"}
    assert certificate_names(None) == frozenset()  # no certificate: speaks for nobody
    assert certificate_names({}) == frozenset()
