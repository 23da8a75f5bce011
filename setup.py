"""Build script. Package metadata lives in pyproject.toml; this file only adds the native extension
fhsdk._C (sources in csrc/, one op = header + cpu/ kernel + cuda/ kernel, bound in csrc/bindings.cpp).

* The C++ CPU kernels are always built (threaded with std::thread, GIL released).
* The CUDA kernels are compiled with nvcc whenever it is found (CUDA_HOME/bin/nvcc,
  /usr/local/cuda/bin/nvcc or PATH) and FHSDK_NO_CUDA is not set. The CUDA runtime is linked
  statically (``-cudart static``) so ``import fhsdk._C`` works on a machine without a GPU or driver;
  the CUDA entry points then raise a clear error instead.
* Environment knobs: FHSDK_NO_CUDA=1 (skip CUDA), FHSDK_CUDA_ARCHS="80;89;90" (SASS targets; PTX is
  always added for the highest one), NVCC=/path/to/nvcc.
"""

import os
import shutil
import subprocess
import sys

from pybind11.setup_helpers import Pybind11Extension
from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
CPU_SOURCES = [
    "csrc/bindings.cpp",
    "csrc/ops/cpu/resize_normalize_kernel.cpp",
    "csrc/ops/cpu/cosine_topk_kernel.cpp",
]
CUDA_SOURCES = [
    "csrc/ops/cuda/cuda_device.cu",
    "csrc/ops/cuda/resize_normalize_kernel.cu",
    "csrc/ops/cuda/cosine_topk_kernel.cu",
]
DEFAULT_ARCHS = "80;89;90"


def _log(msg):
    print(f"[fhsdk build] {msg}", file=sys.stderr, flush=True)


def find_nvcc():
    """Path of nvcc, or None (also None when FHSDK_NO_CUDA is set)."""
    if os.environ.get("FHSDK_NO_CUDA", "0") not in ("", "0"):
        _log("FHSDK_NO_CUDA is set: skipping the CUDA kernels (CPU kernels only).")
        return None
    candidates = [os.environ.get("NVCC")]
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home:
            candidates.append(os.path.join(home, "bin", "nvcc"))
    candidates.append(shutil.which("nvcc"))
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    _log("nvcc not found (set CUDA_HOME or NVCC): skipping the CUDA kernels (CPU kernels only).")
    return None


def cuda_home_of(nvcc):
    # /usr/local/bin/nvcc may be a wrapper script; `nvcc -v` is awkward, so look for the usual
    # layouts and fall back to /usr/local/cuda.
    real = os.path.realpath(nvcc)
    for home in (os.path.dirname(os.path.dirname(real)), os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if home and os.path.isfile(os.path.join(home, "include", "cuda_runtime.h")):
            return home
    raise RuntimeError(f"found nvcc at {nvcc} but no CUDA include directory; set CUDA_HOME")


class BuildExtWithCuda(build_ext):
    """Compiles csrc/ops/cuda/*.cu with nvcc into objects linked into fhsdk._C."""

    def build_extension(self, ext):
        nvcc = find_nvcc()
        if nvcc is not None:
            home = cuda_home_of(nvcc)
            objects = self._compile_cuda(nvcc, ext)
            ext.extra_objects = list(ext.extra_objects or []) + objects
            ext.define_macros = list(ext.define_macros or []) + [("FHSDK_WITH_CUDA", "1")]
            lib64 = os.path.join(home, "lib64")
            # Static CUDA runtime: no libcudart.so needed at import time; the driver (libcuda.so)
            # is only opened when a CUDA entry point is first called.
            ext.extra_link_args = list(ext.extra_link_args or []) + [
                os.path.join(lib64, "libcudart_static.a"),
                "-lrt",
                "-ldl",
                "-lpthread",
            ]
        super().build_extension(ext)

    def _compile_cuda(self, nvcc, ext):
        archs = [a.strip() for a in os.environ.get("FHSDK_CUDA_ARCHS", DEFAULT_ARCHS).split(";") if a.strip()]
        gencode = []
        for arch in archs:
            gencode += ["-gencode", f"arch=compute_{arch},code=sm_{arch}"]
        gencode += ["-gencode", f"arch=compute_{archs[-1]},code=compute_{archs[-1]}"]  # PTX for newer GPUs
        build_dir = os.path.join(self.build_temp, "cuda")
        os.makedirs(build_dir, exist_ok=True)
        objects = []
        for src in CUDA_SOURCES:
            obj = os.path.join(build_dir, os.path.basename(src) + ".o")
            deps = [
                src,
                "csrc/ops/resize_normalize.h",
                "csrc/ops/cosine_topk.h",
                "csrc/ops/cuda/cuda_check.cuh",
                "csrc/ops/cuda/cuda_device.h",
            ]
            if (
                self.force
                or not os.path.exists(obj)
                or any(os.path.getmtime(os.path.join(ROOT, d)) > os.path.getmtime(obj) for d in deps)
            ):
                cmd = [
                    nvcc,
                    "-c",
                    src,
                    "-o",
                    obj,
                    "-O3",
                    "-std=c++17",
                    "-Icsrc",
                    "-Xcompiler",
                    "-fPIC",
                    "-Xcompiler",
                    "-fvisibility=hidden",
                    "--expt-relaxed-constexpr",
                    "-cudart",
                    "static",
                ] + gencode
                _log("nvcc: " + " ".join(cmd[1:4]) + f" (archs {archs} + PTX)")
                subprocess.check_call(cmd, cwd=ROOT)
            objects.append(obj)
        _log(f"CUDA kernels compiled for sm_{', sm_'.join(archs)} + PTX compute_{archs[-1]}.")
        return objects


ext = Pybind11Extension(
    "fhsdk._C",
    sorted(CPU_SOURCES),
    include_dirs=["csrc"],
    cxx_std=17,
    # -O3 lets gcc vectorise the generic loops; AVX2/FMA/F16C code paths are compiled per function
    # with __attribute__((target)) and chosen at run time, so the wheel runs on any x86-64 CPU.
    extra_compile_args=["-O3", "-fvisibility=hidden"],
    extra_link_args=["-pthread"],
)

setup(ext_modules=[ext], cmdclass={"build_ext": BuildExtWithCuda})
