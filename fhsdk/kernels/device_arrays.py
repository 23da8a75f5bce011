"""Device arrays from any framework (torch, CuPy, DLPack, __cuda_array_interface__) as pointers the kernels take."""

from __future__ import annotations

import numpy as np
import torch

from fhsdk.errors import InvalidInputError

_KDL_CUDA = 2  # DLPack device type of CUDA memory


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "is_cuda")


def _on_cuda(x) -> bool:
    """True for arrays living in CUDA device memory (torch, CuPy, DLPack, __cuda_array_interface__)."""
    if type(x) is np.ndarray:
        return False
    if _is_torch(x):
        return bool(x.is_cuda)
    if hasattr(x, "__cuda_array_interface__"):
        return True
    if hasattr(x, "__dlpack_device__"):
        try:
            return int(x.__dlpack_device__()[0]) == _KDL_CUDA
        except Exception:  # noqa: BLE001 - a foreign object whose DLPack query fails is not ours
            return False
    return False


class _CudaArray:
    """A contiguous device array: pointer, shape, dtype, device index and the framework owning it."""

    def __init__(self, x, name):
        self.framework = "cupy" if type(x).__module__.startswith("cupy") else "torch"
        if self.framework == "cupy":
            import cupy

            x = cupy.ascontiguousarray(x)
            self.ptr, self.device = int(x.data.ptr), int(x.device.id)
            self.dtype = np.dtype(x.dtype)
        else:
            if not _is_torch(x):
                try:
                    x = torch.from_dlpack(x) if hasattr(x, "__dlpack__") else torch.as_tensor(x, device="cuda")
                except Exception as exc:  # noqa: BLE001
                    raise InvalidInputError(
                        f"{name}: cannot read this CUDA array ({type(x).__name__}): {exc}; pass a torch "
                        "CUDA tensor or a CuPy array"
                    ) from exc
            x = x.contiguous()
            self.ptr, self.device = int(x.data_ptr()), int(x.device.index or 0)
            self.dtype = np.dtype(str(x.dtype).replace("torch.", ""))
        self.obj = x
        self.shape = tuple(int(s) for s in x.shape)

    def empty(self, shape, dtype):
        """A new contiguous array of the same framework on the same device."""
        if self.framework == "cupy":
            import cupy

            with cupy.cuda.Device(self.device):
                return cupy.empty(shape, dtype=dtype)
        return torch.empty(shape, dtype=getattr(torch, np.dtype(dtype).name), device=f"cuda:{self.device}")

    def from_host(self, array):
        """Copies a small host array (e.g. affine matrices) to this array's device."""
        if self.framework == "cupy":
            import cupy

            with cupy.cuda.Device(self.device):
                return cupy.asarray(array)
        return torch.as_tensor(array, device=f"cuda:{self.device}")

    def launch_stream(self, stream, *allocated):
        """The cudaStream_t to launch on. With `stream=` given on torch memory, that stream first
        waits for the current one (where inputs and `allocated` buffers were made), and every
        buffer is marked used on it (`record_stream`), so the caching allocator cannot hand the
        memory to other work before the kernel is done with it."""
        handle = self.stream(stream)
        if stream is None or self.framework != "torch":
            return handle
        current = torch.cuda.current_stream(self.device)
        if handle == current.cuda_stream:
            return handle
        target = (
            stream if isinstance(stream, torch.cuda.Stream) else torch.cuda.ExternalStream(handle, device=self.device)
        )
        target.wait_stream(current)
        for buffer in (self.obj, *allocated):
            if hasattr(buffer, "record_stream"):
                buffer.record_stream(target)
        return handle

    def stream(self, stream):
        """The cudaStream_t to launch on: `stream` if given, else the framework's current stream."""
        if stream is not None:
            for attr in ("cuda_stream", "ptr"):  # torch.cuda.Stream, cupy.cuda.Stream
                if hasattr(stream, attr):
                    return int(getattr(stream, attr))
            return int(stream)
        if self.framework == "cupy":
            import cupy

            return int(cupy.cuda.get_current_stream().ptr)
        return int(torch.cuda.current_stream(self.device).cuda_stream)


def _ptr(a) -> int:
    if hasattr(a, "data_ptr"):
        return int(a.data_ptr())
    return int(a.data.ptr)
