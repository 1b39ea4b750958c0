"""Threads and build/run-time configuration (nn.set_num_threads, nn.threads, nn.show_config)."""
import contextlib
import os
import platform
import sys

import numpy as np

from . import _kernels as K


_setting = [None]  # what the user asked for, so `threads` can restore it


def set_num_threads(n):
    """Set the number of threads nncore's kernels use. n=-1 means all available cores."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"set_num_threads expects an int, got {type(n).__name__}")
    n = int(n)
    if n != -1 and n < 1:
        raise ValueError(f"set_num_threads expects n >= 1 or n == -1, got {n}")
    K.set_num_threads(0 if n == -1 else n)
    _setting[0] = n


def get_num_threads():
    """Threads nncore uses now (honours OMP_NUM_THREADS, the CPU affinity mask and threadpoolctl)."""
    return K.get_num_threads()


@contextlib.contextmanager
def threads(n):
    """Temporarily use n threads: `with nn.threads(1): model.fit(...)`."""
    old = _setting[0]
    set_num_threads(n)
    try:
        yield
    finally:
        _setting[0] = old
        K.set_num_threads(0 if old in (None, -1) else old)


def config():
    """Build and run-time configuration as a dict."""
    from . import __version__
    mr, nr, kc = K.gemm_blocking() if hasattr(K, "gemm_blocking") else (0, 0, 0)
    build = K.build_info() if hasattr(K, "build_info") else {}
    return {
        "version": __version__,
        **build,
        "openmp_runtime": _openmp_runtime() if K.openmp_enabled() else None,
        "isa": K.isa_name(),
        "isa_forced": os.environ.get("NNCORE_ISA") or None,
        "isa_available": [i for i in ("generic", "avx2", "avx512") if K.isa_supported(i)],
        "openmp": K.openmp_enabled(),
        "openmp_flag": K.openmp_how(),
        "threads": K.get_num_threads(),
        "default_threads": K.default_num_threads(),
        "gemm_mr": mr, "gemm_nr": nr, "gemm_kc": kc,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def _openmp_runtime():
    """'path (version)' of the OpenMP library nncore uses, via threadpoolctl when installed."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    libs = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "openmp"]
    if not libs:
        return None
    # a repaired wheel bundles its own copy (nncore.libs/...); prefer it over other packages' runtimes
    lib = next((i for i in libs if "nncore" in (i.get("filepath") or "")), libs[0])
    return lib.get("filepath") + (f" (version {lib['version']})" if lib.get("version") else "")


def show_config(file=None):
    """Print version, build metadata, ISA in use, OpenMP, thread count and GEMM block sizes."""
    c = config()
    lines = [
        f"nncore {c['version']}",
        f"  built            : {c.get('build_date', '?')} with {c.get('compiler', '?')} "
        f"(numpy {c.get('built_with_numpy', '?')}, Cython {c.get('built_with_cython', '?')})",
        f"  ISA in use       : {c['isa']}" + (f" (forced by NNCORE_ISA={c['isa_forced']})" if c["isa_forced"] else ""),
        f"  ISAs available   : {', '.join(c['isa_available'])}",
        f"  OpenMP           : {'on (' + c['openmp_flag'] + ')' if c['openmp'] else 'OFF (serial build)'}",
    ] + ([f"  OpenMP runtime   : {c['openmp_runtime']}"] if c.get("openmp_runtime") else []) + [
        f"  threads          : {c['threads']} (default {c['default_threads']})",
        f"  GEMM blocking    : MR={c['gemm_mr']} NR={c['gemm_nr']} KC={c['gemm_kc']}",
        f"  python {c['python']}, numpy {c['numpy']}, {c['platform']}",
    ]
    print("\n".join(lines), file=file or sys.stdout)
