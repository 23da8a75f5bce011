// CPU kernel of cosine_topk (see ../cosine_topk.h).
//
// The gallery is streamed in tiles of kTileRows rows. Each tile is packed once (float16 converted,
// rows transposed into panels of 8) into a buffer that stays in L2 while every query visits it; a
// register-blocked micro-kernel (4 queries x 16 rows, 8 accumulators) produces a small block of
// scores that goes straight into per-query bounded heaps, so memory is O(B * k) whatever N is.
// With at most 3 queries the packing is wasted work (each tile would be read by so few queries), so a
// streaming scan reads each row once in place instead: SIMD dot products of 4 rows at a time with
// every query, software prefetch ahead, scores straight into the heaps. Threads split the gallery
// (large N, or few queries) or the queries (small N); per-thread heaps are merged at the end. The AVX2+FMA+F16C code is compiled per function with __attribute__((target)) and chosen at
// run time (no -march flags), so the same binary runs on any x86-64 CPU.
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

constexpr std::int64_t kTileRows = 256;  // a multiple of kPanel
constexpr int kPanel = 8;

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

// ---- packing: a tile of gallery rows -> panels of 8 rows, float32, laid out [d][8] ------------
// Panel layout turns the scores of 8 rows into one vector FMA per dimension (query element
// broadcast), so no horizontal sums are needed and each packed tile is reused by every query.

inline float gallery_at(const TopkArgs& a, std::int64_t row, std::int64_t d) {
  if (a.gallery_dtype == GalleryDType::kFloat16)
    return cpu::half_to_float(static_cast<const std::uint16_t*>(a.gallery)[row * a.gallery_stride + d]);
  return static_cast<const float*>(a.gallery)[row * a.gallery_stride + d];
}

void pack_tile_generic(const TopkArgs& a, std::int64_t t0, std::int64_t nt, float* dst) {
  const std::int64_t D = a.dim, panels = (nt + kPanel - 1) / kPanel;
  for (std::int64_t p = 0; p < panels; ++p) {
    float* out = dst + p * D * kPanel;
    for (int j = 0; j < kPanel; ++j) {
      const std::int64_t r = p * kPanel + j;
      for (std::int64_t d = 0; d < D; ++d) out[d * kPanel + j] = r < nt ? gallery_at(a, t0 + r, d) : 0.f;
    }
  }
}

// out[q * ldo + p * 8 + j] = dot(query q, row 8p + j of the packed panels).
template <int Q, int P>
void panel_block_generic(const float* const* q, const float* panels, std::int64_t dim, float* out, std::int64_t ldo) {
  float acc[Q][P][kPanel] = {};
  for (std::int64_t d = 0; d < dim; ++d)
    for (int p = 0; p < P; ++p) {
      const float* g = panels + p * dim * kPanel + d * kPanel;
      for (int i = 0; i < Q; ++i)
        for (int j = 0; j < kPanel; ++j) acc[i][p][j] += q[i][d] * g[j];
    }
  for (int i = 0; i < Q; ++i)
    for (int p = 0; p < P; ++p)
      for (int j = 0; j < kPanel; ++j) out[i * ldo + p * kPanel + j] = acc[i][p][j];
}

#ifdef FHSDK_X86
__attribute__((target("avx2,fma,f16c"))) inline __m256 load8(const TopkArgs& a, const void* row, std::int64_t d) {
  if (a.gallery_dtype == GalleryDType::kFloat16)
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const std::uint16_t*>(row) + d)));
  return _mm256_loadu_ps(static_cast<const float*>(row) + d);
}

__attribute__((target("avx2,fma,f16c"))) void pack_tile_avx2(const TopkArgs& a, std::int64_t t0, std::int64_t nt,
                                                             const void* zero_row, float* dst) {
  const std::int64_t D = a.dim, panels = (nt + kPanel - 1) / kPanel;
  const std::int64_t esize = a.gallery_dtype == GalleryDType::kFloat16 ? 2 : 4;
  const char* base = static_cast<const char*>(a.gallery);
  for (std::int64_t p = 0; p < panels; ++p) {
    float* out = dst + p * D * kPanel;
    const void* rows[kPanel];
    for (int j = 0; j < kPanel; ++j) {
      const std::int64_t r = p * kPanel + j;
      rows[j] = r < nt ? base + (t0 + r) * a.gallery_stride * esize : zero_row;
    }
    std::int64_t d = 0;
    for (; d + 8 <= D; d += 8) {  // 8 x 8 transpose in registers
      __m256 r0 = load8(a, rows[0], d), r1 = load8(a, rows[1], d), r2 = load8(a, rows[2], d), r3 = load8(a, rows[3], d);
      __m256 r4 = load8(a, rows[4], d), r5 = load8(a, rows[5], d), r6 = load8(a, rows[6], d), r7 = load8(a, rows[7], d);
      __m256 t0v = _mm256_unpacklo_ps(r0, r1), t1v = _mm256_unpackhi_ps(r0, r1);
      __m256 t2v = _mm256_unpacklo_ps(r2, r3), t3v = _mm256_unpackhi_ps(r2, r3);
      __m256 t4v = _mm256_unpacklo_ps(r4, r5), t5v = _mm256_unpackhi_ps(r4, r5);
      __m256 t6v = _mm256_unpacklo_ps(r6, r7), t7v = _mm256_unpackhi_ps(r6, r7);
      __m256 s0 = _mm256_shuffle_ps(t0v, t2v, 0x44), s1 = _mm256_shuffle_ps(t0v, t2v, 0xEE);
      __m256 s2 = _mm256_shuffle_ps(t1v, t3v, 0x44), s3 = _mm256_shuffle_ps(t1v, t3v, 0xEE);
      __m256 s4 = _mm256_shuffle_ps(t4v, t6v, 0x44), s5 = _mm256_shuffle_ps(t4v, t6v, 0xEE);
      __m256 s6 = _mm256_shuffle_ps(t5v, t7v, 0x44), s7 = _mm256_shuffle_ps(t5v, t7v, 0xEE);
      float* o = out + d * kPanel;
      _mm256_storeu_ps(o + 0 * kPanel, _mm256_permute2f128_ps(s0, s4, 0x20));
      _mm256_storeu_ps(o + 1 * kPanel, _mm256_permute2f128_ps(s1, s5, 0x20));
      _mm256_storeu_ps(o + 2 * kPanel, _mm256_permute2f128_ps(s2, s6, 0x20));
      _mm256_storeu_ps(o + 3 * kPanel, _mm256_permute2f128_ps(s3, s7, 0x20));
      _mm256_storeu_ps(o + 4 * kPanel, _mm256_permute2f128_ps(s0, s4, 0x31));
      _mm256_storeu_ps(o + 5 * kPanel, _mm256_permute2f128_ps(s1, s5, 0x31));
      _mm256_storeu_ps(o + 6 * kPanel, _mm256_permute2f128_ps(s2, s6, 0x31));
      _mm256_storeu_ps(o + 7 * kPanel, _mm256_permute2f128_ps(s3, s7, 0x31));
    }
    for (; d < D; ++d)
      for (int j = 0; j < kPanel; ++j) {
        const std::int64_t r = p * kPanel + j;
        out[d * kPanel + j] = r < nt ? gallery_at(a, t0 + r, d) : 0.f;
      }
  }
}

template <int Q, int P>
__attribute__((target("avx2,fma"))) void panel_block_avx2(const float* const* q, const float* panels,
                                                          std::int64_t dim, float* out, std::int64_t ldo) {
  __m256 acc[Q][P];
#pragma GCC unroll 8
  for (int i = 0; i < Q; ++i)
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) acc[i][p] = _mm256_setzero_ps();
  for (std::int64_t d = 0; d < dim; ++d) {
    __m256 g[P];
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) g[p] = _mm256_loadu_ps(panels + p * dim * kPanel + d * kPanel);
#pragma GCC unroll 8
    for (int i = 0; i < Q; ++i) {
      const __m256 qb = _mm256_broadcast_ss(q[i] + d);
#pragma GCC unroll 8
      for (int p = 0; p < P; ++p) acc[i][p] = _mm256_fmadd_ps(qb, g[p], acc[i][p]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < Q; ++i)
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) _mm256_storeu_ps(out + i * ldo + p * kPanel, acc[i][p]);
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

template <int Q, int P>
inline void panel_block(bool avx2, const float* const* q, const float* panels, std::int64_t dim, float* out,
                        std::int64_t ldo) {
#ifdef FHSDK_X86
  if (avx2) return panel_block_avx2<Q, P>(q, panels, dim, out, ldo);
#endif
  panel_block_generic<Q, P>(q, panels, dim, out, ldo);
}

// Scores of Q queries against all panels of a tile: out is Q x kTileRows.
template <int Q>
void tile_scores(bool avx2, const float* const* q, const float* tile, std::int64_t panels, std::int64_t dim,
                 float* out) {
  constexpr int P = Q == 1 ? 4 : 2;  // keep ~8 independent accumulators in flight
  std::int64_t p = 0;
  for (; p + P <= panels; p += P) panel_block<Q, P>(avx2, q, tile + p * dim * kPanel, dim, out + p * kPanel, kTileRows);
  for (; p < panels; ++p) panel_block<Q, 1>(avx2, q, tile + p * dim * kPanel, dim, out + p * kPanel, kTileRows);
}

// ---- the scan ----------------------------------------------------------------------------------

struct Prepared {
  const TopkArgs* args;
  std::vector<float> queries;  // B x D, normalised when args->normalize
  bool avx2;
};

// Scores queries [q0, q1) against gallery rows [g0, g1) and pushes them into heaps[q - q0].
void scan(const Prepared& p, std::int64_t q0, std::int64_t q1, std::int64_t g0, std::int64_t g1,
          std::vector<TopK>& heaps) {
  const TopkArgs& a = *p.args;
  const std::int64_t D = a.dim;
  std::vector<float> tile(kTileRows * std::max<std::int64_t>(D, 1));
  std::vector<float> zero_row(std::max<std::int64_t>(D, 8), 0.f);  // stands in for rows past the tile end
  std::vector<float> inv_norm(kTileRows, 1.f);
  std::vector<float> scores(4 * kTileRows);
  for (std::int64_t t0 = g0; t0 < g1; t0 += kTileRows) {
    const std::int64_t nt = std::min(kTileRows, g1 - t0);
    const std::int64_t panels = (nt + kPanel - 1) / kPanel;
#ifdef FHSDK_X86
    if (p.avx2)
      pack_tile_avx2(a, t0, nt, zero_row.data(), tile.data());
    else
#endif
      pack_tile_generic(a, t0, nt, tile.data());
    if (a.normalize) {
      for (std::int64_t pi = 0; pi < panels; ++pi) {
        float ss[kPanel] = {};
        const float* g = tile.data() + pi * D * kPanel;
        for (std::int64_t d = 0; d < D; ++d)
          for (int j = 0; j < kPanel; ++j) ss[j] += g[d * kPanel + j] * g[d * kPanel + j];
        for (int j = 0; j < kPanel; ++j) inv_norm[pi * kPanel + j] = ss[j] > 0.f ? 1.f / std::sqrt(ss[j]) : 0.f;
      }
    }
    auto emit = [&](std::int64_t qi, const float* s) {
      TopK& heap = heaps[qi - q0];
      if (a.normalize) {
        for (std::int64_t r = 0; r < nt; ++r) heap.push(s[r] * inv_norm[r], t0 + r);
      } else {
        for (std::int64_t r = 0; r < nt; ++r) heap.push(s[r], t0 + r);
      }
    };
    std::int64_t qi = q0;
    for (; qi + 4 <= q1; qi += 4) {
      const float* qp[4];
      for (int i = 0; i < 4; ++i) qp[i] = p.queries.data() + (qi + i) * D;
      tile_scores<4>(p.avx2, qp, tile.data(), panels, D, scores.data());
      for (int i = 0; i < 4; ++i) emit(qi + i, scores.data() + i * kTileRows);
    }
    for (; qi < q1; ++qi) {
      const float* qp[1] = {p.queries.data() + qi * D};
      tile_scores<1>(p.avx2, qp, tile.data(), panels, D, scores.data());
      emit(qi, scores.data());
    }
  }
}

// ---- the streaming scan, for few queries ---------------------------------------------------------
// With at most kStreamMaxQueries queries a packed tile would be read by one to three queries only:
// packing then costs a write and a re-read of every row for nothing, and the scan is bound by memory
// bandwidth anyway. So each row is read once, in place, and dotted with every query (one SIMD
// accumulator per query and row, 4 rows in flight); its score goes straight into the query's heap.

constexpr std::int64_t kStreamMaxQueries = 3;
constexpr int kStreamRows = 4;
constexpr std::int64_t kPrefetchRows = 16;

// dots[q * R + r] = dot(query q, row r); ss[r] = |row r|^2 when Norm.
template <int Q, int R, bool Norm>
void stream_rows_generic(const TopkArgs& a, const float* const* q, std::int64_t row0, float* dots, float* ss) {
  for (int r = 0; r < R; ++r) {
    float acc[Q] = {}, s = 0.f;
    for (std::int64_t d = 0; d < a.dim; ++d) {
      const float g = gallery_at(a, row0 + r, d);
      for (int i = 0; i < Q; ++i) acc[i] += q[i][d] * g;
      if (Norm) s += g * g;
    }
    for (int i = 0; i < Q; ++i) dots[i * R + r] = acc[i];
    if (Norm) ss[r] = s;
  }
}

#ifdef FHSDK_X86
// Sum of each of four vectors -> one 4-vector (lane r = sum of v[r]).
__attribute__((target("avx2"))) inline __m128 hsum4(__m256 v0, __m256 v1, __m256 v2, __m256 v3) {
  const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(v0, v1), _mm256_hadd_ps(v2, v3));
  return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

__attribute__((target("avx2"))) inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <bool Half>
__attribute__((target("avx2,f16c"))) inline __m256 load8_as(const char* row, std::int64_t d) {
  if constexpr (Half) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * d)));
  return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + d);
}

template <int Q, int R, bool Norm, bool Half>
__attribute__((target("avx2,fma,f16c"))) void stream_rows_avx2(const TopkArgs& a, const float* const* q,
                                                               std::int64_t row0, float* dots, float* ss) {
  static_assert(R == 1 || R == 4, "rows are reduced one or four at a time");
  const std::int64_t D = a.dim, row_bytes = a.gallery_stride * (Half ? 2 : 4);
  const char* rows[R];
  for (int r = 0; r < R; ++r) rows[r] = static_cast<const char*>(a.gallery) + (row0 + r) * row_bytes;
  __m256 acc[Q][R], sq[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    sq[r] = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int i = 0; i < Q; ++i) acc[i][r] = _mm256_setzero_ps();
  }
  std::int64_t d = 0;
  for (; d + 8 <= D; d += 8) {
    __m256 qv[Q];
#pragma GCC unroll 4
    for (int i = 0; i < Q; ++i) qv[i] = _mm256_loadu_ps(q[i] + d);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m256 g = load8_as<Half>(rows[r], d);
#pragma GCC unroll 4
      for (int i = 0; i < Q; ++i) acc[i][r] = _mm256_fmadd_ps(qv[i], g, acc[i][r]);
      if (Norm) sq[r] = _mm256_fmadd_ps(g, g, sq[r]);
    }
  }
  if constexpr (R == 4) {
    for (int i = 0; i < Q; ++i) _mm_storeu_ps(dots + i * R, hsum4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]));
    if (Norm) _mm_storeu_ps(ss, hsum4(sq[0], sq[1], sq[2], sq[3]));
  } else {
    for (int i = 0; i < Q; ++i) dots[i] = hsum(acc[i][0]);
    if (Norm) ss[0] = hsum(sq[0]);
  }
  for (; d < D; ++d)  // D not a multiple of 8
    for (int r = 0; r < R; ++r) {
      const float g = gallery_at(a, row0 + r, d);
      for (int i = 0; i < Q; ++i) dots[i * R + r] += q[i][d] * g;
      if (Norm) ss[r] += g * g;
    }
}
#endif

template <int Q, int R, bool Norm>
inline void stream_rows(bool avx2, const TopkArgs& a, const float* const* q, std::int64_t row0, float* dots,
                        float* ss) {
#ifdef FHSDK_X86
  if (avx2) {
    if (a.gallery_dtype == GalleryDType::kFloat16) return stream_rows_avx2<Q, R, Norm, true>(a, q, row0, dots, ss);
    return stream_rows_avx2<Q, R, Norm, false>(a, q, row0, dots, ss);
  }
#endif
  stream_rows_generic<Q, R, Norm>(a, q, row0, dots, ss);
}

// Pushes the scores of rows [row0, row0 + R) into the Q heaps.
template <int Q, int R, bool Norm>
inline void stream_block(const Prepared& p, const float* const* q, std::int64_t row0, TopK* heaps) {
  float dots[Q * R], ss[R];
  stream_rows<Q, R, Norm>(p.avx2, *p.args, q, row0, dots, ss);
  for (int r = 0; r < R; ++r) {
    const float inv = Norm ? (ss[r] > 0.f ? 1.f / std::sqrt(ss[r]) : 0.f) : 1.f;
    for (int i = 0; i < Q; ++i) heaps[i].push(Norm ? dots[i * R + r] * inv : dots[i * R + r], row0 + r);
  }
}

template <int Q, bool Norm>
void stream_scan_impl(const Prepared& p, std::int64_t g0, std::int64_t g1, std::vector<TopK>& heaps) {
  const float* q[Q];
  for (int i = 0; i < Q; ++i) q[i] = p.queries.data() + i * p.args->dim;
  const TopkArgs& a = *p.args;
  const std::int64_t row_bytes = a.gallery_stride * (a.gallery_dtype == GalleryDType::kFloat16 ? 2 : 4);
  const std::int64_t block_bytes = kStreamRows * row_bytes;
  const char* base = static_cast<const char*>(a.gallery);
  std::int64_t r = g0;
  for (; r + kStreamRows <= g1; r += kStreamRows) {
    // The hardware prefetcher alone leaves one thread well short of the memory bandwidth.
    if (r + kPrefetchRows + kStreamRows <= g1)
      for (std::int64_t off = 0; off < block_bytes; off += 64) __builtin_prefetch(base + (r + kPrefetchRows) * row_bytes + off);
    stream_block<Q, kStreamRows, Norm>(p, q, r, heaps.data());
  }
  for (; r < g1; ++r) stream_block<Q, 1, Norm>(p, q, r, heaps.data());
}

// All B <= kStreamMaxQueries queries against gallery rows [g0, g1), without packing.
void stream_scan(const Prepared& p, std::int64_t g0, std::int64_t g1, std::vector<TopK>& heaps) {
  const bool norm = p.args->normalize;
  switch (p.args->num_queries) {
    case 1: return norm ? stream_scan_impl<1, true>(p, g0, g1, heaps) : stream_scan_impl<1, false>(p, g0, g1, heaps);
    case 2: return norm ? stream_scan_impl<2, true>(p, g0, g1, heaps) : stream_scan_impl<2, false>(p, g0, g1, heaps);
    default: return norm ? stream_scan_impl<3, true>(p, g0, g1, heaps) : stream_scan_impl<3, false>(p, g0, g1, heaps);
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
  p.avx2 = cpu_has_avx2();
  p.queries.assign(B * a.dim, 0.f);
  for (std::int64_t q = 0; q < B; ++q) {
    const float* src = a.queries + q * a.query_stride;
    float* dst = p.queries.data() + q * a.dim;
    float ss = 0.f;
    for (std::int64_t d = 0; d < a.dim; ++d) ss += src[d] * src[d];
    const float mul = !a.normalize ? 1.f : (ss > 0.f ? 1.f / std::sqrt(ss) : 0.f);
    for (std::int64_t d = 0; d < a.dim; ++d) dst[d] = src[d] * mul;
  }

  int threads = num_threads > 0 ? num_threads : cpu::default_num_threads();
  const double work = double(B) * double(N) * double(std::max<std::int64_t>(a.dim, 1));
  if (work < 4e6) threads = 1;  // spawning threads costs more than the scan
  const std::int64_t tiles = (N + kTileRows - 1) / kTileRows;

  if (tiles >= threads || B < 2 * threads || B <= kStreamMaxQueries) {
    // Split the gallery: each thread keeps heaps for all queries over its tiles, merged below.
    const std::int64_t parts = std::max<std::int64_t>(1, std::min<std::int64_t>(threads, tiles));
    std::vector<std::vector<TopK>> partial(parts, std::vector<TopK>(B, TopK(kk)));
    const std::int64_t tiles_per_part = (tiles + parts - 1) / parts;
    cpu::parallel_for(parts, 1, threads, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t t = begin; t < end; ++t) {
        const std::int64_t g0 = t * tiles_per_part * kTileRows;
        const std::int64_t g1 = std::min(N, g0 + tiles_per_part * kTileRows);
        if (g0 >= g1) continue;
        if (B <= kStreamMaxQueries)
          stream_scan(p, g0, g1, partial[t]);
        else
          scan(p, 0, B, g0, g1, partial[t]);
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
