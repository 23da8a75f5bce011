// The single registration point of fhsdk._C. Each op is bound twice:
//   *_cpu  takes NumPy arrays (validated here, kernels run with the GIL released);
//   *_cuda takes raw device pointers (ints), shapes, strides and a cudaStream_t (int), so TensorRT
//          buffers, CuPy arrays and torch tensors can all feed it (fhsdk/kernels.py extracts them).
// The CUDA entry points exist in every build; without CUDA support compiled in, or without a usable
// GPU/driver at run time, they raise RuntimeError saying why.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "ops/cosine_topk.h"
#include "ops/cpu/parallel.h"
#include "ops/resize_normalize.h"
#ifdef FHSDK_WITH_CUDA
#include "ops/cuda/cuda_device.h"
#endif

namespace py = pybind11;
using fhsdk::ops::OutDType;

namespace {

bool is_float(const py::array& a, int bytes) { return a.dtype().kind() == 'f' && a.itemsize() == bytes; }

void require(bool ok, const std::string& msg) {
  if (!ok) throw py::value_error(msg);
}

void require_c_contiguous(const py::array& a, const char* name) {
  require((a.flags() & py::array::c_style) != 0, std::string(name) + " must be C-contiguous");
}

OutDType out_dtype_of(const py::array& out) {
  if (is_float(out, 4)) return OutDType::kFloat32;
  if (is_float(out, 2)) return OutDType::kFloat16;
  throw py::value_error("out must be float32 or float16");
}

OutDType out_dtype_from_name(const std::string& name) {
  if (name == "float32") return OutDType::kFloat32;
  if (name == "float16") return OutDType::kFloat16;
  throw py::value_error("out_dtype must be 'float32' or 'float16', got '" + name + "'");
}

// ---- CPU --------------------------------------------------------------------------------------

void resize_normalize_affine_cpu(const py::array& frame, const py::array& affines, const std::array<float, 3>& mean,
                                 const std::array<float, 3>& scale, bool swap_rb, py::array& out, int num_threads) {
  require(frame.dtype().is(py::dtype::of<std::uint8_t>()) && frame.ndim() == 3 && frame.shape(2) == 3,
          "frame must be a uint8 H x W x 3 array");
  require(frame.strides(2) == 1 && frame.strides(1) == 3, "frame pixels must be packed (pixel stride 3 bytes)");
  require(affines.dtype().is(py::dtype::of<float>()) && affines.ndim() == 3 && affines.shape(1) == 2 &&
              affines.shape(2) == 3,
          "affines must be a float32 N x 2 x 3 array");
  require_c_contiguous(affines, "affines");
  require(out.ndim() == 4 && out.shape(0) == affines.shape(0) && out.shape(1) == 3, "out must be N x 3 x H x W");
  require_c_contiguous(out, "out");
  require(out.writeable(), "out must be writeable");
  fhsdk::ops::AffineArgs a{};
  a.frame = static_cast<const std::uint8_t*>(frame.data());
  a.height = frame.shape(0);
  a.width = frame.shape(1);
  a.row_stride = frame.strides(0);
  a.affines = static_cast<const float*>(affines.data());
  a.num_faces = affines.shape(0);
  a.out_h = out.shape(2);
  a.out_w = out.shape(3);
  for (int c = 0; c < 3; ++c) {
    a.mean[c] = mean[c];
    a.scale[c] = scale[c];
  }
  a.swap_rb = swap_rb;
  a.out_dtype = out_dtype_of(out);
  a.out = out.mutable_data();
  py::gil_scoped_release release;
  fhsdk::ops::resize_normalize_affine_cpu(a, num_threads);
}

void resize_normalize_batch_cpu(const py::array& images, const std::vector<float>& mean,
                                const std::vector<float>& scale, py::array& out, int num_threads) {
  require(is_float(images, 4) && images.ndim() == 4, "images must be a float32 B x C x H x W array");
  require_c_contiguous(images, "images");
  const auto C = images.shape(1);
  require(std::int64_t(mean.size()) == C && std::int64_t(scale.size()) == C, "mean and scale need one value per channel");
  require(out.ndim() == 4 && out.shape(0) == images.shape(0) && out.shape(1) == C, "out must be B x C x H x W");
  require_c_contiguous(out, "out");
  require(out.writeable(), "out must be writeable");
  fhsdk::ops::BatchArgs a{};
  a.images = static_cast<const float*>(images.data());
  a.batch = images.shape(0);
  a.channels = C;
  a.in_h = images.shape(2);
  a.in_w = images.shape(3);
  a.stride_n = C * a.in_h * a.in_w;
  a.stride_c = a.in_h * a.in_w;
  a.stride_h = a.in_w;
  a.out_h = out.shape(2);
  a.out_w = out.shape(3);
  a.mean = mean.data();
  a.scale = scale.data();
  a.out_dtype = out_dtype_of(out);
  a.out = out.mutable_data();
  require(a.batch == 0 || (a.in_h > 0 && a.in_w > 0), "images must have non-zero height and width");
  py::gil_scoped_release release;
  fhsdk::ops::resize_normalize_batch_cpu(a, num_threads);
}

py::tuple cosine_topk_cpu(const py::array& queries, const py::array& gallery, std::int64_t k, bool normalize,
                          int num_threads) {
  require(is_float(queries, 4) && queries.ndim() == 2, "queries must be a float32 B x D array");
  require((is_float(gallery, 4) || is_float(gallery, 2)) && gallery.ndim() == 2,
          "gallery must be a float32 or float16 N x D array");
  require_c_contiguous(queries, "queries");
  require_c_contiguous(gallery, "gallery");
  require(queries.shape(1) == gallery.shape(1), "queries and gallery must have the same D");
  require(k >= 1, "k must be >= 1");
  const std::int64_t B = queries.shape(0), N = gallery.shape(0), kk = std::min(k, N);
  py::array_t<std::int64_t> indices({B, kk});
  py::array_t<float> scores({B, kk});
  fhsdk::ops::TopkArgs a{};
  a.queries = static_cast<const float*>(queries.data());
  a.num_queries = B;
  a.dim = queries.shape(1);
  a.query_stride = a.dim;
  a.gallery = gallery.data();
  a.gallery_dtype = is_float(gallery, 2) ? fhsdk::ops::GalleryDType::kFloat16 : fhsdk::ops::GalleryDType::kFloat32;
  a.num_gallery = N;
  a.gallery_stride = a.dim;
  a.k = k;
  a.normalize = normalize;
  a.out_indices = indices.mutable_data();
  a.out_scores = scores.mutable_data();
  {
    py::gil_scoped_release release;
    fhsdk::ops::cosine_topk_cpu(a, num_threads);
  }
  return py::make_tuple(indices, scores);
}

// ---- CUDA -------------------------------------------------------------------------------------

bool cuda_compiled() {
#ifdef FHSDK_WITH_CUDA
  return true;
#else
  return false;
#endif
}

// Empty when CUDA kernels can run here, else why not.
std::string cuda_unavailable_reason() {
#ifdef FHSDK_WITH_CUDA
  std::string why;
  if (fhsdk::cuda::device_count(&why) > 0) return "";
  return "no usable CUDA device (" + why + ")";
#else
  return "fhsdk._C was built without CUDA kernels (nvcc was not found or FHSDK_NO_CUDA was set at build time)";
#endif
}

void require_cuda() {
  const std::string why = cuda_unavailable_reason();
  if (!why.empty()) throw std::runtime_error("fhsdk CUDA kernels unavailable: " + why);
}

// Kernels launch on the calling thread's current device of this module's (static) CUDA runtime,
// which is separate from torch's/CuPy's runtime state: select the inputs' device explicitly.
void set_device(int device) {
#ifdef FHSDK_WITH_CUDA
  fhsdk::cuda::set_device(device);
#else
  (void)device;
#endif
}

void* as_ptr(std::uintptr_t p) { return reinterpret_cast<void*>(p); }

void resize_normalize_affine_cuda(std::uintptr_t frame, std::int64_t height, std::int64_t width,
                                  std::int64_t row_stride, std::uintptr_t affines, std::int64_t num_faces,
                                  std::int64_t out_h, std::int64_t out_w, const std::array<float, 3>& mean,
                                  const std::array<float, 3>& scale, bool swap_rb, const std::string& out_dtype,
                                  std::uintptr_t out, std::uintptr_t stream, int device) {
  require_cuda();
  set_device(device);
  fhsdk::ops::AffineArgs a{};
  a.frame = static_cast<const std::uint8_t*>(as_ptr(frame));
  a.height = height;
  a.width = width;
  a.row_stride = row_stride;
  a.affines = static_cast<const float*>(as_ptr(affines));
  a.num_faces = num_faces;
  a.out_h = out_h;
  a.out_w = out_w;
  for (int c = 0; c < 3; ++c) {
    a.mean[c] = mean[c];
    a.scale[c] = scale[c];
  }
  a.swap_rb = swap_rb;
  a.out_dtype = out_dtype_from_name(out_dtype);
  a.out = as_ptr(out);
#ifdef FHSDK_WITH_CUDA
  py::gil_scoped_release release;
  fhsdk::ops::resize_normalize_affine_cuda(a, as_ptr(stream));
#else
  (void)stream;
#endif
}

void resize_normalize_batch_cuda(std::uintptr_t images, std::int64_t batch, std::int64_t channels, std::int64_t in_h,
                                 std::int64_t in_w, std::int64_t stride_n, std::int64_t stride_c,
                                 std::int64_t stride_h, std::int64_t out_h, std::int64_t out_w,
                                 const std::vector<float>& mean, const std::vector<float>& scale,
                                 const std::string& out_dtype, std::uintptr_t out, std::uintptr_t stream, int device) {
  require_cuda();
  set_device(device);
  require(std::int64_t(mean.size()) == channels && std::int64_t(scale.size()) == channels,
          "mean and scale need one value per channel");
  fhsdk::ops::BatchArgs a{};
  a.images = static_cast<const float*>(as_ptr(images));
  a.batch = batch;
  a.channels = channels;
  a.in_h = in_h;
  a.in_w = in_w;
  a.stride_n = stride_n;
  a.stride_c = stride_c;
  a.stride_h = stride_h;
  a.out_h = out_h;
  a.out_w = out_w;
  a.mean = mean.data();
  a.scale = scale.data();
  a.out_dtype = out_dtype_from_name(out_dtype);
  a.out = as_ptr(out);
#ifdef FHSDK_WITH_CUDA
  py::gil_scoped_release release;
  fhsdk::ops::resize_normalize_batch_cuda(a, as_ptr(stream));
#else
  (void)stream;
#endif
}

void cosine_topk_cuda(std::uintptr_t queries, std::int64_t num_queries, std::int64_t dim, std::int64_t query_stride,
                      std::uintptr_t gallery, const std::string& gallery_dtype, std::int64_t num_gallery,
                      std::int64_t gallery_stride, std::int64_t k, bool normalize, std::uintptr_t out_indices,
                      std::uintptr_t out_scores, std::uintptr_t stream, int device) {
  require_cuda();
  set_device(device);
  require(k >= 1, "k must be >= 1");
  require(gallery_dtype == "float32" || gallery_dtype == "float16", "gallery_dtype must be 'float32' or 'float16'");
  fhsdk::ops::TopkArgs a{};
  a.queries = static_cast<const float*>(as_ptr(queries));
  a.num_queries = num_queries;
  a.dim = dim;
  a.query_stride = query_stride;
  a.gallery = as_ptr(gallery);
  a.gallery_dtype =
      gallery_dtype == "float16" ? fhsdk::ops::GalleryDType::kFloat16 : fhsdk::ops::GalleryDType::kFloat32;
  a.num_gallery = num_gallery;
  a.gallery_stride = gallery_stride;
  a.k = std::min(k, num_gallery);
  a.normalize = normalize;
  a.out_indices = static_cast<std::int64_t*>(as_ptr(out_indices));
  a.out_scores = static_cast<float*>(as_ptr(out_scores));
#ifdef FHSDK_WITH_CUDA
  py::gil_scoped_release release;
  fhsdk::ops::cosine_topk_cuda(a, as_ptr(stream));
#else
  (void)stream;
#endif
}

void cuda_synchronize(std::uintptr_t stream, int device) {
  require_cuda();
  set_device(device);
#ifdef FHSDK_WITH_CUDA
  py::gil_scoped_release release;
  fhsdk::cuda::synchronize(as_ptr(stream));
#else
  (void)stream;
#endif
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "fhsdk native kernels: resize_normalize and cosine_topk (C++ threaded CPU and CUDA).";
  m.def("default_num_threads", &fhsdk::cpu::default_num_threads,
        "Threads the CPU kernels use by default (affinity mask, or FHSDK_NUM_THREADS).");

  m.def("resize_normalize_affine_cpu", &resize_normalize_affine_cpu, py::arg("frame"), py::arg("affines"),
        py::arg("mean"), py::arg("scale"), py::arg("swap_rb"), py::arg("out"), py::arg("num_threads") = 0,
        "Form (a): uint8 BGR HWC frame + N x 2 x 3 output->source affines -> out (N x 3 x S x S, float32/16).");
  m.def("resize_normalize_batch_cpu", &resize_normalize_batch_cpu, py::arg("images"), py::arg("mean"),
        py::arg("scale"), py::arg("out"), py::arg("num_threads") = 0,
        "Form (b): float32 NCHW images -> bilinear (align_corners=False) resize + normalise into out.");
  m.def("cosine_topk_cpu", &cosine_topk_cpu, py::arg("queries"), py::arg("gallery"), py::arg("k"),
        py::arg("normalize") = false, py::arg("num_threads") = 0,
        "Top-min(k, N) gallery rows per query by dot product -> (int64 indices, float32 scores), B x min(k, N).");

  m.def("cuda_compiled", &cuda_compiled, "True when the CUDA kernels were compiled into this module.");
  m.def("cuda_unavailable_reason", &cuda_unavailable_reason,
        "Empty string when the CUDA kernels can run here, else the reason they cannot.");
#ifdef FHSDK_WITH_CUDA
  m.def("cuda_runtime_version", &fhsdk::cuda::runtime_version, "CUDA runtime version built against.");
#endif
  m.def("resize_normalize_affine_cuda", &resize_normalize_affine_cuda, py::arg("frame"), py::arg("height"),
        py::arg("width"), py::arg("row_stride"), py::arg("affines"), py::arg("num_faces"), py::arg("out_h"),
        py::arg("out_w"), py::arg("mean"), py::arg("scale"), py::arg("swap_rb"), py::arg("out_dtype"), py::arg("out"),
        py::arg("stream") = 0, py::arg("device") = 0, "Form (a) on device pointers; asynchronous on `stream`.");
  m.def("resize_normalize_batch_cuda", &resize_normalize_batch_cuda, py::arg("images"), py::arg("batch"),
        py::arg("channels"), py::arg("in_h"), py::arg("in_w"), py::arg("stride_n"), py::arg("stride_c"),
        py::arg("stride_h"), py::arg("out_h"), py::arg("out_w"), py::arg("mean"), py::arg("scale"),
        py::arg("out_dtype"), py::arg("out"), py::arg("stream") = 0, py::arg("device") = 0,
        "Form (b) on device pointers (element strides, W stride 1); asynchronous on `stream`.");
  m.def("cosine_topk_cuda", &cosine_topk_cuda, py::arg("queries"), py::arg("num_queries"), py::arg("dim"),
        py::arg("query_stride"), py::arg("gallery"), py::arg("gallery_dtype"), py::arg("num_gallery"),
        py::arg("gallery_stride"), py::arg("k"), py::arg("normalize"), py::arg("out_indices"), py::arg("out_scores"),
        py::arg("stream") = 0, py::arg("device") = 0, "cosine_topk on device pointers; outputs B x min(k, N); asynchronous on `stream`.");
  m.def("cuda_synchronize", &cuda_synchronize, py::arg("stream") = 0, py::arg("device") = 0, "cudaStreamSynchronize(stream).");
}
