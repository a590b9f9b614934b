"""The package's public names, and that importing it does not pull in bcc."""

from __future__ import annotations

import subprocess
import sys

import freeoffload.probes as probes


def test_every_public_name_exists() -> None:
    for name in probes.__all__:
        assert getattr(probes, name) is not None, name
    assert {"open_collector", "stream", "RecordBuilder", "node_record", "Sample",
            "load_probe"} <= set(probes.__all__)


def test_only_the_bcc_backend_imports_bcc() -> None:
    code = ("import sys, freeoffload.probes, freeoffload.probes._cli, freeoffload.probes._procfs;"
            "print('bcc' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
    sources = [p for p in (probes.spec.BUILTIN_DIR.parent).glob("*.py")
               if "import bcc" in p.read_text() or "from bcc" in p.read_text()]
    assert [p.name for p in sources] == ["_bcc.py"]
