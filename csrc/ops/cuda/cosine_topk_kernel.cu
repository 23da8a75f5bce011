// CUDA kernel of cosine_topk (see ../cosine_topk.h).
//
// Stage 1 (score_select_kernel): W warps per query stride over the gallery; a warp computes one row's
//   dot product with coalesced loads (lanes split D) and a shuffle reduction, then lane 0 inserts it
//   into the warp's own sorted top-k list, kept in a global workspace (B x W x k entries, bounded
//   independently of N, so B x N is never materialised).
// Stage 2 (merge_kernel): M threads per query each keep a top-k list over a strided share of the
//   previous level's candidates; repeated with M shrinking 16x per level until one list remains,
//   whose first min(k, N) entries are copied to the output.
// Order is the CPU kernel's: higher score first, then lower index. Unused list slots hold the
// sentinel (-inf, INT64_MAX), which loses to every real entry.
#include <cuda_fp16.h>

#include <cstdint>
#include <limits>

#include "ops/cosine_topk.h"
#include "ops/cuda/cuda_check.cuh"

namespace fhsdk {
namespace ops {
namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;
constexpr long long kSentinelIndex = std::numeric_limits<long long>::max();
constexpr int kMergeFactor = 16;

__device__ __forceinline__ bool better(float s, long long i, float ts, long long ti) {
  return s > ts || (s == ts && i < ti);
}

// Inserts (s, i) into the sorted list (scores/idx, length k) if it beats the current last entry;
// (worst_s, worst_i) cache the last entry in registers.
__device__ __forceinline__ void insert(float* scores, long long* idx, long long k, float s, long long i,
                                       float& worst_s, long long& worst_i) {
  if (!better(s, i, worst_s, worst_i)) return;
  long long j = k - 1;
  while (j > 0 && better(s, i, scores[j - 1], idx[j - 1])) {
    scores[j] = scores[j - 1];
    idx[j] = idx[j - 1];
    --j;
  }
  scores[j] = s;
  idx[j] = i;
  worst_s = scores[k - 1];
  worst_i = idx[k - 1];
}

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <typename T>
__global__ void score_select_kernel(TopkArgs a, long long warps_per_query, float* __restrict__ ws_scores,
                                    long long* __restrict__ ws_idx) {
  const long long q = blockIdx.y;
  const long long w = blockIdx.x * (long long)kWarpsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (w >= warps_per_query) return;  // whole warp exits together
  const long long k = a.k;
  float* ls = ws_scores + (q * warps_per_query + w) * k;
  long long* li = ws_idx + (q * warps_per_query + w) * k;
  for (long long j = lane; j < k; j += 32) {
    ls[j] = -INFINITY;
    li[j] = kSentinelIndex;
  }
  __syncwarp();
  float worst_s = -INFINITY;
  long long worst_i = kSentinelIndex;
  const float* qrow = a.queries + q * a.query_stride;
  float q_inv = 1.f;
  if (a.normalize) {
    float ss = 0.f;
    for (long long d = lane; d < a.dim; d += 32) ss += qrow[d] * qrow[d];
    ss = warp_sum(ss);
    q_inv = ss > 0.f ? rsqrtf(ss) : 0.f;
  }
  const T* gallery = static_cast<const T*>(a.gallery);
  for (long long r = w; r < a.num_gallery; r += warps_per_query) {
    const T* grow = gallery + r * a.gallery_stride;
    float dot = 0.f, ss = 0.f;
    for (long long d = lane; d < a.dim; d += 32) {
      const float g = to_float(grow[d]);
      dot += qrow[d] * g;
      ss += g * g;
    }
    dot = warp_sum(dot);
    if (a.normalize) {
      ss = warp_sum(ss);
      dot = ss > 0.f ? dot * q_inv * rsqrtf(ss) : 0.f;
    }
    if (lane == 0) insert(ls, li, k, dot, r, worst_s, worst_i);
  }
}

// Thread m of query q merges candidates m, m + M, ... of the query's `in_count` candidates.
__global__ void merge_kernel(const float* __restrict__ in_scores, const long long* __restrict__ in_idx,
                             long long in_count, long long k, long long lists_out, float* __restrict__ out_scores,
                             long long* __restrict__ out_idx) {
  const long long q = blockIdx.y;
  const long long m = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (m >= lists_out) return;
  float* ls = out_scores + (q * lists_out + m) * k;
  long long* li = out_idx + (q * lists_out + m) * k;
  for (long long j = 0; j < k; ++j) {
    ls[j] = -INFINITY;
    li[j] = kSentinelIndex;
  }
  float worst_s = -INFINITY;
  long long worst_i = kSentinelIndex;
  const float* cs = in_scores + q * in_count;
  const long long* ci = in_idx + q * in_count;
  for (long long c = m; c < in_count; c += lists_out) {
    if (ci[c] != kSentinelIndex) insert(ls, li, k, cs[c], ci[c], worst_s, worst_i);
  }
}

__global__ void copy_out_kernel(const float* __restrict__ scores, const long long* __restrict__ idx, long long k,
                                long long kk, long long num_queries, float* __restrict__ out_scores,
                                std::int64_t* __restrict__ out_idx) {
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i >= num_queries * kk) return;
  const long long q = i / kk, j = i % kk;
  out_scores[i] = scores[q * k + j];
  out_idx[i] = idx[q * k + j];
}

// Stream-ordered workspace that is freed on every exit path, exceptions included.
class AsyncBuffer {
 public:
  AsyncBuffer(size_t bytes, cudaStream_t s) : stream_(s) {
    FHSDK_CUDA_CHECK(cudaMallocAsync(&ptr_, bytes, s));
  }
  ~AsyncBuffer() {
    if (ptr_) cudaFreeAsync(ptr_, stream_);  // no throw from a destructor; a failure here is sticky anyway
  }
  AsyncBuffer(const AsyncBuffer&) = delete;
  AsyncBuffer& operator=(const AsyncBuffer&) = delete;
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  cudaStream_t stream_;
};

constexpr long long kMaxGridY = 65535;  // queries per launch (gridDim.y); larger batches are chunked

void cosine_topk_chunk(TopkArgs a, cudaStream_t s) {
  const long long B = a.num_queries, N = a.num_gallery, k = a.k;
  const long long kk = k < N ? k : N;

  // Warps per query: >= 16 rows each, at most 4096, and a workspace of at most ~2^21 entries.
  long long W = (N + 15) / 16;
  if (W > 4096) W = 4096;
  const long long budget = (1LL << 21) / (B * k);
  if (W > budget) W = budget;
  if (W < 1) W = 1;
  const long long next = (W + kMergeFactor - 1) / kMergeFactor;

  const size_t entries_a = size_t(B * W * k), entries_b = size_t(B * next * k);
  AsyncBuffer sa(entries_a * sizeof(float), s), ia(entries_a * sizeof(long long), s);
  AsyncBuffer sb(entries_b * sizeof(float), s), ib(entries_b * sizeof(long long), s);

  const dim3 grid1(static_cast<unsigned int>((W + kWarpsPerBlock - 1) / kWarpsPerBlock), static_cast<unsigned int>(B));
  if (a.gallery_dtype == GalleryDType::kFloat16)
    score_select_kernel<__half><<<grid1, kThreads, 0, s>>>(a, W, sa.as<float>(), ia.as<long long>());
  else
    score_select_kernel<float><<<grid1, kThreads, 0, s>>>(a, W, sa.as<float>(), ia.as<long long>());
  FHSDK_CUDA_CHECK(cudaGetLastError());

  // Merge levels, ping-ponging between the two buffers (each level fits in the smaller one).
  long long lists = W;
  float *cur_s = sa.as<float>(), *nxt_s = sb.as<float>();
  long long *cur_i = ia.as<long long>(), *nxt_i = ib.as<long long>();
  while (lists > 1) {
    const long long out_lists = (lists + kMergeFactor - 1) / kMergeFactor;
    const dim3 grid(static_cast<unsigned int>((out_lists + 127) / 128), static_cast<unsigned int>(B));
    merge_kernel<<<grid, 128, 0, s>>>(cur_s, cur_i, lists * k, k, out_lists, nxt_s, nxt_i);
    FHSDK_CUDA_CHECK(cudaGetLastError());
    lists = out_lists;
    float* ts = cur_s; cur_s = nxt_s; nxt_s = ts;
    long long* ti = cur_i; cur_i = nxt_i; nxt_i = ti;
  }
  copy_out_kernel<<<cuda::blocks_for(B * kk, 256), 256, 0, s>>>(cur_s, cur_i, k, kk, B, a.out_scores,
                                                                 a.out_indices);
  FHSDK_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void cosine_topk_cuda(const TopkArgs& a, void* stream) {
  const long long B = a.num_queries, N = a.num_gallery, k = a.k;
  const long long kk = k < N ? k : N;
  if (B <= 0 || kk <= 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  for (long long start = 0; start < B; start += kMaxGridY) {
    TopkArgs chunk = a;
    chunk.num_queries = (B - start) < kMaxGridY ? (B - start) : kMaxGridY;
    chunk.queries = a.queries + start * a.query_stride;
    chunk.out_indices = a.out_indices + start * kk;
    chunk.out_scores = a.out_scores + start * kk;
    cosine_topk_chunk(chunk, s);
  }
}

}  // namespace ops
}  // namespace fhsdk
