#!/usr/bin/env bash
# The C core under AddressSanitizer and UndefinedBehaviorSanitizer: builds a copy of the tree with
# NNCORE_SANITIZE=address,undefined, then runs the kernel and model tests against it at every ISA
# the CPU has (NNCORE_ISA=generic|avx2|avx512; the kernel tests also switch ISA through a fixture).
# Any sanitizer report fails the run (-fno-sanitize-recover, halt_on_error). Leak detection is off:
# CPython and NumPy keep allocations alive until exit, which LeakSanitizer reports as leaks.
#   PYTHON=.venv/bin/python tools/sanitize.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
case "$PY" in */*) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")" ;; esac
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$PY" -m pip install -q cython setuptools > /dev/null
mkdir "$WORK/src"
cp -r setup.py pyproject.toml nncore csrc tests "$WORK/src/"
rm -f "$WORK/src"/nncore/*.so "$WORK/src/nncore/_kernels.c"
(cd "$WORK/src" && NNCORE_SANITIZE=address,undefined "$PY" setup.py -q build_ext --inplace -j 2 > "$WORK/build.log" 2>&1) \
    || { tail -30 "$WORK/build.log"; exit 1; }
RT="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
TESTS=(tests/test_gemm.py tests/test_conv.py tests/test_pool.py tests/test_rnn.py tests/test_rnn_masking.py
       tests/test_elem.py tests/test_layers_norm.py tests/test_threadpool_sched.py tests/test_model.py
       tests/test_cnn_model.py tests/test_rnn_model.py tests/test_errors.py tests/test_saving.py tests/test_functional.py)
ISAS=$(cd "$WORK/src" && LD_PRELOAD="$RT" "$PY" -c "from nncore import _kernels as K; print(' '.join(i for i in ('generic', 'avx2', 'avx512') if K.isa_supported(i)))")
for isa in $ISAS; do
    echo "== sanitizers, NNCORE_ISA=$isa"
    rc=0
    (cd "$WORK/src" && LD_PRELOAD="$RT" NNCORE_ISA=$isa "$PY" -m pytest -q -p no:cacheprovider \
        "${TESTS[@]}" "$@" > "$WORK/out.txt" 2>&1) || rc=$?
    tail -3 "$WORK/out.txt"
    if [ "$rc" != 0 ] || grep -q "ERROR: AddressSanitizer\|runtime error:" "$WORK/out.txt"; then
        grep -m 20 -A 20 "ERROR: AddressSanitizer\|runtime error:" "$WORK/out.txt" || tail -40 "$WORK/out.txt"
        exit 1
    fi
done
echo "== sanitize: passed"
