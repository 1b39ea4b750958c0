"""Keras-named layers."""
from .base import Input, InputLayer, Layer
from .core import Activation, Dense
from .recurrent import GRU, LSTM, Bidirectional, SimpleRNN

__all__ = ["Layer", "Input", "InputLayer", "Dense", "Activation",
           "LSTM", "GRU", "SimpleRNN", "Bidirectional"]
