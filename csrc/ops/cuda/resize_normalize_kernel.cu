// CUDA kernels of resize_normalize (see ../resize_normalize.h): one thread per output pixel, same
// arithmetic as cpu/resize_normalize_kernel.cpp so the two can be compared element by element.
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "ops/cuda/cuda_check.cuh"
#include "ops/resize_normalize.h"

namespace fhsdk {
namespace ops {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxChannels = 16;

__device__ __forceinline__ void store(float* out, long long i, float v) { out[i] = v; }
__device__ __forceinline__ void store(__half* out, long long i, float v) { out[i] = __float2half_rn(v); }

template <typename OutT>
__global__ void affine_kernel(AffineArgs a, OutT* __restrict__ out) {
  const long long plane = a.out_h * a.out_w;
  const long long total = a.num_faces * plane;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
       i += (long long)gridDim.x * blockDim.x) {
    const long long n = i / plane, pix = i % plane;
    const long long y = pix / a.out_w, x = pix % a.out_w;
    const float* m = a.affines + 6 * n;
    // Same coordinate arithmetic as the CPU kernel: row origin in double, float step per pixel.
    const float sx = float(double(m[1]) * double(y) + double(m[2])) + m[0] * float(x);
    const float sy = float(double(m[4]) * double(y) + double(m[5])) + m[3] * float(x);
    float v[3] = {0.f, 0.f, 0.f};
    if (sx >= -1.f && sy >= -1.f && sx < float(a.width) && sy < float(a.height)) {
      const float fx0 = floorf(sx), fy0 = floorf(sy);
      const float fx = sx - fx0, fy = sy - fy0;
      const long long x0 = (long long)fx0, y0 = (long long)fy0;
      const float wx[2] = {1.f - fx, fx}, wy[2] = {1.f - fy, fy};
#pragma unroll
      for (int dy = 0; dy < 2; ++dy) {
        const long long yy = y0 + dy;
        if (yy < 0 || yy >= a.height) continue;
#pragma unroll
        for (int dx = 0; dx < 2; ++dx) {
          const long long xx = x0 + dx;
          if (xx < 0 || xx >= a.width) continue;
          const std::uint8_t* p = a.frame + yy * a.row_stride + xx * 3;
          const float w = wx[dx] * wy[dy];
          v[0] += w * float(__ldg(p));
          v[1] += w * float(__ldg(p + 1));
          v[2] += w * float(__ldg(p + 2));
        }
      }
    }
    const int s0 = a.swap_rb ? 2 : 0, s2 = a.swap_rb ? 0 : 2;
    OutT* o = out + n * 3 * plane + pix;
    store(o, 0, (v[s0] - a.mean[0]) * a.scale[0]);
    store(o, plane, (v[1] - a.mean[1]) * a.scale[1]);
    store(o, 2 * plane, (v[s2] - a.mean[2]) * a.scale[2]);
  }
}

struct ChannelNorm {
  float mean[kMaxChannels];
  float scale[kMaxChannels];
};

// Source index/weights as torch's upsample_bilinear2d, align_corners=False.
__device__ __forceinline__ void tap(long long d, long long in, float ratio, long long& i0, long long& i1, float& l1) {
  float src = ratio * (float(d) + 0.5f) - 0.5f;
  if (src < 0.f) src = 0.f;
  i0 = (long long)src;
  i1 = i0 < in - 1 ? i0 + 1 : i0;
  l1 = src - float(i0);
}

template <typename OutT>
__global__ void batch_kernel(BatchArgs a, ChannelNorm norm, OutT* __restrict__ out) {
  const long long total = a.batch * a.channels * a.out_h * a.out_w;
  const float rx = float(a.in_w) / float(a.out_w), ry = float(a.in_h) / float(a.out_h);
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
       i += (long long)gridDim.x * blockDim.x) {
    const long long x = i % a.out_w;
    long long r = i / a.out_w;
    const long long y = r % a.out_h;
    r /= a.out_h;
    const long long c = r % a.channels, b = r / a.channels;
    long long x0, x1, y0, y1;
    float lx, ly;
    tap(x, a.in_w, rx, x0, x1, lx);
    tap(y, a.in_h, ry, y0, y1, ly);
    const float* plane = a.images + b * a.stride_n + c * a.stride_c;
    const float* ra = plane + y0 * a.stride_h;
    const float* rb = plane + y1 * a.stride_h;
    const float v = (1.f - ly) * ((1.f - lx) * __ldg(ra + x0) + lx * __ldg(ra + x1)) +
                    ly * ((1.f - lx) * __ldg(rb + x0) + lx * __ldg(rb + x1));
    store(out, i, (v - norm.mean[c]) * norm.scale[c]);
  }
}

unsigned int grid_for(long long total) {
  const long long blocks = (total + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(blocks < 1 ? 1 : (blocks > (1LL << 20) ? (1LL << 20) : blocks));
}

}  // namespace

void resize_normalize_affine_cuda(const AffineArgs& args, void* stream) {
  const long long total = args.num_faces * args.out_h * args.out_w;
  if (total <= 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (args.out_dtype == OutDType::kFloat16)
    affine_kernel<__half><<<grid_for(total), kThreads, 0, s>>>(args, static_cast<__half*>(args.out));
  else
    affine_kernel<float><<<grid_for(total), kThreads, 0, s>>>(args, static_cast<float*>(args.out));
  FHSDK_CUDA_CHECK(cudaGetLastError());
}

void resize_normalize_batch_cuda(const BatchArgs& args, void* stream) {
  const long long total = args.batch * args.channels * args.out_h * args.out_w;
  if (total <= 0) return;
  if (args.channels > kMaxChannels)
    throw std::invalid_argument("resize_normalize_batch_cuda supports at most 16 channels");
  ChannelNorm norm{};
  for (long long c = 0; c < args.channels; ++c) {
    norm.mean[c] = args.mean[c];
    norm.scale[c] = args.scale[c];
  }
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (args.out_dtype == OutDType::kFloat16)
    batch_kernel<__half><<<grid_for(total), kThreads, 0, s>>>(args, norm, static_cast<__half*>(args.out));
  else
    batch_kernel<float><<<grid_for(total), kThreads, 0, s>>>(args, norm, static_cast<float*>(args.out));
  FHSDK_CUDA_CHECK(cudaGetLastError());
}

}  // namespace ops
}  // namespace fhsdk
