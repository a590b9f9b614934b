"""``freeoffload run``: the environment it gives the program, its exit status, its errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from freeoffload.firmware_hooks import PolicyStore, hook_library_path
from freeoffload.firmware_hooks._cli import run_environment
from hooktools import ROOT, hook_lib, store

__all__ = ["hook_lib", "store"]  # fixtures used below


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "freeoffload", "run", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_environment_carries_hook_store_and_task(tmp_path: Path, hook_lib: Path) -> None:
    base = {"LD_PRELOAD": "/usr/lib/other.so", "FREEOFFLOAD_TASK_TYPE": "9", "PATH": "/bin"}
    env = run_environment(base, tmp_path, ROOT / "examples" / "tasks" / "web_request.yaml")
    assert env["LD_PRELOAD"] == f"{hook_library_path()} /usr/lib/other.so"
    assert env["FREEOFFLOAD_STORE"] == str(tmp_path.resolve())
    assert env["FREEOFFLOAD_TASK_TYPE"] == "2"  # io
    assert env["FREEOFFLOAD_TASK_FLAGS"] == "2"  # urgent, not sensitive
    assert env["FREEOFFLOAD_TASK_CPU_MILLI"] == "250"
    assert env["FREEOFFLOAD_TASK_MEMORY_MIB"] == "128"
    assert env["FREEOFFLOAD_TASK_STORAGE_MIB"] == "16"
    plain = run_environment(base, tmp_path)
    assert "FREEOFFLOAD_TASK_TYPE" not in plain and "FREEOFFLOAD_HOOK_DEBUG" not in plain


def test_program_runs_with_its_arguments_and_exit_status(store: PolicyStore) -> None:
    done = _run("--store", str(store.directory), "--", "sh", "-c",
                'echo "$0 $1 $LD_PRELOAD"; exit 7', "a", "b c")
    assert done.returncode == 7
    assert done.stdout == f"a b c {hook_library_path()}\n"


def test_store_is_created_for_later_policies(tmp_path: Path, hook_lib: Path) -> None:
    done = _run("--store", str(tmp_path / "new"), "--", "true")
    assert done.returncode == 0
    assert PolicyStore(tmp_path / "new").generation() == 0


def test_errors_name_the_problem(store: PolicyStore, tmp_path: Path) -> None:
    missing = _run("--store", str(store.directory), "--")
    assert missing.returncode == 1 and "no program given" in missing.stderr
    absent = _run("--store", str(store.directory), "--", str(tmp_path / "nope"))
    assert absent.returncode == 1 and "cannot start" in absent.stderr
    bad_task = tmp_path / "task.yaml"
    bad_task.write_text("Name: t\nType: gpu\n")
    task = _run("--store", str(store.directory), "--task", str(bad_task), "--", "true")
    assert task.returncode == 2 and f"{bad_task}:2" in task.stderr and "gpu" in task.stderr


@pytest.mark.root
def test_kernel_path_runs_the_program_in_its_cgroup(store: PolicyStore, root: None) -> None:
    # the cgroup path is the device engineer's (firmware_hooks/kernel); here: run --kernel
    # reaches it with the program, the store and the environment, and returns its status
    done = _run("--store", str(store.directory), "--kernel", "--", "sh", "-c",
                'grep -q freeoffload /proc/self/cgroup && echo "$FREEOFFLOAD_STORE"; exit 5')
    assert done.returncode == 5, done.stderr
    assert done.stdout == f"{store.directory.resolve()}\n"
