"""Keras-named layers."""
from .base import Input, InputLayer, Layer
from .core import Activation, Dense

__all__ = ["Layer", "Input", "InputLayer", "Dense", "Activation"]
