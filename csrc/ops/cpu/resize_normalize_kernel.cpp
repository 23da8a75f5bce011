// CPU kernels of resize_normalize (see ../resize_normalize.h). Work is split over output rows; each
// row is one pass that samples, normalises and writes all channels, so the frame is read once and no
// intermediate HWC crop is ever stored.
#include <cmath>
#include <cstdint>
#include <vector>

#include "ops/cpu/half.h"
#include "ops/cpu/parallel.h"
#include "ops/resize_normalize.h"

namespace fhsdk {
namespace ops {
namespace {

inline void store(float* out, std::int64_t i, float v) { out[i] = v; }
inline void store(std::uint16_t* out, std::int64_t i, float v) { out[i] = cpu::float_to_half(v); }

// One output row (face n, row y) of form (a), all three channels.
template <typename OutT>
void affine_row(const AffineArgs& a, std::int64_t n, std::int64_t y, OutT* out) {
  const float* m = a.affines + 6 * n;
  const std::int64_t plane = a.out_h * a.out_w;
  OutT* o0 = out + (n * 3) * plane + y * a.out_w;
  OutT* o1 = o0 + plane;
  OutT* o2 = o1 + plane;
  // Channel c of the output reads source channel src[c]; normalisation folded into one multiply-add.
  const int s0 = a.swap_rb ? 2 : 0, s2 = a.swap_rb ? 0 : 2;
  const float sc0 = a.scale[0], sc1 = a.scale[1], sc2 = a.scale[2];
  const float b0 = -a.mean[0] * sc0, b1 = -a.mean[1] * sc1, b2 = -a.mean[2] * sc2;
  const std::int64_t W = a.width, H = a.height, stride = a.row_stride;
  const std::uint8_t* frame = a.frame;
  // Source coordinates of (0, y) in double, then a float step per pixel: float keeps the inner loop
  // cheap and is exact to ~1e-4 px on a 4K frame (cv2 itself rounds coordinates to 1/32 px).
  const float bx = float(double(m[1]) * double(y) + double(m[2]));
  const float by = float(double(m[4]) * double(y) + double(m[5]));
  const float mx = m[0], my = m[3];
  const float fw = float(W), fh = float(H);
  for (std::int64_t x = 0; x < a.out_w; ++x) {
    const float sx = bx + mx * float(x), sy = by + my * float(x);
    float v[3];
    if (!(sx >= -1.f && sy >= -1.f && sx < fw && sy < fh)) {
      v[0] = v[1] = v[2] = 0.f;  // all four neighbours outside (or NaN): border value 0
    } else {
      const int ix = int(sx), iy = int(sy);  // truncation; fix up to floor for negatives
      const int x0 = ix - (sx < float(ix)), y0 = iy - (sy < float(iy));
      const float fx = sx - float(x0), fy = sy - float(y0);
      if (x0 >= 0 && y0 >= 0 && x0 < W - 1 && y0 < H - 1) {
        // Interior: all four neighbours inside the frame.
        const float w00 = (1.f - fx) * (1.f - fy), w01 = fx * (1.f - fy);
        const float w10 = (1.f - fx) * fy, w11 = fx * fy;
        const std::uint8_t* p = frame + y0 * stride + x0 * 3;
        const std::uint8_t* q = p + stride;
        for (int c = 0; c < 3; ++c)
          v[c] = w00 * float(p[c]) + w01 * float(p[c + 3]) + w10 * float(q[c]) + w11 * float(q[c + 3]);
      } else {
        // Straddles the border: neighbours outside read as 0 (cv2.BORDER_CONSTANT).
        const float wx[2] = {1.f - fx, fx}, wy[2] = {1.f - fy, fy};
        v[0] = v[1] = v[2] = 0.f;
        for (int dy = 0; dy < 2; ++dy) {
          const std::int64_t yy = y0 + dy;
          if (yy < 0 || yy >= H) continue;
          for (int dx = 0; dx < 2; ++dx) {
            const std::int64_t xx = x0 + dx;
            if (xx < 0 || xx >= W) continue;
            const std::uint8_t* p = frame + yy * stride + xx * 3;
            const float w = wx[dx] * wy[dy];
            for (int c = 0; c < 3; ++c) v[c] += w * float(p[c]);
          }
        }
      }
    }
    store(o0, x, v[s0] * sc0 + b0);
    store(o1, x, v[1] * sc1 + b1);
    store(o2, x, v[s2] * sc2 + b2);
  }
}

template <typename OutT>
void affine_impl(const AffineArgs& a, int num_threads) {
  OutT* out = static_cast<OutT*>(a.out);
  const std::int64_t rows = a.num_faces * a.out_h;
  // ~64k output pixels per thread: below that, spawning a thread costs more than it saves.
  const std::int64_t grain = std::max<std::int64_t>(1, 65536 / std::max<std::int64_t>(1, a.out_w));
  cpu::parallel_for(rows, grain, num_threads, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) affine_row<OutT>(a, r / a.out_h, r % a.out_h, out);
  });
}

// Source index and weight of one output coordinate, as torch's upsample_bilinear2d with
// align_corners=False: src = (dst + 0.5) * in / out - 0.5, clamped at 0.
struct Tap {
  std::int64_t i0, i1;
  float w0, w1;
};

std::vector<Tap> make_taps(std::int64_t in, std::int64_t out) {
  std::vector<Tap> taps(out);
  const float ratio = float(in) / float(out);
  for (std::int64_t d = 0; d < out; ++d) {
    float src = ratio * (float(d) + 0.5f) - 0.5f;
    if (src < 0.f) src = 0.f;
    const std::int64_t i0 = std::int64_t(src);
    const std::int64_t i1 = i0 < in - 1 ? i0 + 1 : i0;
    const float l1 = src - float(i0);
    taps[d] = {i0, i1, 1.f - l1, l1};
  }
  return taps;
}

template <typename OutT>
void batch_impl(const BatchArgs& a, int num_threads) {
  OutT* out = static_cast<OutT*>(a.out);
  const std::vector<Tap> tx = make_taps(a.in_w, a.out_w), ty = make_taps(a.in_h, a.out_h);
  const std::int64_t rows = a.batch * a.channels * a.out_h;
  // ~64k output pixels per thread: below that, spawning a thread costs more than it saves.
  const std::int64_t grain = std::max<std::int64_t>(1, 65536 / std::max<std::int64_t>(1, a.out_w));
  cpu::parallel_for(rows, grain, num_threads, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
      const std::int64_t y = r % a.out_h, bc = r / a.out_h;
      const std::int64_t c = bc % a.channels, b = bc / a.channels;
      const float* plane = a.images + b * a.stride_n + c * a.stride_c;
      const float* ra = plane + ty[y].i0 * a.stride_h;
      const float* rb = plane + ty[y].i1 * a.stride_h;
      const float wy0 = ty[y].w0, wy1 = ty[y].w1;
      const float sc = a.scale[c], bias = -a.mean[c] * a.scale[c];
      OutT* o = out + r * a.out_w;
      for (std::int64_t x = 0; x < a.out_w; ++x) {
        const Tap& t = tx[x];
        const float v = wy0 * (t.w0 * ra[t.i0] + t.w1 * ra[t.i1]) + wy1 * (t.w0 * rb[t.i0] + t.w1 * rb[t.i1]);
        store(o, x, v * sc + bias);
      }
    }
  });
}

}  // namespace

void resize_normalize_affine_cpu(const AffineArgs& args, int num_threads) {
  if (args.num_faces <= 0 || args.out_h <= 0 || args.out_w <= 0) return;
  if (args.out_dtype == OutDType::kFloat16)
    affine_impl<std::uint16_t>(args, num_threads);
  else
    affine_impl<float>(args, num_threads);
}

void resize_normalize_batch_cpu(const BatchArgs& args, int num_threads) {
  if (args.batch <= 0 || args.channels <= 0 || args.out_h <= 0 || args.out_w <= 0) return;
  if (args.out_dtype == OutDType::kFloat16)
    batch_impl<std::uint16_t>(args, num_threads);
  else
    batch_impl<float>(args, num_threads);
}

}  // namespace ops
}  // namespace fhsdk
