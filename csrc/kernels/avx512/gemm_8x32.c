/* nnc_f32_gemm_ukernel_8x32__avx512: 8 rows x 32 columns, 16 zmm accumulators.
 * Zen5 has two 512-bit FMA pipes (4-cycle latency), so >= 8 independent accumulators are
 * needed; 16 leave margin, and 2 B loads + 8 broadcasts per 16 FMAs keep the load ports below
 * their limit. Probe on Zen5 (L1-resident panels, KC 128-512): 6x32, 8x32, 12x32 and 14x32 all
 * reach about 260 GFLOP/s, twice the 6x16 AVX2 kernel (130) and OpenBLAS's Haswell kernels that
 * NumPy uses here (~125); 8x32 wastes fewer rows on ragged M than 12/14 and keeps registers for
 * the epilogue. See gemm_mrx32.h for the layout. */
#define NNC_UK_NAME nnc_f32_gemm_ukernel_8x32__avx512
#define NNC_UK_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#include "gemm_mrx32.h"
