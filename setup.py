"""Build steps pyproject.toml cannot declare: the C parts built with the package."""

import importlib.util
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


# --- hook libraries (hook engineer): libfreeoffload_hook.so and libfreeoffload_store.so ------
def _hook_build_module():
    path = HERE / "firmware_hooks" / "_build.py"
    spec = importlib.util.spec_from_file_location("_fohook_build", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithHook(build_py):
    """build_py, then the hook's shared libraries into freeoffload/firmware_hooks/_lib."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            out = HERE / "firmware_hooks" / "_lib"
        else:
            out = Path(self.build_lib) / "freeoffload" / "firmware_hooks" / "_lib"
        for built in _hook_build_module().build_libraries(out, root=HERE):
            self.announce(f"built {built}", level=2)


# --- the VM's cffi extension (vm engineer): freeoffload.offload_vm._fovm --------------------
CFFI_MODULES = ["offload_vm/_ffi_build.py:ffibuilder"]

# --- the YAML loader's C pass (yaml engineer): freeoffload._yamlfast, over libyaml ----------
# optional: without libyaml's headers the build goes on and yamlfile.py uses its Python loader.
YAML_EXTENSION = Extension("freeoffload._yamlfast", ["freeoffload/_yamlfast.c"],
                           libraries=["yaml"], optional=True)

setup(cmdclass={"build_py": BuildPyWithHook}, cffi_modules=CFFI_MODULES,
      ext_modules=[YAML_EXTENSION])
