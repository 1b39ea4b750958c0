"""Kernels callable directly on NumPy arrays, for users who embed or benchmark them without the
layer classes. Every call validates its arguments like any public function."""
from .matmul import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .rnn import *  # noqa: F401,F403
from .matmul import __all__ as _a
from .conv import __all__ as _b
from .rnn import __all__ as _c

__all__ = list(_a) + list(_b) + list(_c)
