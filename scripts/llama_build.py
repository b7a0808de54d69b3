"""Build (once) and install a portable llama-cpp-python wheel, keyed by its build flags.

llama-cpp-python ships only an sdist, so pip compiles it, and a plain build tunes itself to the CPU it was built on
(``-march=native``). Such a build dies with ``Illegal instruction`` on another CPU, and on CPUs that report AMX it
takes ggml's AMX path, which crashed on this project's machines. So set-up builds it deliberately:

* x86-64: the x86-64-v3 baseline (SSE4.2, AVX, AVX2, FMA, F16C, BMI2), no AVX-512, no AMX, ``GGML_NATIVE=OFF``;
* other architectures (ARM): ``GGML_NATIVE=OFF`` and nothing x86-specific;
* ``CAUSALSYNTH_LLAMA_NATIVE=1``: the native build, at the user's own risk.

The wheel is kept under ``$CAUSALSYNTH_WHEELS`` (default ``~/.cache/causalsynth/wheels``) in a folder named by a hash
of the version, the flags, the architecture and the Python tag, so a set-up with other flags builds anew and pip's
own wheel cache (keyed by the sdist only, blind to ``CMAKE_ARGS``) is never used for it (``--no-cache-dir``). The
venv gets a marker, ``causalsynth-llama-build.json``, naming the flags it was installed with; the guard test reads it.

Standard library only: it runs before the project is installed. ``python scripts/llama_build.py`` prints the wheel's
path and installs it into the running interpreter's environment unless it is already there with the same key.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

VERSION = "0.3.36"
MARKER = "causalsynth-llama-build.json"

#: The portable x86-64 baseline: x86-64-v3, which every x86-64 CPU of the last decade (Haswell, Zen 1 and later) has.
X86_PORTABLE = (
    "-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON "
    "-DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF "
    "-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
)
OTHER_PORTABLE = "-DGGML_NATIVE=OFF"
NATIVE = "-DGGML_NATIVE=ON"
#: The instruction sets a portable x86-64 build may report in ``llama_print_system_info()``.
X86_BASELINE = frozenset({"SSE3", "SSSE3", "AVX", "AVX2", "F16C", "FMA", "BMI2"})


def wants_native() -> bool:
    """Whether the user opted into a native build (``CAUSALSYNTH_LLAMA_NATIVE=1``)."""
    return os.environ.get("CAUSALSYNTH_LLAMA_NATIVE", "").strip().lower() in {"1", "true", "yes", "on"}


def cmake_args(native: bool, machine: str | None = None) -> str:
    """The CMake flags for this architecture."""
    if native:
        return NATIVE
    machine = (machine or platform.machine()).lower()
    return X86_PORTABLE if machine in {"x86_64", "amd64"} else OTHER_PORTABLE


def build_key(args: str) -> str:
    """The wheel folder's name: a hash of everything that changes the binary."""
    tag = f"{sys.implementation.cache_tag}-{sysconfig.get_platform()}"
    raw = json.dumps([VERSION, args, platform.machine(), tag])
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def wheel_dir() -> Path:
    """Where built wheels are kept."""
    if env := os.environ.get("CAUSALSYNTH_WHEELS"):
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "causalsynth" / "wheels"


def built_wheel(args: str) -> Path:
    """The wheel for these flags, compiled first if no earlier set-up left one."""
    folder = wheel_dir() / f"llama-cpp-python-{VERSION}-{build_key(args)}"
    found = sorted(folder.glob("llama_cpp_python-*.whl"))
    if found:
        return found[-1]
    folder.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CMAKE_ARGS=args, FORCE_CMAKE="1")
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-cache-dir"]
        cmd += ["--no-binary", "llama-cpp-python", "-w", tmp, f"llama-cpp-python=={VERSION}"]
        print(f"compiling llama-cpp-python {VERSION} with CMAKE_ARGS={args!r} (a few minutes, once)", file=sys.stderr)
        subprocess.run(cmd, env=env, check=True)
        wheels = list(Path(tmp).glob("llama_cpp_python-*.whl"))
        if len(wheels) != 1:
            raise SystemExit(f"error: pip wheel left {len(wheels)} llama-cpp-python wheels in {tmp}")
        Path(tmp).rename(folder)  # atomic: a killed build leaves no half folder under the final name
    return folder / wheels[0].name


def marker_path() -> Path:
    """The marker in the running environment's site-packages."""
    return Path(sysconfig.get_paths()["purelib"]) / MARKER


def installed_key() -> str | None:
    """The build key the environment's llama-cpp-python was installed with, if this script installed it."""
    try:
        return str(json.loads(marker_path().read_text())["key"])
    except (OSError, ValueError, KeyError):
        return None


def main() -> int:
    """Build if needed, install if the environment has another build, print the wheel's path."""
    native = wants_native()
    args = cmake_args(native)
    wheel = built_wheel(args)
    key = build_key(args)
    if installed_key() != key:
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-cache-dir", "--force-reinstall"]
        subprocess.run([*cmd, str(wheel)], check=True)
        marker = {"version": VERSION, "key": key, "cmake_args": args, "native": native, "machine": platform.machine()}
        marker_path().write_text(json.dumps(marker, indent=2) + "\n")
    print(wheel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
