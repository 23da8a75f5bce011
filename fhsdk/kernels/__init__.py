"""Python front of the native kernels in fhsdk._C (csrc/ops/): validation and dispatch.

Ops
    resize_normalize_affine  crop + align + resize + normalise faces straight from a BGR frame
    resize_normalize_batch   resize a float32 NCHW batch (bilinear, align_corners=False) + normalise
    cosine_topk              top-k gallery rows per query by cosine (dot product) similarity

Backends (``backend=``)
    "auto"       CUDA when the inputs live on a GPU, else the C++ CPU kernel, else "reference"
    "cpu"        the threaded C++ kernel; NumPy arrays (or CPU torch tensors) in, NumPy arrays out
    "cuda"       the CUDA kernel; inputs are torch CUDA tensors, CuPy arrays, or any object exposing
                 ``__cuda_array_interface__`` or DLPack; outputs are allocated by the input's
                 framework (torch for anything that is not CuPy) on the input's device, and the
                 kernel runs asynchronously on that framework's current stream (or ``stream=``:
                 it waits for the current stream first, and every torch buffer it touches is
                 marked ``record_stream`` on it; results are produced on that stream).
                 ``cosine_topk`` on CUDA is a matrix product per gallery tile (cuBLAS through
                 torch) plus a top-k (``cosine_topk_gemm``), not a kernel of csrc/
    "reference"  plain NumPy (fhsdk/kernels_reference.py), float64 arithmetic, for tests
"""

from fhsdk.kernels.arguments import BACKENDS
from fhsdk.kernels.native import cuda_available, cuda_unavailable_reason, native_available
from fhsdk.kernels.resize import resize_normalize_affine, resize_normalize_batch
from fhsdk.kernels.topk import cosine_topk, cosine_topk_gemm

__all__ = [
    "BACKENDS",
    "native_available",
    "cuda_available",
    "cuda_unavailable_reason",
    "resize_normalize_affine",
    "resize_normalize_batch",
    "cosine_topk",
    "cosine_topk_gemm",
]
