# The one extension module of nncore: thin wrappers over csrc/ (see DESIGN.md section 9).
# Each area keeps its wrappers in its own .pxi so that areas never edit the same file.
# Arrays are validated in the Python layer or in the def body here; the C calls run nogil.
cimport numpy as cnp
import numpy as np

cnp.import_array()

include "_core.pxi"
include "_gemm.pxi"
include "_elem.pxi"
include "_engine.pxi"
include "_conv.pxi"
include "_rnn.pxi"
include "_layers.pxi"
