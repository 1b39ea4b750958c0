/* nncore public C API.
 *
 * Conventions: row-major float32, dimensions are int64_t, every function is safe to call
 * without the GIL and returns 0 or a negative NNC_E* code (only allocation can fail once the
 * Cython layer has validated the arguments). C never calls back into Python.
 * Each area has its own header so that the owners of conv, rnn, ... edit only their file. */
#ifndef NNCORE_NNC_H
#define NNCORE_NNC_H

#include "nncore/nnc_core.h"
#include "nncore/nnc_gemm.h"
#include "nncore/nnc_elem.h"
#include "nncore/nnc_engine.h"
#include "nncore/nnc_conv.h"
#include "nncore/nnc_rnn.h"
#include "nncore/nnc_layers.h"

#endif
