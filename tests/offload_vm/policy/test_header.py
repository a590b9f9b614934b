"""policy.h compiles everywhere it is included: policies (clang -target bpf), the hook and the
VM on the host (C99 and C11, warnings as errors), C++, and Cortex-M4 firmware."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import need

INCLUDE = Path(__file__).resolve().parents[3] / "offload_vm" / "include"
HOST_C = """#include <freeoffload/policy.h>
int fo_test(struct fo_connect_ctx *ctx, const struct fo_candidate *c)
{
    struct fo_addr a;
    fo_ctx_addr(ctx, &a);
    fo_set_destination(ctx, c);
    return (int)(a.port + ctx->pid);
}
"""


@pytest.mark.parametrize(("compiler", "flags"), [
    ("gcc", ["-std=c99", "-pedantic"]),
    ("gcc", ["-std=gnu11"]),
    ("clang", ["-std=c11"]),
    ("g++", ["-std=c++11", "-x", "c++"]),
    ("arm-none-eabi-gcc", ["-std=c99", "-mcpu=cortex-m4", "-mthumb", "-ffreestanding"]),
])
def test_host_code_includes_the_header_without_warnings(compiler: str, flags: list[str],
                                                        tmp_path: Path) -> None:
    need(shutil.which(compiler) is not None, f"{compiler} is installed by .ci/install-deps")
    source = tmp_path / "host.c"
    source.write_text(HOST_C)
    done = subprocess.run([compiler, *flags, "-Wall", "-Wextra", "-Werror", f"-I{INCLUDE}", "-c",
                           str(source), "-o", str(tmp_path / "host.o")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_helpers_and_map_macros_are_for_policies_only(tmp_path: Path, clang: str) -> None:
    source = tmp_path / "host.c"
    source.write_text("#include <freeoffload/policy.h>\n#ifdef SEC\n#error SEC leaked\n#endif\n"
                      "#ifdef FO_CONNECT_POLICY\n#error FO_CONNECT_POLICY leaked\n#endif\n")
    done = subprocess.run([clang, "-Wall", "-Werror", f"-I{INCLUDE}", "-c", str(source), "-o",
                           str(tmp_path / "host.o")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
