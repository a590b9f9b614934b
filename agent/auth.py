"""Peer authentication: a per-group bearer token (and mTLS when configured).

Every request under ``/v1/`` carries ``Authorization: Bearer TOKEN`` and ``X-FreeOffload-Group:
GROUP``. An agent accepts its own group's token and, on centers and the cloud, the tokens listed
under ``tokens`` for other groups. A request without them, or whose token does not belong to the
group it names, is refused with 401 and logged. ``/healthz`` and ``/metrics`` are open.

With mTLS the peer's certificate (signed by ``tls.ca``) also names who the peer is: its subject's
common name and its DNS subject alternative names (:func:`certificate_names`, kept on the request
as ``PEER_NAMES_KEY``). A report is accepted only for a node the certificate names, a group
summary only from the center it names (see ``Store.apply_report``), so a member holding a valid
certificate cannot speak for another node.
"""

from __future__ import annotations

import hmac
import logging
import ssl
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .config import AgentConfig
from .log import event

__all__ = ["GROUP_HEADER", "GROUP_KEY", "PEER_NAMES_KEY", "auth_headers", "authenticator",
           "certificate_names", "client_ssl", "server_ssl"]

GROUP_HEADER = "X-FreeOffload-Group"
GROUP_KEY = web.RequestKey("peer_group", str)
PEER_NAMES_KEY = web.RequestKey("peer_names", frozenset)
log = logging.getLogger("freeoffload.agent.auth")


def auth_headers(cfg: AgentConfig, group: str | None = None, token: str | None = None
                 ) -> dict[str, str]:
    """Headers that authenticate this agent (as ``group``, default its own) to a peer."""
    group = group or cfg.group
    token = token if token is not None else (cfg.token if group == cfg.group
                                             else cfg.tokens.get(group, cfg.token))
    if not token:
        return {GROUP_HEADER: group}
    return {"Authorization": f"Bearer {token}", GROUP_HEADER: group}


def _known_tokens(cfg: AgentConfig) -> dict[str, str]:
    tokens = dict(cfg.tokens)
    if cfg.token:
        tokens[cfg.group] = cfg.token
    return tokens


def _check(request: web.Request, tokens: dict[str, bytes]) -> tuple[str, str]:
    """(group, "") when the request is authentic, else ("", reason)."""
    headers = request.headers
    header = headers.get("Authorization", "")
    group = headers.get(GROUP_HEADER, "")
    if not header.startswith("Bearer "):
        return "", "no bearer token"
    if not group:
        return "", f"no {GROUP_HEADER} header"
    expected = tokens.get(group)
    if expected is None:
        return "", f"unknown group {group!r}"
    if not hmac.compare_digest(header[7:].strip().encode(), expected):
        return "", f"wrong token for group {group!r}"
    return group, ""


def certificate_names(cert: Any) -> frozenset[str]:
    """The names a verified peer certificate (``SSLObject.getpeercert()``) gives its holder:
    the subject's common names and the DNS subject alternative names."""
    if not isinstance(cert, dict):
        return frozenset()
    names = {str(value) for rdn in cert.get("subject", ()) for key, value in rdn
             if key == "commonName"}
    names.update(str(value) for kind, value in cert.get("subjectAltName", ()) if kind == "DNS")
    return frozenset(names)


def authenticator(cfg: AgentConfig, on_refused: Callable[[str], None] | None = None
                  ) -> Callable[[web.Request], web.Response | None]:
    """The check of every request: None to let it through (its group, and with mTLS its
    certificate's names, kept on the request), else the 401 answer (logged; ``on_refused(path)``
    called). Requests outside /v1/ are open."""
    tokens = {group: token.encode() for group, token in _known_tokens(cfg).items()}
    tls = cfg.tls is not None

    def authenticate(request: web.Request) -> web.Response | None:
        path = request.path
        if not path.startswith("/v1/"):  # /healthz, /metrics and unknown paths: open
            return None
        if tls:  # no certificate to be had (connection gone): names nothing
            transport = request.transport
            request[PEER_NAMES_KEY] = certificate_names(
                None if transport is None else transport.get_extra_info("peercert"))
        if not tokens:  # an unauthenticated agent (the embedded default): every peer is ours
            request[GROUP_KEY] = request.headers.get(GROUP_HEADER, cfg.group)
            return None
        group, reason = _check(request, tokens)
        if not group:
            event(log, "request.refused", logging.WARNING, peer=request.remote,
                  method=request.method, path=path, reason=reason)
            if on_refused is not None:
                on_refused(path)
            return web.json_response({"error": f"unauthenticated: {reason}"}, status=401)
        request[GROUP_KEY] = group
        return None

    return authenticate


def server_ssl(cfg: AgentConfig) -> ssl.SSLContext | None:
    """mTLS for the listening side: peers must present a certificate signed by ``tls.ca``."""
    if cfg.tls is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=cfg.tls.ca)
    ctx.load_cert_chain(cfg.tls.cert, cfg.tls.key)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_ssl(cfg: AgentConfig) -> ssl.SSLContext | None:
    """mTLS for the calling side: present our certificate, trust only ``tls.ca``."""
    if cfg.tls is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cfg.tls.ca)
    ctx.load_cert_chain(cfg.tls.cert, cfg.tls.key)
    ctx.check_hostname = False  # peers are named by address; the CA is ours alone
    return ctx
