/* avx2 elementwise kernels (stub: generic until the vector version lands). */
#include "../../elem/vmath.h"
void nnc_elem_fill__avx2(nnc_elem_kernels *k) { (void)k; }
