// IEEE binary16 <-> binary32 conversion in portable C++ (no F16C needed), round-to-nearest-even.
// Bit tricks after F. Giesen, "Half to float done quick" (public-domain description of the method).
#pragma once

#include <cstdint>
#include <cstring>

namespace fhsdk {
namespace cpu {

inline std::uint32_t bits_of(float f) { std::uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float float_of(std::uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

inline std::uint16_t float_to_half(float f) {
  std::uint32_t x = bits_of(f);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) return std::uint16_t(sign | 0x7c00u | (x > 0x7f800000u ? 0x200u : 0u));  // inf/nan
  if (x >= 0x477ff000u) return std::uint16_t(sign | 0x7c00u);  // rounds to >= 65520: overflow to inf
  if (x < 0x38800000u) {  // result is subnormal or zero: let the FPU round by adding 0.5f
    const std::uint32_t r = bits_of(float_of(x) + 0.5f);
    return std::uint16_t(sign | (r - 0x3f000000u));
  }
  const std::uint32_t odd = (x >> 13) & 1u;
  x += 0xc8000fffu + odd;  // rebias exponent by -112 and round half to even
  return std::uint16_t(sign | (x >> 13));
}

inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  std::uint32_t o = std::uint32_t(h & 0x7fffu) << 13;
  const std::uint32_t exp = o & 0x0f800000u;
  o += 0x38000000u;  // rebias exponent by +112
  if (exp == 0x0f800000u) {
    o += 0x38000000u;  // inf/nan: exponent all ones
  } else if (exp == 0) {
    o = bits_of(float_of(o + 0x00800000u) - float_of(0x38800000u));  // subnormal: renormalise
  }
  return float_of(o | sign);
}

}  // namespace cpu
}  // namespace fhsdk
