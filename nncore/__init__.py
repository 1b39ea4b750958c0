"""nncore: a fast CPU neural-network engine with the Keras API."""
__version__ = "0.1.0"

from . import _kernels  # noqa: F401  (initialises ISA dispatch)
from ._config import config, get_num_threads, set_num_threads, show_config, threads
from . import ops

__all__ = ["config", "get_num_threads", "set_num_threads", "show_config", "threads", "ops"]
