"""Sending policies and map updates to a device daemon (``freeoffload device``) over HTTP.

``PUT URL/v1/policy`` with the ``.fop`` bytes and ``PUT URL/v1/maps/{map}`` with a signed map
update; the device answers JSON, and a refusal is a 4xx with ``{"error": "..."}``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from freeoffload.errors import Location, PolicyError

__all__ = ["push_map_update", "push_package"]


def _put(url: str, body: bytes, timeout: float) -> dict[str, Any]:
    if not url.startswith(("http://", "https://")):
        raise PolicyError.at(Location("--to"), "", f"expected an http:// or https:// URL, got "
                             f"{url!r}", "e.g. http://10.0.0.21:7701")
    request = urllib.request.Request(url, data=body, method="PUT",  # noqa: S310 - checked above
                                     headers={"Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            text = response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        text = err.read().decode("utf-8", "replace")
        try:
            reason = json.loads(text).get("error", text)
        except (ValueError, AttributeError):
            reason = text.strip() or err.reason
        raise PolicyError.at(Location(url), "", f"the device refused it (HTTP {err.code}): "
                             f"{reason}") from err
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise PolicyError.at(Location(url), "", f"cannot reach the device: {reason}",
                             "is `freeoffload device` running there?") from err
    try:
        answer = json.loads(text) if text.strip() else {}
    except ValueError:
        answer = {"response": text}
    return answer if isinstance(answer, dict) else {"response": answer}


def push_package(data: bytes, url: str, timeout: float = 10.0) -> dict[str, Any]:
    """PUT a ``.fop`` to ``URL/v1/policy``; the device's JSON answer."""
    return _put(url.rstrip("/") + "/v1/policy", data, timeout)


def push_map_update(data: bytes, url: str, map_name: str,
                    timeout: float = 10.0) -> dict[str, Any]:
    """PUT a signed map update to ``URL/v1/maps/{map_name}``; the device's JSON answer."""
    return _put(f"{url.rstrip('/')}/v1/maps/{map_name}", data, timeout)
