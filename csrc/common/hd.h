// Host/device portability macro shared by every per-element math header.
// Per-element math lives in headers marked CHANSIM_HD so the CUDA kernels and
// the CPU path compile the very same code (one implementation of each formula).
#pragma once

#if defined(__CUDACC__)
#define CHANSIM_HD __host__ __device__ __forceinline__
#else
#define CHANSIM_HD inline
#endif
