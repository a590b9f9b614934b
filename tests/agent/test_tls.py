"""mTLS: with ``tls`` configured, peers must present a certificate signed by the group's CA."""

from __future__ import annotations

import asyncio
import datetime
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


def _write(path: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
    path.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _cert(name: str, issuer: x509.Name, signer: ec.EllipticCurvePrivateKey | None,
          ca: bool) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
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
            x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
    return key, builder.sign(signer or key, hashes.SHA256())


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    ca_key, ca = _cert("freeoffload test CA", x509.Name([]), None, ca=True)
    _write(tmp_path / "ca", ca_key, ca)
    for name in ("center", "member"):
        key, cert = _cert(name, ca.subject, ca_key, ca=False)
        _write(tmp_path / name, key, cert)
    rogue_key, rogue_ca = _cert("rogue CA", x509.Name([]), None, ca=True)
    key, cert = _cert("member", rogue_ca.subject, rogue_key, ca=False)
    _write(tmp_path / "rogue", key, cert)
    return tmp_path


def test_members_report_over_mtls_and_strangers_are_refused(pki: Path) -> None:
    def tls(name: str) -> dict[str, str]:
        return {"cert": str(pki / f"{name}.crt"), "key": str(pki / f"{name}.key"),
                "ca": str(pki / "ca.crt")}

    center = config(node="c", role="center", group="g", token="t", tls=tls("center"),
                    report_interval=0.2)
    member = config(node="m", role="member", group="g", token="t", tls=tls("member"),
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
            assert await client_status("member") == 200
            assert await client_status(None) != 200  # no client certificate
            assert await client_status("rogue") != 200  # signed by another CA
        finally:
            for d in daemons:
                await d.stop()

    asyncio.run(run())
