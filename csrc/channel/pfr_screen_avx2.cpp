// Compiled with -mavx2 (no FMA: -ffp-contract=off keeps every rounding step).
#define CHANSIM_KERNEL_NS avx2
#include "pfr_screen.inc"
