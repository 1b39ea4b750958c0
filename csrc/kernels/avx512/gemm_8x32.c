/* nnc_f32_gemm_ukernel_8x32__avx512: 8 rows x 32 columns, 16 zmm accumulators.
 * Zen5 has two 512-bit FMA pipes (4-cycle latency), so >= 8 independent accumulators are
 * needed; 16 leave margin, and 2 B loads + 8 broadcasts per 16 FMAs keep the load ports below
 * their limit. See gemm_mrx32.h for the layout. */
#define NNC_UK_NAME nnc_f32_gemm_ukernel_8x32__avx512
#define NNC_UK_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#include "gemm_mrx32.h"
