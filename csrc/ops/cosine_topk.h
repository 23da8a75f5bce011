// cosine_topk: for each of B queries (B x D, float32) the k most similar rows of a gallery
// (N x D, float32 or float16 storage; float32 accumulation). Similarity is the dot product, i.e. the
// cosine for unit-norm rows; with `normalize` both sides are divided by their L2 norms on the fly
// (a zero row scores 0). Results are sorted by similarity descending, ties by index ascending, and
// hold min(k, N) entries per query (no padding). The gallery is streamed in tiles and each query keeps
// a partial top-k, so the B x N similarity matrix is never materialised.
#pragma once

#include <cstdint>

namespace fhsdk {
namespace ops {

enum class GalleryDType : int { kFloat32 = 0, kFloat16 = 1 };

struct TopkArgs {
  const float* queries;        // B x D, rows `query_stride` elements apart
  std::int64_t num_queries, dim, query_stride;
  const void* gallery;         // N x D, float32 or IEEE float16, rows `gallery_stride` elements apart
  GalleryDType gallery_dtype;
  std::int64_t num_gallery, gallery_stride;
  std::int64_t k;              // results per query = min(k, N)
  bool normalize;
  std::int64_t* out_indices;   // B x min(k, N)
  float* out_scores;           // B x min(k, N)
};

// CPU kernel (csrc/ops/cpu/cosine_topk_kernel.cpp); num_threads <= 0 means "all cores".
void cosine_topk_cpu(const TopkArgs& args, int num_threads);

// CUDA kernel (csrc/ops/cuda/cosine_topk_kernel.cu); all pointers device memory, `stream` a
// cudaStream_t. Allocates a small workspace (stream-ordered); asynchronous.
void cosine_topk_cuda(const TopkArgs& args, void* stream);

}  // namespace ops
}  // namespace fhsdk
