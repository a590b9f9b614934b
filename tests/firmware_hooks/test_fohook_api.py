"""The plthook-shaped C API (fohook.h), built into a test program with each linker setting,
with AddressSanitizer and UndefinedBehaviorSanitizer."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hooktools import DATA, ROOT

SETTINGS = {
    "lazy": ["-Wl,-z,lazy", "-Wl,-z,norelro"],
    "relro-now-pie": ["-pie", "-fPIE", "-Wl,-z,relro,-z,now"],
    "fno-plt": ["-fno-plt", "-Wl,-z,relro,-z,now"],
    "no-pie": ["-no-pie", "-fno-pie"],
}


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_fohook_api(setting: str, tmp_path: Path) -> None:
    src = ROOT / "firmware_hooks" / "src"
    exe = tmp_path / "fohook_api_test"
    sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    if setting == "no-pie":
        sanitize = []  # ASan wants PIE on this toolchain
    subprocess.run(["gcc", "-std=gnu11", "-D_GNU_SOURCE", "-O1", "-g", "-Wall", "-Wextra",
                    "-Werror", "-fno-builtin", *sanitize, *SETTINGS[setting],
                    f"-I{ROOT / 'firmware_hooks' / 'include'}", f"-I{src}", "-o", str(exe),
                    str(DATA / "fohook_api_test.c"), str(src / "fohook_api.c"),
                    str(src / "fohook_elf.c"), "-ldl", "-lpthread"], check=True)
    done = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("ok ") == 11 and "FAIL" not in done.stdout
