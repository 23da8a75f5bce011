// Queries of the CUDA runtime that the bindings need without including CUDA headers.
#pragma once

#include <string>

namespace fhsdk {
namespace cuda {

// Number of usable CUDA devices; 0 with a reason in *why when there is no driver or no GPU.
int device_count(std::string* why);
// Makes `device` current for the calling thread; throws on CUDA errors.
void set_device(int device);
// Blocks until all work on `stream` (a cudaStream_t) is done; throws on CUDA errors.
void synchronize(void* stream);
// CUDA runtime version this module was built against, e.g. 13000.
int runtime_version();

}  // namespace cuda
}  // namespace fhsdk
