// Portable build of the DQ tile loops (SSE2 on x86-64).
#define CHANSIM_KERNEL_NS baseline
#include "dq_kernels.inc"
