// CPU kernel of cosine_topk (see ../cosine_topk.h).
//
// The gallery is streamed in tiles of kTileRows rows (a tile of float32 rows stays in L2 while all
// queries visit it). Scores come from a register-blocked micro-kernel (2 queries x 4 gallery rows, or
// 1 x 8 when a single query is left) and go straight into a per-query bounded heap, so memory is
// O(B * k) whatever N is. Threads split the gallery (large N) or the queries (small N) and per-thread
// heaps are merged at the end. The AVX2+FMA+F16C micro-kernel is compiled with a function-level
// target attribute and chosen at run time; other x86-64 CPUs use the portable one.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FHSDK_X86 1
#endif

#include "ops/cosine_topk.h"
#include "ops/cpu/half.h"
#include "ops/cpu/parallel.h"

namespace fhsdk {
namespace ops {
namespace {

constexpr std::int64_t kTileRows = 256;

struct Entry {
  float score;
  std::int64_t index;
};

// Strict order of results: higher score first, then lower index (deterministic ties).
inline bool better(const Entry& a, const Entry& b) {
  return a.score > b.score || (a.score == b.score && a.index < b.index);
}

// Bounded heap of the best `cap` entries; the worst kept entry sits at the top.
class TopK {
 public:
  explicit TopK(std::int64_t cap = 0) : cap_(cap) { heap_.reserve(cap); }
  inline void push(float score, std::int64_t index) {
    if (full_ && score < worst_) return;  // fast reject: the common case once warmed up
    const Entry e{score, index};
    if (!full_) {
      heap_.push_back(e);
      std::push_heap(heap_.begin(), heap_.end(), better);
      if (std::int64_t(heap_.size()) == cap_) {
        full_ = true;
        worst_ = heap_.front().score;
      }
    } else if (better(e, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), better);
      heap_.back() = e;
      std::push_heap(heap_.begin(), heap_.end(), better);
      worst_ = heap_.front().score;
    }
  }
  const std::vector<Entry>& entries() const { return heap_; }
  // Sorted best-first (destroys the heap).
  std::vector<Entry>& sorted() {
    std::sort_heap(heap_.begin(), heap_.end(), better);
    return heap_;
  }

 private:
  std::int64_t cap_;
  bool full_ = false;
  float worst_ = -std::numeric_limits<float>::infinity();
  std::vector<Entry> heap_;
};

// ---- micro-kernels: out[i * G + j] = dot(q[i], g[j]) over `dim` floats (dim % 8 == 0) ----------

template <int Q, int G>
void dot_block_generic(const float* const* q, const float* const* g, std::int64_t dim, float* out) {
  float acc[Q][G][8] = {};
  for (std::int64_t d = 0; d < dim; d += 8)
    for (int i = 0; i < Q; ++i)
      for (int j = 0; j < G; ++j)
        for (int l = 0; l < 8; ++l) acc[i][j][l] += q[i][d + l] * g[j][d + l];
  for (int i = 0; i < Q; ++i)
    for (int j = 0; j < G; ++j) {
      float s = 0.f;
      for (int l = 0; l < 8; ++l) s += acc[i][j][l];
      out[i * G + j] = s;
    }
}

#ifdef FHSDK_X86
__attribute__((target("avx2,fma"))) inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int Q, int G>
__attribute__((target("avx2,fma"))) void dot_block_avx2(const float* const* q, const float* const* g,
                                                        std::int64_t dim, float* out) {
  __m256 acc[Q][G];
#pragma GCC unroll 16
  for (int i = 0; i < Q; ++i)
#pragma GCC unroll 16
    for (int j = 0; j < G; ++j) acc[i][j] = _mm256_setzero_ps();
  for (std::int64_t d = 0; d < dim; d += 8) {
    __m256 gv[G];
#pragma GCC unroll 16
    for (int j = 0; j < G; ++j) gv[j] = _mm256_loadu_ps(g[j] + d);
#pragma GCC unroll 16
    for (int i = 0; i < Q; ++i) {
      const __m256 qv = _mm256_loadu_ps(q[i] + d);
#pragma GCC unroll 16
      for (int j = 0; j < G; ++j) acc[i][j] = _mm256_fmadd_ps(qv, gv[j], acc[i][j]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < Q; ++i)
#pragma GCC unroll 16
    for (int j = 0; j < G; ++j) out[i * G + j] = hsum256(acc[i][j]);
}

__attribute__((target("avx2,fma,f16c"))) void half_row_to_float_f16c(const std::uint16_t* src, std::int64_t n,
                                                                     float* dst) {
  std::int64_t d = 0;
  for (; d + 8 <= n; d += 8)
    _mm256_storeu_ps(dst + d, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + d))));
  for (; d < n; ++d) dst[d] = cpu::half_to_float(src[d]);
}

bool cpu_has_avx2() {
  static const bool ok = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  }();
  return ok;
}
#else
bool cpu_has_avx2() { return false; }
#endif

template <int Q, int G>
inline void dot_block(bool avx2, const float* const* q, const float* const* g, std::int64_t dim, float* out) {
#ifdef FHSDK_X86
  if (avx2) return dot_block_avx2<Q, G>(q, g, dim, out);
#endif
  dot_block_generic<Q, G>(q, g, dim, out);
}

// ---- the scan ----------------------------------------------------------------------------------

struct Prepared {
  const TopkArgs* args;
  std::vector<float> queries;  // B x dim_pad, zero padded, normalised when args->normalize
  std::int64_t dim_pad;
  bool pack_gallery;           // tiles are converted to float32 / padded before use
  bool avx2;
};

// Scores queries [q0, q1) against gallery rows [g0, g1) and pushes them into heaps[q - q0].
void scan(const Prepared& p, std::int64_t q0, std::int64_t q1, std::int64_t g0, std::int64_t g1,
          std::vector<TopK>& heaps) {
  const TopkArgs& a = *p.args;
  const std::int64_t dp = p.dim_pad;
  std::vector<float> tile(p.pack_gallery ? kTileRows * dp : 0, 0.f);
  std::vector<const float*> rows(kTileRows);
  std::vector<float> inv_norm(kTileRows, 1.f);
  float s[8];
  for (std::int64_t t0 = g0; t0 < g1; t0 += kTileRows) {
    const std::int64_t nt = std::min(kTileRows, g1 - t0);
    // Row pointers of this tile, converting to padded float32 where needed.
    for (std::int64_t r = 0; r < nt; ++r) {
      const std::int64_t row = t0 + r;
      if (!p.pack_gallery) {
        rows[r] = static_cast<const float*>(a.gallery) + row * a.gallery_stride;
        continue;
      }
      float* dst = tile.data() + r * dp;
      if (a.gallery_dtype == GalleryDType::kFloat16) {
        const std::uint16_t* src = static_cast<const std::uint16_t*>(a.gallery) + row * a.gallery_stride;
#ifdef FHSDK_X86
        if (p.avx2) {
          half_row_to_float_f16c(src, a.dim, dst);
        } else
#endif
          for (std::int64_t d = 0; d < a.dim; ++d) dst[d] = cpu::half_to_float(src[d]);
      } else {
        std::memcpy(dst, static_cast<const float*>(a.gallery) + row * a.gallery_stride, a.dim * sizeof(float));
      }
      rows[r] = dst;  // padding columns stay zero from the allocation
    }
    if (a.normalize) {
      for (std::int64_t r = 0; r < nt; ++r) {
        float ss = 0.f;
        for (std::int64_t d = 0; d < a.dim; ++d) ss += rows[r][d] * rows[r][d];
        inv_norm[r] = ss > 0.f ? 1.f / std::sqrt(ss) : 0.f;
      }
    }
    auto emit = [&](std::int64_t qi, std::int64_t r, float score) {
      heaps[qi - q0].push(a.normalize ? score * inv_norm[r] : score, t0 + r);
    };
    std::int64_t qi = q0;
    for (; qi + 2 <= q1; qi += 2) {
      const float* qp[2] = {p.queries.data() + qi * dp, p.queries.data() + (qi + 1) * dp};
      std::int64_t r = 0;
      for (; r + 4 <= nt; r += 4) {
        dot_block<2, 4>(p.avx2, qp, &rows[r], dp, s);
        for (int j = 0; j < 4; ++j) {
          emit(qi, r + j, s[j]);
          emit(qi + 1, r + j, s[4 + j]);
        }
      }
      for (; r < nt; ++r) {
        dot_block<2, 1>(p.avx2, qp, &rows[r], dp, s);
        emit(qi, r, s[0]);
        emit(qi + 1, r, s[1]);
      }
    }
    for (; qi < q1; ++qi) {
      const float* qp[1] = {p.queries.data() + qi * dp};
      std::int64_t r = 0;
      for (; r + 8 <= nt; r += 8) {
        dot_block<1, 8>(p.avx2, qp, &rows[r], dp, s);
        for (int j = 0; j < 8; ++j) emit(qi, r + j, s[j]);
      }
      for (; r < nt; ++r) {
        dot_block<1, 1>(p.avx2, qp, &rows[r], dp, s);
        emit(qi, r, s[0]);
      }
    }
  }
}

void write_results(const TopkArgs& a, std::int64_t q, TopK& heap) {
  const std::int64_t kk = std::min(a.k, a.num_gallery);
  const std::vector<Entry>& best = heap.sorted();
  for (std::int64_t j = 0; j < kk; ++j) {
    a.out_indices[q * kk + j] = best[j].index;
    a.out_scores[q * kk + j] = best[j].score;
  }
}

}  // namespace

void cosine_topk_cpu(const TopkArgs& a, int num_threads) {
  const std::int64_t B = a.num_queries, N = a.num_gallery;
  const std::int64_t kk = std::min(a.k, N);
  if (B <= 0 || kk <= 0) return;

  Prepared p;
  p.args = &a;
  p.dim_pad = (a.dim + 7) / 8 * 8;
  p.avx2 = cpu_has_avx2();
  p.pack_gallery = a.gallery_dtype == GalleryDType::kFloat16 || p.dim_pad != a.dim;
  p.queries.assign(B * p.dim_pad, 0.f);
  for (std::int64_t q = 0; q < B; ++q) {
    const float* src = a.queries + q * a.query_stride;
    float* dst = p.queries.data() + q * p.dim_pad;
    float ss = 0.f;
    for (std::int64_t d = 0; d < a.dim; ++d) ss += src[d] * src[d];
    const float mul = !a.normalize ? 1.f : (ss > 0.f ? 1.f / std::sqrt(ss) : 0.f);
    for (std::int64_t d = 0; d < a.dim; ++d) dst[d] = src[d] * mul;
  }

  int threads = num_threads > 0 ? num_threads : cpu::default_num_threads();
  const double work = double(B) * double(N) * double(std::max<std::int64_t>(a.dim, 1));
  if (work < 4e6) threads = 1;  // spawning threads costs more than the scan
  const std::int64_t tiles = (N + kTileRows - 1) / kTileRows;

  if (tiles >= threads || B < 2 * threads) {
    // Split the gallery: each thread keeps heaps for all queries over its tiles, merged below.
    const std::int64_t parts = std::max<std::int64_t>(1, std::min<std::int64_t>(threads, tiles));
    std::vector<std::vector<TopK>> partial(parts, std::vector<TopK>(B, TopK(kk)));
    const std::int64_t tiles_per_part = (tiles + parts - 1) / parts;
    cpu::parallel_for(parts, 1, threads, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t t = begin; t < end; ++t) {
        const std::int64_t g0 = t * tiles_per_part * kTileRows;
        const std::int64_t g1 = std::min(N, g0 + tiles_per_part * kTileRows);
        if (g0 < g1) scan(p, 0, B, g0, g1, partial[t]);
      }
    });
    for (std::int64_t q = 0; q < B; ++q) {
      TopK merged(kk);
      for (auto& part : partial)
        for (const Entry& e : part[q].entries()) merged.push(e.score, e.index);
      write_results(a, q, merged);
    }
  } else {
    // Split the queries: each thread scans the whole (small) gallery for its queries.
    cpu::parallel_for(B, 2, threads, [&](std::int64_t begin, std::int64_t end) {
      std::vector<TopK> heaps(end - begin, TopK(kk));
      scan(p, begin, end, 0, N, heaps);
      for (std::int64_t q = begin; q < end; ++q) write_results(a, q, heaps[q - begin]);
    });
  }
}

}  // namespace ops
}  // namespace fhsdk
