"""Keras-named layers."""
from .base import Input, InputLayer, Layer
from .core import Activation, Dense, Masking
from .conv import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .reshaping import *  # noqa: F401,F403
from .recurrent import GRU, LSTM, Bidirectional, SimpleRNN
from .normalization import *  # noqa: F401,F403
from .regularization import *  # noqa: F401,F403
from .embedding import *  # noqa: F401,F403
from .merging import *  # noqa: F401,F403
from . import merging as _merging
from . import normalization as _normalization, regularization as _regularization, embedding as _embedding
from . import conv as _conv, pooling as _pooling, reshaping as _reshaping

__all__ = (["Layer", "Input", "InputLayer", "Dense", "Activation", "Masking", "LSTM", "GRU", "SimpleRNN", "Bidirectional"]
           + _conv.__all__ + _pooling.__all__ + _reshaping.__all__)
__all__ += _normalization.__all__ + _regularization.__all__ + _embedding.__all__
__all__ += _merging.__all__
