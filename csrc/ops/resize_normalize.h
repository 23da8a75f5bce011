// resize_normalize: crop + align + resize + normalise in one pass, producing NCHW network inputs.
//
// Form (a) "affine": a uint8 BGR HWC frame and one 2x3 matrix per face. The matrix maps OUTPUT pixel
//   coordinates to SOURCE (frame) coordinates, i.e. cv2.warpAffine's matrix with WARP_INVERSE_MAP;
//   pixel centres sit on integer coordinates (cv2's convention). Bilinear sampling; neighbours outside
//   the frame read as 0 (cv2.BORDER_CONSTANT, value 0).
//   out[n, c, y, x] = (sample(frame, M_n @ (x, y, 1))[src_c] - mean[c]) * scale[c],
//   src_c = 2 - c when swap_rb (BGR -> RGB) else c. mean/scale are in OUTPUT channel order.
// Form (b) "batch": float32 NCHW images resized bilinearly (align_corners=False, no antialias, as
//   torch.nn.functional.interpolate) to out_h x out_w, then (x - mean[c]) * scale[c].
//
// Pointers are raw; strides are in elements. Outputs are contiguous NCHW, float32 or float16.
#pragma once

#include <cstdint>

namespace fhsdk {
namespace ops {

enum class OutDType : int { kFloat32 = 0, kFloat16 = 1 };

struct AffineArgs {
  const std::uint8_t* frame;  // H x W x 3, pixel stride 3 bytes
  std::int64_t height, width;
  std::int64_t row_stride;    // bytes between rows (>= 3 * width)
  const float* affines;       // N x 2 x 3, output -> source
  std::int64_t num_faces;
  std::int64_t out_h, out_w;
  float mean[3], scale[3];
  bool swap_rb;
  OutDType out_dtype;
  void* out;                  // N x 3 x out_h x out_w
};

struct BatchArgs {
  const float* images;        // B x C x H x W
  std::int64_t batch, channels, in_h, in_w;
  std::int64_t stride_n, stride_c, stride_h;  // element strides; the W stride must be 1
  std::int64_t out_h, out_w;
  const float* mean;          // C values (host memory)
  const float* scale;         // C values (host memory)
  OutDType out_dtype;
  void* out;                  // B x C x out_h x out_w
};

// CPU kernels (csrc/ops/cpu/resize_normalize_kernel.cpp); num_threads <= 0 means "all cores".
void resize_normalize_affine_cpu(const AffineArgs& args, int num_threads);
void resize_normalize_batch_cpu(const BatchArgs& args, int num_threads);

// CUDA kernels (csrc/ops/cuda/resize_normalize_kernel.cu): every pointer is device memory except
// BatchArgs::mean/scale, which are read on the host and passed by value (at most 16 channels);
// `stream` is a cudaStream_t. The launch is asynchronous. Throws std::runtime_error on CUDA errors.
void resize_normalize_affine_cuda(const AffineArgs& args, void* stream);
void resize_normalize_batch_cuda(const BatchArgs& args, void* stream);

}  // namespace ops
}  // namespace fhsdk
