"""nncore: a fast CPU neural-network engine with the Keras API."""
__version__ = "0.1.0"

from . import _kernels  # noqa: F401  (initialises ISA dispatch)
