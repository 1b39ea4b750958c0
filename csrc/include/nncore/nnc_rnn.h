/* Recurrent kernels and nodes: LSTM, GRU, SimpleRNN (time-major inside, Keras layouts). */
#ifndef NNCORE_RNN_H
#define NNCORE_RNN_H
#include "nncore/nnc_core.h"
#include "nncore/nnc_engine.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
