// Error checking shared by the CUDA kernels: CUDA failures become std::runtime_error (pybind11 turns
// them into RuntimeError, which fhsdk/kernels.py re-raises as BackendUnavailableError where apt).
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace fhsdk {
namespace cuda {

inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("fhsdk CUDA error in ") + what + ": " + cudaGetErrorName(err) + " (" +
                             cudaGetErrorString(err) + ")");
}

inline unsigned int blocks_for(long long n, int threads) {
  long long b = (n + threads - 1) / threads;
  return static_cast<unsigned int>(b < 1 ? 1 : b);
}

}  // namespace cuda
}  // namespace fhsdk

#define FHSDK_CUDA_CHECK(expr) ::fhsdk::cuda::check((expr), #expr)
