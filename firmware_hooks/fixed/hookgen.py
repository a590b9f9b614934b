"""Turns a list of function names into hook points with arguments, at compile time.

    python3 hookgen.py --functions "sample_sensor radio_tx" --out-dir build/gen \\
        [--clang clang] [--cc arm-none-eabi-gcc] firmware.c ... -- CFLAGS...

For every source it writes ``OUT_DIR/<name>.c``: the source unchanged except that the body of
each listed function starts with a hook point (on the same line as its ``{``, so line numbers
and ``__FILE__`` stay those of the original, through ``#line``). The hook point packs the
function's arguments into a ``struct fohook_ctx``, runs the policy (``fohook_fixed_run``), writes
the arguments the policy rewrote back into the parameters, and on ``FOHOOK_DROP`` returns
``ctx.ret`` without running the body. It also writes ``OUT_DIR/fohook_list.c`` (the names and
``fohook_instrument_count()``) and ``OUT_DIR/<name>.c.d`` (make dependencies: the headers the
parse read). Compile the generated files instead of the originals, with
``-iquote`` the original's directory so its ``#include "..."`` still resolve. The hook point
is code before the body's first declarations: the source must be C99 or later.

The prototypes come from clang's own parse of each source (``-Xclang -ast-dump=json``), with the
same flags the build uses; ``--cc`` names a GCC cross compiler whose C library headers clang
should read (e.g. newlib's for arm-none-eabi). Only standard library modules are used: firmware
builds need no virtualenv.

Why a source step and not ``-finstrument-functions`` or ``ld --wrap`` (measured in
examples/firmware/README.md): the enter hook of ``-finstrument-functions`` never sees the
arguments, and ``--wrap`` only redirects undefined references, so calls inside the defining
translation unit, inlined calls and GCC's specialised clones bypass the wrapper. A hook point in
the body is inlined, cloned and specialised with it, with any compiler and for any target.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_ARGS = 6
Json = dict[str, Any]  # one node of clang's JSON AST
_INTEGER_WORDS = {"char", "short", "int", "long", "signed", "unsigned", "_Bool", "bool"}
_QUALIFIERS = {"const", "volatile", "restrict", "__restrict", "__restrict__"}


class HookGenError(Exception):
    """A listed function cannot become a hook point; the message names file, line and why."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "int" or "ptr"
    writable: bool  # False for a const-qualified parameter: the policy's rewrite is ignored


@dataclass(frozen=True)
class HookPoint:
    name: str
    line: int
    brace: int  # byte offset of the body's "{"
    params: tuple[Param, ...]
    returns: str  # "void", "int" or "ptr"


def fohook_id(name: str) -> int:
    """FNV-1a, 32 bit: the same id as fohook_id() in fohook_fixed.h."""
    h = 2166136261
    for byte in name.encode():
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


def _classify(type_json: dict[str, str]) -> tuple[str | None, bool]:
    """('int' | 'ptr' | None, const) for a clang type; None when neither integer nor pointer."""
    spelled = type_json.get("desugaredQualType", type_json.get("qualType", ""))
    if "*" in spelled:
        top = spelled.rsplit("*", 1)[1].split()
        return "ptr", "const" in top
    words = spelled.replace("*", " ").split()
    const = "const" in words
    core = [w for w in words if w not in _QUALIFIERS]
    if core and core[0] == "enum":
        return "int", const
    if core and all(w in _INTEGER_WORDS for w in core):
        return "int", const
    return None, const


def _return_kind(fn_type: dict[str, str], typedefs: dict[str, str]) -> str | None:
    """'void' | 'int' | 'ptr' | None for a function type (clang spells it "RET (PARAMS)" and
    does not desugar RET: typedefs are resolved here)."""
    spelled = fn_type.get("desugaredQualType", fn_type.get("qualType", ""))
    ret, _, rest = spelled.partition("(")
    if rest.startswith("*"):
        return "ptr"  # returns a function pointer: "int (*(PARAMS))(ARGS)"
    ret = ret.strip()
    for _ in range(32):  # a typedef of a typedef of ...
        words = [w for w in ret.split() if w not in _QUALIFIERS]
        if len(words) != 1 or words[0] not in typedefs:
            break
        ret = typedefs[words[0]]
    if ret == "void":
        return "void"
    kind, _ = _classify({"qualType": ret})
    return kind


def _gcc_flags(cc: str) -> list[str]:
    """Clang flags that parse as ``cc`` compiles: its target and its C library's include
    directories (not its compiler-internal ones: clang keeps its own builtin headers)."""
    try:
        target = subprocess.run([cc, "-dumpmachine"], capture_output=True, text=True,
                                check=True).stdout.strip()
        proc = subprocess.run([cc, "-xc", "-E", "-Wp,-v", "-"], input="", capture_output=True,
                              text=True, check=False)
    except (OSError, subprocess.CalledProcessError) as err:
        raise HookGenError(f"{cc}: cannot ask it for its target: {err}") from err
    dirs, inside = [], False
    for line in proc.stderr.splitlines():
        if line.startswith("#include <...>"):
            inside = True
        elif line.startswith("End of search list"):
            break
        elif inside:
            path = os.path.normpath(line.strip())
            if not {"gcc", "gcc-cross"} & set(Path(path).parts):
                dirs.append(path)
    if not target or not dirs:
        raise HookGenError(f"{cc}: could not read its target and include directories")
    return [f"--target={target}", "-nostdlibinc", *(f"-isystem{d}" for d in dirs)]


def _track_file(node: object, state: dict[str, str]) -> None:
    """Follows clang's "file" keys in print order: each location names its file only when it
    differs from the location printed before it ("includedFrom" names an includer, not that)."""
    if isinstance(node, dict):
        if isinstance(node.get("file"), str):
            state["file"] = node["file"]
        for key, value in node.items():
            if key != "includedFrom":
                _track_file(value, state)
    elif isinstance(node, list):
        for value in node:
            _track_file(value, state)


def _ast_decls(clang: str, source: Path, flags: list[str],
               deps: tuple[Path, Path] | None = None) -> list[tuple[str, Json]]:
    """The top-level declarations of ``source`` as clang parses it, each with its file
    (typedefs included: find_hook_points resolves return types through them). With ``deps``
    = (depfile, target), clang also writes a make depfile: the target depends on every header
    the parse read."""
    cmd = [clang, "-fsyntax-only", "-Wno-everything", *flags, "-Xclang", "-ast-dump=json",
           str(source)]
    if deps is not None:
        cmd += ["-MD", "-MP", "-MF", str(deps[0]), "-MT", str(deps[1])]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as err:
        raise HookGenError(f"{clang}: cannot run it ({err.strerror}); hookgen reads the "
                           "prototypes with clang (--clang names another)") from err
    if proc.returncode != 0:
        raise HookGenError(f"{source}: clang could not parse it:\n{proc.stderr.strip()}")
    state: dict[str, str] = {"file": ""}
    decls = []
    for decl in json.loads(proc.stdout).get("inner", []):
        _track_file(decl.get("loc", {}), state)
        decls.append((state["file"], decl))
        _track_file(decl, state)
    return decls


def _offset(loc: Json) -> int | None:
    """The byte offset of a location written in the file itself (None inside a macro)."""
    if "offset" in loc and "spellingLoc" not in loc:
        return int(loc["offset"])
    return None


def _params(decl: Json, where: str) -> tuple[Param, ...]:
    params: list[Param] = []
    for p in (n for n in decl.get("inner", []) if n.get("kind") == "ParmVarDecl"):
        kind, const = _classify(p.get("type", {}))
        name = p.get("name")
        if not name:
            raise HookGenError(f"{where}: parameter {len(params) + 1} has no name")
        if kind is None:
            raise HookGenError(
                f"{where}: parameter '{name}' has type '{p['type'].get('qualType')}'; "
                "a hook point passes integer and pointer arguments only")
        params.append(Param(name, kind, not const))
    if len(params) > MAX_ARGS:
        raise HookGenError(f"{where}: {len(params)} parameters; at most {MAX_ARGS}")
    return tuple(params)


def find_hook_points(source: Path, names: list[str], decls: list[tuple[str, Json]],
                     in_headers: dict[str, str] | None = None) -> list[HookPoint]:
    """The definitions of the listed functions written in ``source`` itself; listed functions
    defined in a header it includes go into ``in_headers`` (name -> header)."""
    data = source.read_bytes()
    points = []
    typedefs = {d["name"]: d["type"].get("desugaredQualType", d["type"].get("qualType", ""))
                for _, d in decls if d.get("kind") == "TypedefDecl" and "type" in d}
    for file, decl in decls:
        name = decl.get("name")
        body = [n for n in decl.get("inner", []) if n.get("kind") == "CompoundStmt"]
        if decl.get("kind") != "FunctionDecl" or name not in names or not body:
            continue  # a prototype, or another name the filter matched as a substring
        loc = decl["loc"]
        at = _offset(loc)
        if file != str(source):
            if in_headers is not None:
                in_headers.setdefault(name, os.path.normpath(file))
            continue  # a header is not rewritten: its functions are hooked by hand
        if at is None or data[at:at + len(name)] != name.encode():
            raise HookGenError(f"{source}: {name}: its name comes from a macro; place "
                               "FO_HOOK_POINT by hand")
        line = data.count(b"\n", 0, at) + 1
        where = f"{source}:{line}: {name}"
        brace = _offset(body[0]["range"]["begin"])
        if brace is None or data[brace:brace + 1] != b"{":
            raise HookGenError(f"{where}: its body comes from a macro; place FO_HOOK_POINT "
                               "by hand")
        if decl.get("variadic"):
            raise HookGenError(f"{where}: variadic functions cannot become hook points")
        params = _params(decl, where)
        returns = _return_kind(decl.get("type", {}), typedefs)
        if returns is None:
            raise HookGenError(
                f"{where}: returns '{decl['type'].get('qualType')}'; a hook point can drop a "
                "call only of a function returning void, an integer or a pointer")
        points.append(HookPoint(name, line, brace, params, returns))
    return points


def _hook_code(p: HookPoint) -> str:
    """The hook point, one line: what goes right after the body's "{"."""
    def widen(a: Param) -> str:
        return f"(fo_u64)(__UINTPTR_TYPE__)({a.name})" if a.kind == "ptr" else \
            f"(fo_u64)({a.name})"

    args = [widen(a) for a in p.params] + ["0"] * (MAX_ARGS - len(p.params))
    c = "fohook_c_"
    code = ["void *fohook_site_ = __builtin_return_address(0);",
            f"struct fohook_ctx {c} = FOHOOK_CTX_N({len(p.params)}, {', '.join(args)});",
            f"{c}.hook = {fohook_id(p.name):#010x}u; {c}.source = FOHOOK_SRC_INSTRUMENT;",
            f"{c}.fn = (fo_u64)(__UINTPTR_TYPE__)&{p.name};",
            f"{c}.call_site = (fo_u64)(__UINTPTR_TYPE__)fohook_site_;",
            f"if (fohook_fixed_run(&{c}) == FOHOOK_DROP)"]
    call = f"{p.name}({', '.join(a.name for a in p.params)})"
    if p.returns == "void":
        code.append("return;")
    elif p.returns == "ptr":
        code.append(f"return (__typeof__({call}))(__UINTPTR_TYPE__){c}.ret;")
    else:
        code.append(f"return (__typeof__({call})){c}.ret;")
    for i, a in enumerate(p.params):
        if not a.writable:
            continue
        via = "(__UINTPTR_TYPE__)" if a.kind == "ptr" else ""
        code.append(f"{a.name} = (__typeof__({a.name})){via}{c}.args[{i}];")
    return " /* fohook */ " + " ".join(code) + " /* end fohook */"


def rewrite(source: Path, points: list[HookPoint]) -> bytes:
    """The source with a hook point at the start of each function in ``points``."""
    data = source.read_bytes()
    for p in sorted(points, key=lambda p: p.brace, reverse=True):
        data = data[:p.brace + 1] + _hook_code(p).encode() + data[p.brace + 1:]
    names = ", ".join(p.name for p in points) or "none"
    path = str(source).replace("\\", "\\\\").replace('"', '\\"')
    head = (f"/* Generated by firmware_hooks/fixed/hookgen.py from {source.name}: hook points "
            f"for {names}. Do not edit. */\n#include \"fohook_fixed.h\"\n"
            f"#line 1 \"{path}\"\n")
    return head.encode() + data


def list_source(names: list[str]) -> str:
    quoted = ", ".join(f'"{n}"' for n in names)
    return ("/* Generated by firmware_hooks/fixed/hookgen.py: the functions made hook points. */\n"
            "#include <stddef.h>\n\n"
            f"const char *const fohook_instrument_names[] = {{{quoted or '0'}}};\n\n"
            f"size_t fohook_instrument_count(void)\n{{\n    return {len(names)};\n}}\n")


def generate(sources: list[Path], names: list[str], out_dir: Path, clang: str,
             flags: list[str]) -> dict[str, list[str]]:
    """Writes the rewritten sources and the list; returns {name: [file:line, ...]}."""
    found: dict[str, list[str]] = {n: [] for n in names}
    in_headers: dict[str, str] = {}
    outputs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for source in sources:
            out, depfile = out_dir / source.name, Path(tmp) / "deps.d"
            decls = _ast_decls(clang, source, flags, (depfile, out))
            points = find_hook_points(source, names, decls, in_headers)
            for p in points:
                found[p.name].append(f"{source}:{p.line}")
            outputs[out] = rewrite(source, points)
            outputs[out.with_suffix(out.suffix + ".d")] = depfile.read_bytes()
    missing = [n for n, where in found.items() if not where]
    for name in missing:
        if name in in_headers:
            raise HookGenError(
                f"HOOK_FUNCTIONS: '{name}' is defined in a header ({in_headers[name]}), not in "
                "a listed source; place FO_HOOK_POINT in it by hand")
    if missing:
        raise HookGenError(
            f"HOOK_FUNCTIONS: no definition of {', '.join(repr(n) for n in missing)} in "
            f"{', '.join(str(s) for s in sources)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, data in outputs.items():
        _write_if_changed(path, data)
    _write_if_changed(out_dir / "fohook_list.c", list_source(names).encode())
    return found


def _write_if_changed(path: Path, data: bytes) -> None:
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    flags: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, flags = argv[:at], argv[at + 1:]
    parser = argparse.ArgumentParser(prog="hookgen.py", description=__doc__.split("\n")[0])
    parser.add_argument("--functions", required=True, help="names, separated by spaces")
    parser.add_argument("--out-dir", required=True, type=Path)
    parser.add_argument("--clang", default="clang")
    parser.add_argument("--cc", help="the GCC that compiles the output: clang parses for its "
                        "target with its C library's headers")
    parser.add_argument("sources", nargs="+", type=Path)
    args = parser.parse_args(argv)
    names = list(dict.fromkeys(args.functions.split()))
    try:
        if args.cc:
            flags = [*_gcc_flags(args.cc), *flags]
        found = generate([s.resolve() for s in args.sources], names, args.out_dir,
                         args.clang, flags)
    except (HookGenError, OSError) as err:
        print(f"hookgen: {err}", file=sys.stderr)
        return 2
    for name, where in found.items():
        print(f"hookgen: {name}: hook point at {', '.join(where)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
