#include "ops/cuda/cuda_check.cuh"
#include "ops/cuda/cuda_device.h"

namespace fhsdk {
namespace cuda {

int device_count(std::string* why) {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    if (why) *why = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return 0;
  }
  if (n == 0 && why) *why = "no CUDA device found";
  return n;
}

void set_device(int device) { FHSDK_CUDA_CHECK(cudaSetDevice(device)); }

void synchronize(void* stream) { FHSDK_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream))); }

int runtime_version() { return CUDART_VERSION; }

}  // namespace cuda
}  // namespace fhsdk
