/* Convolution and pooling kernels and nodes (NHWC activations, HWIO kernels). */
#ifndef NNCORE_CONV_H
#define NNCORE_CONV_H
#include "nncore/nnc_core.h"
#include "nncore/nnc_engine.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
