"""The Python face of the C VM: :class:`VM` owns one ``fovm_vm`` handle, :class:`Map` one of
its maps. C status codes become exceptions in exactly one place, :func:`_raise`."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from freeoffload.errors import ExecutionFaultError, ProgramRejectedError, VMError

from ._fovm import ffi, lib

__all__ = [
    "ARRAY",
    "HASH",
    "LRU_HASH",
    "VM",
    "Map",
    "abi_version",
]

HASH, ARRAY, LRU_HASH = lib.FOVM_MAP_HASH, lib.FOVM_MAP_ARRAY, lib.FOVM_MAP_LRU_HASH
_ANY, _NOEXIST, _EXIST = lib.FOVM_ANY, lib.FOVM_NOEXIST, lib.FOVM_EXIST
_MASK64 = (1 << 64) - 1
_ENGINES = {"auto": lib.FOVM_ENGINE_AUTO, "interpreter": lib.FOVM_ENGINE_INTERP}
_ENGINE_NAMES = {lib.FOVM_ENGINE_JIT: "jit", lib.FOVM_ENGINE_INTERP: "interpreter"}

if lib.fovm_abi_version() != lib.FOVM_ABI_VERSION:  # pragma: no cover - a stale build
    raise ImportError(
        f"freeoffload.offload_vm: C library ABI {lib.fovm_abi_version()} but the binding "
        f"was built for {lib.FOVM_ABI_VERSION}; rebuild with pip install ."
    )

# The one table from C status codes to our exceptions.
_ERRORS: dict[int, type[VMError]] = {
    lib.FOVM_E_REJECTED: ProgramRejectedError,
    lib.FOVM_E_ELF: ProgramRejectedError,
    lib.FOVM_E_FAULT: ExecutionFaultError,
    lib.FOVM_E_BUDGET: ExecutionFaultError,
    lib.FOVM_E_HELPER: ExecutionFaultError,
}
STATUS_NAMES = {
    getattr(lib, name): name
    for name in dir(lib)
    if name.startswith("FOVM_E_") or name == "FOVM_OK"
}


def abi_version() -> int:
    """The ABI version of the C library this binding runs on."""
    return int(lib.fovm_abi_version())


def _raise(code: int, err: Any) -> None:
    """Raise the exception for a non-zero status, with the C message, code and pc."""
    if code == lib.FOVM_OK:
        return
    message = ffi.string(err.msg).decode("utf-8", "replace") or STATUS_NAMES.get(code, "error")
    pc = int(err.pc) if err.pc >= 0 else None
    raise _ERRORS.get(code, VMError)(message, code=code, pc=pc)


def _fovm_py_helper(user: Any, a1: int, a2: int, a3: int, a4: int, a5: int, ret: Any) -> int:
    fn: Callable[..., int] = ffi.from_handle(user)
    try:
        ret[0] = int(fn(a1, a2, a3, a4, a5)) & _MASK64
    except Exception as exc:  # a helper's exception becomes the program's fault
        print(f"freeoffload: helper raised {exc!r}", file=sys.stderr)
        return 1
    return 0


def _fovm_py_trace(user: Any, text: Any, length: int) -> None:
    sink: Callable[[str], None] = ffi.from_handle(user)
    sink(ffi.unpack(text, length).decode("utf-8", "replace"))


ffi.def_extern()(_fovm_py_helper)
ffi.def_extern()(_fovm_py_trace)


class Map:
    """A map of the program loaded in a :class:`VM`; keys and values are ``bytes``.

    A Map is valid until its VM loads another ELF object (then it raises VMError).
    """

    def __init__(self, vm: VM, handle: Any, generation: int) -> None:
        self._vm = vm
        self._h = handle
        self._generation = generation
        info = ffi.new("fovm_map_info *")
        lib.fovm_map_get_info(handle, info)
        self.name: str = ffi.string(info.name).decode()
        self.type: int = int(info.type)
        self.key_size: int = int(info.key_size)
        self.value_size: int = int(info.value_size)
        self.max_entries: int = int(info.max_entries)
        self._storage: Any = None

    def __repr__(self) -> str:
        return (
            f"Map({self.name!r}, type={self.type}, key_size={self.key_size}, "
            f"value_size={self.value_size}, max_entries={self.max_entries})"
        )

    def _handle(self) -> Any:
        if self._vm._generation != self._generation:
            raise VMError(f"map {self.name!r} belonged to a program that was replaced")
        return self._h

    def _key(self, key: bytes) -> bytes:
        if len(key) != self.key_size:
            raise VMError(f"map {self.name!r}: key of {len(key)} bytes, expected {self.key_size}")
        return bytes(key)

    def lookup(self, key: bytes) -> bytes | None:
        """The value stored under key, or None."""
        value = ffi.new("uint8_t[]", self.value_size)
        err = ffi.new("fovm_error *")
        code = lib.fovm_map_lookup(self._handle(), self._key(key), value, err)
        if code == lib.FOVM_E_NOENT:
            return None
        _raise(code, err)
        return bytes(ffi.buffer(value))

    def update(self, key: bytes, value: bytes, flags: int = _ANY) -> None:
        """Store value under key (flags: 0 any, 1 only if absent, 2 only if present)."""
        if len(value) != self.value_size:
            raise VMError(
                f"map {self.name!r}: value of {len(value)} bytes, expected {self.value_size}"
            )
        err = ffi.new("fovm_error *")
        _raise(lib.fovm_map_update(self._handle(), self._key(key), bytes(value), flags, err), err)

    def delete(self, key: bytes) -> None:
        """Remove key; KeyError when it is absent."""
        err = ffi.new("fovm_error *")
        code = lib.fovm_map_delete(self._handle(), self._key(key), err)
        if code == lib.FOVM_E_NOENT:
            raise KeyError(key)
        _raise(code, err)

    def keys(self) -> Iterator[bytes]:
        handle = self._handle()
        key = ffi.new("uint8_t[]", self.key_size)
        prev: Any = ffi.NULL
        while lib.fovm_map_next_key(handle, prev, key, ffi.NULL) == lib.FOVM_OK:
            yield bytes(ffi.buffer(key))
            prev = ffi.new("uint8_t[]", bytes(ffi.buffer(key)))

    def items(self) -> list[tuple[bytes, bytes]]:
        """Every (key, value) pair present now."""
        out = []
        for key in self.keys():
            value = self.lookup(key)
            if value is not None:
                out.append((key, value))
        return out

    def storage_size(self) -> int:
        """Bytes of shared memory :meth:`attach_storage` needs."""
        info = ffi.new("fovm_map_info *")
        lib.fovm_map_get_info(self._handle(), info)
        return int(lib.fovm_map_storage_size(info))

    def attach_storage(self, buffer: Any, init: bool) -> None:
        """Move the map into a writable buffer (e.g. an mmap of a shared file). ``init``
        formats it with the current contents; otherwise the buffer's map is adopted."""
        cdata = ffi.from_buffer(buffer, require_writable=True)
        err = ffi.new("fovm_error *")
        _raise(lib.fovm_map_attach_storage(self._handle(), cdata, len(cdata), int(init), err),
               err)
        self._storage = (buffer, cdata)
        self._vm._keep.append(self._storage)


class VM:
    """One userspace eBPF VM with one verified program, its maps and helpers."""

    def __init__(self, budget: int | None = None, engine: str = "auto") -> None:
        if engine not in _ENGINES:
            raise VMError(f"unknown engine {engine!r}; expected one of: {', '.join(_ENGINES)}")
        err = ffi.new("fovm_error *")
        handle = lib.fovm_create(err)
        if handle == ffi.NULL:
            _raise(int(err.code) or lib.FOVM_E_NOMEM, err)
        self._h: Any = ffi.gc(handle, lib.fovm_destroy)
        lib.fovm_set_engine(self._h, _ENGINES[engine])
        self._generation = 0
        self._keep: list[Any] = []
        self._budget = 0
        self.budget = budget if budget is not None else 1_000_000
        self._trace_handle: Any = None
        self._maps_cache: tuple[int, dict[str, Map]] | None = None

    def __enter__(self) -> VM:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Free the VM now (its maps become invalid)."""
        if self._h is not None:
            ffi.release(self._h)
            self._h = None
            self._generation += 1

    def _handle(self) -> Any:
        if self._h is None:
            raise VMError("the VM is closed")
        return self._h

    @property
    def budget(self) -> int:
        """Most instructions one run may execute before it faults."""
        return self._budget

    @budget.setter
    def budget(self, value: int) -> None:
        if value < 1 or value > _MASK64:
            raise VMError(f"budget must be 1..2**64-1, got {value}")
        lib.fovm_set_budget(self._handle(), value)
        self._budget = value

    def register_helper(
        self, helper_id: int, fn: Callable[..., int], nargs: int = 5, name: str = ""
    ) -> None:
        """Make ``call helper_id`` run fn(r1, ..., r5) -> r0 (before loading the program)."""
        handle = ffi.new_handle(fn)
        err = ffi.new("fovm_error *")
        code = lib.fovm_register_helper(
            self._handle(), helper_id, (name or getattr(fn, "__name__", "host")).encode(),
            nargs, lib._fovm_py_helper, handle, err,
        )
        _raise(code, err)
        self._keep.append(handle)

    def on_trace(self, sink: Callable[[str], None]) -> None:
        """Receive each trace_printk line."""
        self._trace_handle = ffi.new_handle(sink)
        lib.fovm_set_trace(self._handle(), lib._fovm_py_trace, self._trace_handle)

    def create_map(
        self, name: str, map_type: int, key_size: int, value_size: int, max_entries: int
    ) -> Map:
        """A host-made map; raw programs name it by its index in :attr:`maps`."""
        info = ffi.new("fovm_map_info *")
        info.name = name.encode()[:63]
        info.type, info.key_size, info.value_size = map_type, key_size, value_size
        info.max_entries = max_entries
        err = ffi.new("fovm_error *")
        handle = lib.fovm_map_create(self._handle(), info, err)
        if handle == ffi.NULL:
            _raise(int(err.code), err)
        return Map(self, handle, self._generation)

    def load(self, insns: bytes) -> None:
        """Verify and load raw instructions (8-byte slots)."""
        err = ffi.new("fovm_error *")
        _raise(lib.fovm_load(self._handle(), bytes(insns), len(insns), err), err)

    def load_elf(self, data: bytes, section: str | None = None) -> None:
        """Load a program section of a clang ``-target bpf`` object with its maps."""
        err = ffi.new("fovm_error *")
        self._generation += 1
        name = section.encode() if section is not None else ffi.NULL
        _raise(lib.fovm_load_elf(self._handle(), bytes(data), len(data), name, err), err)

    @property
    def maps(self) -> dict[str, Map]:
        """The program's maps by name (in creation order: raw programs use the index)."""
        handle = self._handle()
        count = int(lib.fovm_map_count(handle))
        cached = self._maps_cache
        if cached is not None and cached[0] == self._generation and len(cached[1]) == count:
            return dict(cached[1])
        out = {}
        for i in range(count):
            m = Map(self, lib.fovm_map_at(handle, i), self._generation)
            out[m.name] = m
        self._maps_cache = (self._generation, out)
        return dict(out)

    def run_counted(self, ctx: bytes | bytearray | None = None) -> tuple[int, int]:
        """Run the program; (r0, instructions executed). A bytearray sees the writes."""
        err = ffi.new("fovm_error *")
        r0 = ffi.new("uint64_t *")
        executed = ffi.new("uint64_t *")
        if ctx is None or len(ctx) == 0:
            buf: Any = ffi.NULL
            size = 0
        elif isinstance(ctx, bytearray):
            buf, size = ffi.from_buffer(ctx), len(ctx)
        else:
            buf, size = ffi.new("uint8_t[]", bytes(ctx)), len(ctx)
        _raise(lib.fovm_exec_counted(self._handle(), buf, size, r0, executed, err), err)
        return int(r0[0]), int(executed[0])

    def run(self, ctx: bytes | bytearray | None = None) -> int:
        """Run the program with r1 = ctx, r2 = len(ctx); returns r0."""
        return self.run_counted(ctx)[0]

    @property
    def engine(self) -> str | None:
        """What runs the loaded program: ``"jit"`` (native code) or ``"interpreter"``; None
        before a program is loaded. ``VM(engine="interpreter")`` or ``FOVM_JIT=0`` in the
        environment force the interpreter; ``"auto"`` compiles where the host allows."""
        return _ENGINE_NAMES.get(int(lib.fovm_engine(self._handle())))

    @property
    def program_len(self) -> int:
        """Instruction slots of the loaded program."""
        return int(lib.fovm_program_len(self._handle()))
