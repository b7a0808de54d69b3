"""The installed llama.cpp is the portable build set-up chose, not a CPU-tuned one smuggled in by a wheel cache."""

import importlib.util
import json
import platform
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("llama_build", ROOT / "scripts" / "llama_build.py")
assert spec is not None and spec.loader is not None
llama_build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(llama_build)

#: Instruction-set flags llama.cpp reports that lie above the portable x86-64 baseline.
ABOVE_BASELINE = re.compile(r"^(AVX512\w*|AMX\w*|AVX_VNNI|AVX_VNNI_INT8)$")


#: llama.cpp's name of an instruction set above the baseline -> the flag /proc/cpuinfo reports for it.
CPU_FLAG = {"AVX512": "avx512f", "AVX512_VBMI": "avx512vbmi", "AVX512_VNNI": "avx512_vnni",
            "AVX512_BF16": "avx512_bf16", "AMX_INT8": "amx_int8", "AVX_VNNI": "avx_vnni"}  # fmt: skip


def cpu_features(info: str) -> dict[str, bool]:
    """``llama_print_system_info()``'s ``NAME = 1`` pairs (CPU section)."""
    return {name: value == "1" for name, value in re.findall(r"([A-Z][A-Z0-9_]*) = (\d)", info)}


def test_installed_build_uses_no_instruction_set_outside_the_baseline():
    import llama_cpp

    # Setup
    marker = llama_build.marker_path()
    native = json.loads(marker.read_text())["native"] if marker.is_file() else llama_build.wants_native()
    # Run
    info = llama_cpp.llama_print_system_info().decode()
    features = cpu_features(info)
    # Assert
    assert features, f"no CPU features in llama_print_system_info(): {info!r}"
    if native:  # the user's own CPU is the baseline: the build may use only what this CPU reports
        flags = set(Path("/proc/cpuinfo").read_text().split())
        used = [name for name, on in features.items() if on and name in CPU_FLAG]
        assert all(CPU_FLAG[name] in flags for name in used), (used, "not all reported by /proc/cpuinfo")
        return
    above = sorted(name for name, on in features.items() if on and ABOVE_BASELINE.match(name))
    assert not above, (
        f"llama.cpp was built with {', '.join(above)}, above the portable baseline; it can crash on other CPUs "
        "(AMX: Illegal instruction). Rebuild with `make setup`, or opt in with CAUSALSYNTH_LLAMA_NATIVE=1."
    )
    if platform.machine().lower() in {"x86_64", "amd64"}:
        assert features.get("AVX2") and features.get("FMA") and features.get("F16C")  # x86-64-v3, chosen


def test_installed_build_is_the_one_setup_keyed_for_these_flags():
    # Setup
    marker = llama_build.marker_path()
    if not marker.is_file():
        pytest.fail(f"{marker} is missing: llama-cpp-python was not installed by scripts/llama_build.py (make setup)")
    # Run
    recorded = json.loads(marker.read_text())
    wanted = llama_build.cmake_args(llama_build.wants_native())
    # Assert
    assert recorded["cmake_args"] == wanted, (
        "the installed llama.cpp was built with other flags than this environment asks for; run `make setup`"
    )
    assert recorded["key"] == llama_build.build_key(wanted)


def test_other_flags_get_another_wheel_folder(monkeypatch, tmp_path):
    # Setup
    monkeypatch.setenv("CAUSALSYNTH_WHEELS", str(tmp_path))
    portable = llama_build.cmake_args(False, "x86_64")
    native = llama_build.cmake_args(True, "x86_64")
    # Run
    keys = {
        llama_build.build_key(portable),
        llama_build.build_key(native),
        llama_build.build_key(llama_build.cmake_args(False, "aarch64")),
    }
    # Assert
    assert len(keys) == 3  # a wheel built with native flags is never found under the portable key
    assert "-DGGML_NATIVE=OFF" in portable and "AMX_INT8=OFF" in portable and "AVX512=OFF" in portable
    assert llama_build.cmake_args(False, "aarch64") == "-DGGML_NATIVE=OFF"  # nothing x86-specific on ARM
    assert llama_build.wheel_dir() == tmp_path


def test_native_is_an_explicit_opt_in(monkeypatch):
    # Setup
    monkeypatch.delenv("CAUSALSYNTH_LLAMA_NATIVE", raising=False)
    # Run / Assert
    assert not llama_build.wants_native()
    monkeypatch.setenv("CAUSALSYNTH_LLAMA_NATIVE", "1")
    assert llama_build.wants_native()
    monkeypatch.setenv("CAUSALSYNTH_LLAMA_NATIVE", "0")
    assert not llama_build.wants_native()
