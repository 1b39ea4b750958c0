"""nncore: a fast CPU neural-network engine with the Keras API.

    import nncore as nn
    model = nn.Sequential([nn.layers.Dense(64, activation="relu", input_shape=(30,)),
                           nn.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=10, batch_size=32, validation_data=(xv, yv))
"""
__version__ = "0.1.0"

try:
    from . import _kernels  # noqa: F401  (initialises ISA dispatch)
except ImportError as _e:  # the source tree has no compiled core: say so, not "circular import"
    import os as _os
    _here = _os.path.dirname(_os.path.abspath(__file__))
    if not any(f.startswith("_kernels") and f.endswith((".so", ".pyd")) for f in _os.listdir(_here)):
        raise ImportError(
            f"nncore is being imported from its source folder ({_here}), which has no compiled "
            f"core: run Python from another folder to use the installed nncore, or build in "
            f"place with `pip install -e .`") from None
    raise
from ._config import config, get_num_threads, set_num_threads, show_config, threads
from . import activations, callbacks, datasets, initializers, layers, losses, metrics, ops, optimizers, utils
from . import models
from . import explain
from .layers import Input
from .models import Model, Sequential

__all__ = ["Sequential", "Model", "Input", "layers", "models", "ops", "activations", "losses", "optimizers",
           "metrics", "callbacks", "initializers", "utils", "config", "show_config",
           "get_num_threads", "set_num_threads", "threads"]


def __getattr__(name):
    # Modules with optional dependencies load on first use: nn.onnx (onnx), nn.sklearn
    # (scikit-learn), nn.plotting (matplotlib); `import nncore` never needs them.
    if name in ("onnx", "sklearn", "plotting"):
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
