/* Recurrent gate kernels for avx512: the shared template rnn/rnn_gates_tmpl.h compiled with this
 * ISA's target attribute, so its unit loops (including the polynomial exp) vectorise for it. */
#include "common/internal.h"
#if NNC_X86
#define NNC_RNN_ATTR NNC_TARGET_AVX512
#define NNC_RNN_FN(name) name##__avx512
#include "rnn/rnn_gates_tmpl.h"
#else
#include "rnn/rnn_internal.h"
const nnc_rnn_kernels nnc_rnn_kernels__avx512 = {0};
#endif
