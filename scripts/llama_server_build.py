"""Build (once) llama.cpp's own ``llama-server``, portable, from the llama.cpp that llama-cpp-python vendors.

``llama_cpp.server`` (llama-cpp-python's server) answers one request at a time: it holds a lock around its single
model. llama.cpp's ``llama-server`` has parallel slots (``--parallel N``) and continuous batching, and caches each
slot's prompt, which is what a deployment's server does (vLLM and TGI alike). It is not on PyPI as a binary, so
set-up compiles the ``tools/server`` target of the llama.cpp inside the same llama-cpp-python sdist that
``scripts/llama_build.py`` builds the Python binding from (same version, same portable flags, no web UI, no
OpenSSL, no downloads), and keeps the binary under ``$CAUSALSYNTH_WHEELS/llama-server-<version>-<key>/``, keyed like
the wheel: a second set-up finds it and compiles nothing.

Standard library only. ``python scripts/llama_server_build.py`` prints the binary's path (building it first if
needed); ``--path`` prints where it would be without building (the tests read it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llama_build import VERSION, build_key, cmake_args, wants_native, wheel_dir  # noqa: E402

#: What the server needs and nothing else: no tests, examples, web UI (it would be downloaded), TLS or curl.
SERVER_ARGS = (
    "-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON "
    "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF "
    "-DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF"
)


def server_dir(args: str) -> Path:
    """The folder of the binary built with these ggml flags."""
    return wheel_dir() / f"llama-server-{VERSION}-{build_key(args + ' ' + SERVER_ARGS)}"


def build(args: str) -> Path:
    """The ``llama-server`` binary for these flags, compiled first if no earlier set-up left one."""
    folder = server_dir(args)
    binary = folder / "llama-server"
    if binary.is_file():
        return binary
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        work = Path(tmp)
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
        subprocess.run([*cmd, "--no-cache-dir", "-d", str(work), f"llama-cpp-python=={VERSION}"], check=True)
        sdists = list(work.glob("llama_cpp_python-*.tar.gz"))
        if len(sdists) != 1:
            raise SystemExit(f"error: pip download left {len(sdists)} llama-cpp-python sdists in {work}")
        with tarfile.open(sdists[0]) as tar:
            tar.extractall(work / "src", filter="data")
        source = next((work / "src").glob("llama_cpp_python-*")) / "vendor" / "llama.cpp"
        print(f"compiling llama-server (llama.cpp of llama-cpp-python {VERSION}) with {args!r} (minutes, once)",
              file=sys.stderr)  # fmt: skip
        build_dir = work / "build"
        subprocess.run(["cmake", "-S", str(source), "-B", str(build_dir), *args.split(), *SERVER_ARGS.split()],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        jobs = str(max(1, min(4, len(os.sched_getaffinity(0)))))
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "llama-server", "-j", jobs], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        staged = work / "staged"
        staged.mkdir()
        shutil.copy2(build_dir / "bin" / "llama-server", staged / "llama-server")
        staged.rename(folder)  # atomic: a killed build leaves no half folder under the final name
    return binary


def main() -> int:
    """Print the binary's path (``--path``: without building it)."""
    args = cmake_args(wants_native())
    if "--path" in sys.argv[1:]:
        print(server_dir(args) / "llama-server")
        return 0
    print(build(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
