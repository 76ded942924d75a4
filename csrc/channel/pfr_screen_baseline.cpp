// Portable build of the PFR screening chord pass.
#define CHANSIM_KERNEL_NS baseline
#include "pfr_screen.inc"
