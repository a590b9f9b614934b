"""The device daemon: signed policies and map updates from the edge or center, installed
into the policy store (``freeoffload device``).

- :class:`Device`: accept or refuse a push (no HTTP), keep what is installed on disk.
- :func:`make_app` / :func:`serve`: the aiohttp API (``PUT /v1/policy``,
  ``PUT /v1/maps/{map}``, ``GET /v1/status``).
- :func:`load_config`: the YAML configuration, validated with line-numbered errors.
"""

from __future__ import annotations

from .config import DEFAULT_CONFIG, DeviceConfig, DeviceConfigError, load_config, load_config_text
from .core import Device, RefusedError
from .server import make_app, serve

__all__ = [
    "DEFAULT_CONFIG",
    "Device",
    "DeviceConfig",
    "DeviceConfigError",
    "RefusedError",
    "load_config",
    "load_config_text",
    "make_app",
    "serve",
]
