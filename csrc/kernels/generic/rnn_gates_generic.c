/* Recurrent gate kernels for generic: the shared template rnn/rnn_gates_tmpl.h compiled with this
 * ISA's target attribute, so its unit loops (including the polynomial exp) vectorise for it. */
#include "common/internal.h"
#define NNC_RNN_ATTR 
#define NNC_RNN_FN(name) name##__generic
#include "rnn/rnn_gates_tmpl.h"
