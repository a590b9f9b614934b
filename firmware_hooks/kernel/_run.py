"""run_in_cgroup: the program runs in a cgroup whose connect4/6 programs run the policy.

The installed policy (policy store) is linked into kernel wrappers and attached to a new
cgroup v2 with bpf links; the program is started inside. While it runs, a new generation of
the store is picked up: map rows are copied into the kernel maps, a new policy object
replaces the programs atomically (BPF_LINK_UPDATE). Like the user-space hook the path fails
open: a policy the kernel refuses leaves connections unchanged (one line on stderr). What
cannot be had at all (no cgroup v2, no bpf(), no cgroup sock_addr programs) raises
HookError before the program starts. The cgroup is removed on the way out, also on errors.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType

from freeoffload.errors import HookError

from . import _sys
from ._cgroup import Cgroup, cgroup2_mount, sweep_stale
from ._elf import ObjectError
from ._loader import KernelPolicy, load_getpeername, make_orig_map
from ._wrapper import Task

__all__ = ["Snapshot", "kernel_support", "run_with_source", "task_from_env"]

_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Snapshot:
    """What the store holds: a generation, the policy object and its map rows."""

    generation: int
    elf: bytes | None
    maps: Mapping[str, Sequence[tuple[bytes, bytes]]] = field(default_factory=dict)


Source = Callable[[], Snapshot]


def kernel_support() -> str | None:
    """None when the kernel path can run here, else why not (one line)."""
    if cgroup2_mount() is None:
        return "no cgroup v2 hierarchy is mounted"
    try:
        orig = make_orig_map()
    except _sys.BPFSyscallError as err:
        return f"the bpf() system call is not usable: {err.strerror} (needs root/CAP_BPF)"
    try:
        for fd in load_getpeername(orig).values():
            os.close(fd)
    except _sys.BPFSyscallError as err:
        if err.errno in (errno.EPERM, errno.EACCES):
            return (f"loading a cgroup program is not permitted: {err.strerror} (needs root, "
                    "or CAP_BPF with CAP_NET_ADMIN)")
        return f"this kernel does not load cgroup sock_addr programs: {err.strerror}"
    finally:
        os.close(orig)
    return None


def task_from_env(env: Mapping[str, str]) -> Task:
    """The task attributes ``freeoffload run --task`` puts in the environment."""
    def num(name: str) -> int:
        try:
            return int(env.get(name, "0")) & 0xFFFFFFFF
        except ValueError:
            return 0
    return Task(num("FREEOFFLOAD_TASK_TYPE"), num("FREEOFFLOAD_TASK_FLAGS"),
                num("FREEOFFLOAD_TASK_CPU_MILLI"), num("FREEOFFLOAD_TASK_MEMORY_MIB"),
                num("FREEOFFLOAD_TASK_STORAGE_MIB"))


def _warn(message: str) -> None:
    print(f"freeoffload: kernel path: {message}", file=sys.stderr, flush=True)


class _Attachment:
    """The cgroup's links and the policy behind them; follows the store's generations."""

    def __init__(self, cgroup: Cgroup, task: Task) -> None:
        self.cgroup, self.task = cgroup, task
        self.orig = make_orig_map()
        self.links: dict[int, int] = {}
        self.policy: KernelPolicy | None = None
        self.elf: bytes | None = None
        self.maps: Mapping[str, Sequence[tuple[bytes, bytes]]] = {}
        try:
            for attach, prog in load_getpeername(self.orig).items():
                try:
                    self.links[attach] = _sys.link_create(prog, cgroup.fd, attach)
                finally:
                    os.close(prog)
        except BaseException:
            self.close()
            raise

    def follow(self, snap: Snapshot) -> None:
        if snap.elf != self.elf:
            self.elf = snap.elf
            self.maps = {}
            self._swap(snap.elf)
        if self.policy is not None and snap.maps != self.maps:
            try:
                self.policy.sync_maps(snap.maps)
                self.maps = snap.maps
            except _sys.BPFSyscallError as err:
                _warn(f"cannot copy the map rows: {err}")

    def _swap(self, elf: bytes | None) -> None:
        new: KernelPolicy | None = None
        if elf is not None:
            try:
                new = KernelPolicy(elf, self.task, self.orig)
            except (ObjectError, _sys.BPFSyscallError) as err:
                log = getattr(err, "log", "")
                tail = f"\n{log[-2000:]}" if log else ""
                _warn(f"the policy does not load in the kernel ({err}); "
                      f"connections go unchanged{tail}")
        for attach, prog in (new.prog_fds.items() if new else ()):
            if attach in self.links:
                _sys.link_update(self.links[attach], prog)
            else:
                self.links[attach] = _sys.link_create(prog, self.cgroup.fd, attach)
        if new is None:  # no (loadable) policy: detach connect, keep getpeername restore
            for attach in (_sys.ATTACH_INET4_CONNECT, _sys.ATTACH_INET6_CONNECT):
                if attach in self.links:
                    os.close(self.links.pop(attach))
        if self.policy is not None:
            self.policy.close()
        self.policy = new

    def close(self) -> None:
        for fd in self.links.values():
            os.close(fd)
        self.links.clear()
        if self.policy is not None:
            self.policy.close()
        os.close(self.orig)


def _exit_status(code: int) -> int:
    return 128 - code if code < 0 else code


def run_with_source(argv: Sequence[str], source: Source, env: Mapping[str, str]) -> int:
    """Runs ``argv`` in a fresh cgroup whose connect programs follow ``source``."""
    reason = kernel_support()
    if reason is not None:
        raise HookError(f"the kernel path is not available: {reason}")
    mount = cgroup2_mount()
    if mount is None:  # unmounted since the check
        raise HookError("the kernel path is not available: no cgroup v2 hierarchy is mounted")
    for path in sweep_stale(mount, "run"):
        _warn(f"removed {path}, left behind by a run that was killed")
    try:
        cgroup = Cgroup(mount, "run")
    except OSError as err:
        raise HookError(f"the kernel path cannot make a cgroup under {mount}: "
                        f"{err.strerror}") from err
    attachment: _Attachment | None = None
    try:
        attachment = _Attachment(cgroup, task_from_env(env))
        attachment.follow(source())
        return _supervise(argv, env, cgroup, attachment, source)
    finally:
        if attachment is not None:
            attachment.close()
        cgroup.remove()


def _supervise(argv: Sequence[str], env: Mapping[str, str], cgroup: Cgroup,
               attachment: _Attachment, source: Source) -> int:
    procs = cgroup.procs_file()

    def join_cgroup() -> None:
        with open(procs, "w") as f:
            f.write("0")

    try:
        child = subprocess.Popen(list(argv), env=dict(env), preexec_fn=join_cgroup)
    except OSError as err:
        raise HookError(f"cannot run {argv[0]}: {err.strerror}") from err
    except subprocess.SubprocessError as err:  # joining the cgroup failed in the child
        raise HookError(f"cannot run {argv[0]} in the cgroup {cgroup.path}: {err}") from err

    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):
            child.send_signal(signum)

    old = {}
    if threading.current_thread() is threading.main_thread():
        old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                return _exit_status(child.wait(timeout=_POLL_SECONDS))
            except subprocess.TimeoutExpired:
                pass
            try:
                attachment.follow(source())
            except (OSError, HookError) as err:
                _warn(f"cannot read the policy store: {err}")
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if child.poll() is None:
            child.kill()
            child.wait()
