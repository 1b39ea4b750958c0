"""Build of nncore's single extension module, nncore._kernels (Cython + all of csrc/).

OpenMP is detected by compiling and running a tiny program (as scikit-learn's older
openmp_helpers did); without it the build still succeeds, serially, with a loud warning.
NNCORE_NO_OPENMP=1 forces the serial build. No -march=native and no -ffast-math: ISA kernels
carry target attributes and are chosen at run time (csrc/common/cpu.c).
"""
import glob
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time

import Cython
import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))

OMP_TEST = textwrap.dedent(
    """
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel num_threads(2) reduction(+:n)
        n += 1;
        printf("%d\\n", n);
        return n == 2 ? 0 : 1;
    }
    """
)


def _compiler():
    return os.environ.get("CC") or sysconfig.get_config_var("CC").split()[0] or "cc"


def openmp_flags():
    """(compile_args, link_args) for OpenMP, or ([], []) when it is missing."""
    if os.environ.get("NNCORE_NO_OPENMP", "") not in ("", "0"):
        return [], [], "disabled by NNCORE_NO_OPENMP"
    if sys.platform == "win32":
        return ["/openmp"], [], "msvc"
    candidates = [(["-fopenmp"], ["-fopenmp"])]
    if sys.platform == "darwin":
        candidates.append((["-Xpreprocessor", "-fopenmp"], ["-lomp"]))
    cc = _compiler()
    for cflags, lflags in candidates:
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "omp.c")
            exe = os.path.join(tmp, "omp")
            with open(src, "w") as f:
                f.write(OMP_TEST)
            try:
                # CFLAGS/LDFLAGS as the real build uses them (e.g. Homebrew libomp's paths on macOS)
                subprocess.run([cc, *shlex.split(os.environ.get("CFLAGS", "")), *cflags, src, "-o", exe,
                                *lflags, *shlex.split(os.environ.get("LDFLAGS", ""))], check=True,
                               capture_output=True, timeout=120)
                out = subprocess.run([exe], check=True, capture_output=True, timeout=60)
            except (OSError, subprocess.SubprocessError):
                continue
            if out.stdout.strip() == b"2":
                return cflags, lflags, " ".join(cflags)
    return [], [], "not found"


omp_c, omp_l, omp_how = openmp_flags()
if not omp_c and sys.platform != "win32":
    bar = "*" * 78
    print(f"\n{bar}\n* nncore: OpenMP {omp_how}: building SERIALLY (one thread). Install a\n"
          f"* compiler with OpenMP (gcc, or clang with libomp) for multi-threaded kernels.\n{bar}\n",
          file=sys.stderr)

sanitize = ""
if sys.platform == "win32":
    cflags = ["/O2"]
else:
    cflags = ["-O3", "-std=c11", "-fno-math-errno", "-fvisibility=hidden",
              "-Wall", "-Wno-unused-function", "-Wno-unknown-pragmas"]
    # NNCORE_SANITIZE=address,undefined (any -fsanitize= list): the C core built for the
    # sanitizers (tools/sanitize.sh runs the tests under it). NNCORE_DEBUG=1 means address,undefined.
    sanitize = os.environ.get("NNCORE_SANITIZE") or ("address,undefined" if os.environ.get("NNCORE_DEBUG") else "")
    if sanitize:
        cflags = ["-O1", "-g", "-std=c11", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all",
                  "-fsanitize=" + sanitize, "-Wall", "-Wno-unused-function", "-Wno-unknown-pragmas"]

sources = ["nncore/_kernels.pyx"] + sorted(glob.glob("csrc/**/*.c", recursive=True))

# Build metadata for nn.show_config(); SOURCE_DATE_EPOCH keeps reproducible builds reproducible.
build_date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH") or time.time())))
build_macros = [("NNCORE_BUILD_DATE", '"%s"' % build_date), ("NNCORE_BUILD_NUMPY", '"%s"' % np.__version__),
                ("NNCORE_BUILD_CYTHON", '"%s"' % Cython.__version__)]

directives = {
    "language_level": 3,
    "boundscheck": bool(os.environ.get("NNCORE_BOUNDSCHECK")),
    "wraparound": False,
    "initializedcheck": False,
    "cdivision": True,
    "embedsignature": True,
}

ext = Extension(
    "nncore._kernels",
    sources=sources,
    include_dirs=["csrc/include", "csrc", np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
                   ("NNCORE_OPENMP_HOW", '"%s"' % omp_how)] + build_macros,
    extra_compile_args=cflags + omp_c,
    extra_link_args=omp_l + (["-fsanitize=" + sanitize] if sanitize else []),
    depends=sorted(glob.glob("csrc/**/*.h", recursive=True)) + sorted(glob.glob("nncore/*.pxi")),
)

setup(ext_modules=cythonize([ext], compiler_directives=directives,
                            include_path=["nncore"], quiet=True))
