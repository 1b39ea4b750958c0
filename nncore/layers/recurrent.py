"""Recurrent layers with Keras's names, defaults, weight layouts and gate orders:
LSTM (i, f, c, o), GRU (z, r, h; reset_after=True by default), SimpleRNN, and Bidirectional.

In a Sequential each layer is one C node (nncore/_rnn.pxi); called directly on an array
(`layer(x, initial_state=..., training=...)`) it runs through nn.ops, which is where
return_state and initial states are available (a Sequential has one tensor between layers)."""
import numpy as np

from .. import _kernels as K
from .. import activations, initializers, utils
from ..ops import rnn as rops
from .base import Layer, _default_name

__all__ = ["LSTM", "GRU", "SimpleRNN", "Bidirectional"]

_UNSUPPORTED_NONE = ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
                     "activity_regularizer", "kernel_constraint", "recurrent_constraint",
                     "bias_constraint")


def _rnn_act(name, what, cls):
    canon = activations.serialize(name)
    if canon not in rops.RNN_ACTIVATIONS:
        raise ValueError(f"{cls}: {what} {name!r} is not supported by the recurrent kernels; "
                         f"use one of {sorted(rops.RNN_ACTIVATIONS)}")
    return canon




def _node_states(ref, cell, ndir):
    """Copies of the states kept by the stateful C node that runs a layer (its directions in
    order, [h, c] each for LSTM), or None while no built model runs it."""
    if ref is None or ref[0]._engine is None:
        return None
    model, i = ref
    out = []
    for d in range(ndir):
        h, c = K.rnn_get_state(model._engine, i, d, model._batch_size, cell.units,
                               cell._kind == "lstm")
        out += [h] if c is None else [h, c]
    return out


def _reset_node(ref):
    if ref is not None and ref[0]._engine is not None:
        K.rnn_reset_state(ref[0]._engine, ref[1])


def _reject(cls, kwargs, names):
    bad = sorted(k for k in names if k in kwargs)
    if bad:
        raise TypeError(f"{cls}: unexpected keyword argument(s) {bad}")


class _RNNBase(Layer):
    _kind = None   # "lstm" | "gru" | "simple_rnn"
    _gates = 1

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", dropout=0.0, recurrent_dropout=0.0, seed=None,
                 return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 unroll=False, reset_after=True, unit_forget_bias=True, use_cudnn="auto",
                 zero_output_for_mask=False, **kwargs):
        cls = type(self).__name__
        for k in _UNSUPPORTED_NONE:
            if kwargs.get(k, None) is not None:
                raise ValueError(f"{cls}: {k} is not supported yet (got {kwargs[k]!r})")
            kwargs.pop(k, None)
        if kwargs.get("name") is None:  # Keras names: lstm, gru, simple_rnn
            kwargs["name"] = _default_name({"lstm": "Lstm", "gru": "Gru",
                                            "simple_rnn": "SimpleRnn"}[self._kind])
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"{cls}: units must be a positive int, got {units!r}")
        for name, v in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not (0.0 <= float(v) < 1.0):
                raise ValueError(f"{cls}: {name} must be in [0, 1), got {v!r}")
        self.units = int(units)
        self.activation = _rnn_act(activation, "activation", cls)
        self.recurrent_activation = _rnn_act(recurrent_activation, "recurrent_activation", cls)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.seed = seed
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        # Keras stateful: each batch starts from the states the previous one ended with (sample i
        # continues sample i); needs a fixed batch size. In a model the C node keeps the states;
        # called directly, the layer keeps them in _eager_states.
        self.stateful = bool(stateful)
        self._state_ref = None     # (model, node index) once a model runs this layer
        self._eager_states = None
        self.unroll = bool(unroll)  # accepted; the C loop is already as fast as unrolling
        self.reset_after = bool(reset_after)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.use_cudnn = use_cudnn
        # Keras: a masked step outputs the previous output (False) or zeros (True)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        # seed=None: drawn from nncore's generator, so nn.utils.set_random_seed fixes the dropout
        self._rng = np.random.default_rng(int(utils.rng().integers(0, 2**63 - 1)) if seed is None else seed)

    # ---- shapes and weights -------------------------------------------------------------
    def _check_input_shape(self, input_shape):
        if len(input_shape) != 2 or any(s is None for s in input_shape):
            raise ValueError(
                f"{type(self).__name__} {self.name!r} expects sequences of shape (timesteps, "
                f"features), got input shape (None, {', '.join(map(str, input_shape))})")
        return int(input_shape[0]), int(input_shape[1])

    def _bias_shape(self):
        GH = self._gates * self.units
        return (2, GH) if (self._kind == "gru" and self.reset_after) else (GH,)

    def build(self, input_shape):
        _, I = self._check_input_shape(input_shape)
        GH = self._gates * self.units
        self.add_weight("kernel", (I, GH), self.kernel_initializer)
        self.add_weight("recurrent_kernel", (self.units, GH), self.recurrent_initializer)
        if self.use_bias:
            b = self.add_weight("bias", self._bias_shape(), self.bias_initializer)
            if self._kind == "lstm" and self.unit_forget_bias:
                b[self.units:2 * self.units] = 1.0  # Keras: forget-gate bias starts at one

    def compute_output_shape(self, input_shape):
        T, _ = self._check_input_shape(input_shape)
        return (T, self.units) if self.return_sequences else (self.units,)

    @property
    def kernel(self):
        return self._weights[0]

    @property
    def recurrent_kernel(self):
        return self._weights[1]

    @property
    def bias(self):
        return self._weights[2] if self.use_bias else None

    def _ids(self):
        act = rops.RNN_ACTIVATIONS[self.activation]
        ract = rops.RNN_ACTIVATIONS[self.recurrent_activation] if self._kind != "simple_rnn" else 0
        return act, ract

    def _node_seed(self):
        return int(self._rng.integers(0, 2**63 - 1))

    def make_nodes(self, input_shape, params, grads):
        """One C node; Sequential wires a step mask into it (rnn_set_mask_source)."""
        if self.return_state:
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: return_state=True returns several tensors, "
                f"which a Sequential cannot pass on; call the layer directly "
                f"(outputs, *states = layer(x)) or use return_state=False")
        T, I = self._check_input_shape(input_shape)
        act, ract = self._ids()
        return [K.rnn_node(rops._CELL[self._kind], T, I, self.units, act, ract, self.use_bias,
                           self.reset_after, self.go_backwards, self.return_sequences,
                           self.dropout, self.recurrent_dropout, self._node_seed(), params,
                           grads)]

    # ---- eager call -------------------------------------------------------------------------
    def _masks(self, B, I, training):
        im = rm = None
        if training and self.dropout > 0:
            im = (self._rng.random((B, I)) >= self.dropout).astype(np.float32) / (1 - self.dropout)
        if training and self.recurrent_dropout > 0:
            rm = ((self._rng.random((B, self.units)) >= self.recurrent_dropout).astype(np.float32)
                  / (1 - self.recurrent_dropout))
        return im, rm

    # ---- stateful ---------------------------------------------------------------------------
    def _n_states(self):
        return 2 if self._kind == "lstm" else 1

    @property
    def states(self):
        """Stateful layers: copies of the kept states ([h, c] for LSTM, [h] otherwise), zeros
        after a reset; None for other layers (Keras)."""
        if not self.stateful:
            return None
        kept = _node_states(self._state_ref, self, 1)
        if kept is not None:
            return kept
        return [np.array(s) for s in self._eager_states] if self._eager_states else None

    def reset_states(self):
        """Zero the kept states (Keras's reset_states / reset_state)."""
        if not self.stateful:
            raise AttributeError(f"{type(self).__name__} {self.name!r}: layer must be stateful")
        self._eager_states = None
        _reset_node(self._state_ref)

    reset_state = reset_states

    def call(self, inputs, initial_state=None, mask=None, training=False):
        """Runs the layer on an array [batch, timesteps, features] (NumPy in, NumPy out);
        mask [batch, timesteps] (True = a real step) skips the other steps as Keras does."""
        x = np.asarray(inputs, dtype=np.float32)
        if x.ndim != 3:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects a 3-D input "
                             f"[batch, timesteps, features], got shape {x.shape}")
        if not self.built:
            self._build_once(x.shape[1:])
        im, rm = self._masks(x.shape[0], x.shape[2], training)
        stateful = self.stateful and initial_state is None
        if stateful and self._eager_states is not None:
            if self._eager_states[0].shape[0] != x.shape[0]:
                raise ValueError(f"{type(self).__name__} {self.name!r} is stateful with a batch of "
                                 f"{self._eager_states[0].shape[0]}; got a batch of {x.shape[0]} "
                                 f"(call reset_states() to start over)")
            initial_state = self._eager_states
        kw = dict(initial_state=initial_state, return_sequences=self.return_sequences,
                  return_state=self.return_state or stateful, go_backwards=self.go_backwards,
                  activation=self.activation, dropout_mask=im, recurrent_dropout_mask=rm,
                  mask=mask, zero_output_for_mask=self.zero_output_for_mask)
        if self._kind != "simple_rnn":
            kw["recurrent_activation"] = self.recurrent_activation
        if self._kind == "gru":
            kw["reset_after"] = self.reset_after
        out = getattr(rops, self._kind)(x, self.kernel, self.recurrent_kernel, self.bias, **kw)
        if not stateful:
            return out
        self._eager_states = out[1:]
        return out if self.return_state else out[0]

    def get_config(self):
        cfg = {**super().get_config(), "units": self.units, "activation": self.activation,
               "use_bias": self.use_bias,
               "kernel_initializer": initializers.serialize(self.kernel_initializer),
               "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
               "bias_initializer": initializers.serialize(self.bias_initializer),
               "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
               "seed": self.seed, "return_sequences": self.return_sequences,
               "return_state": self.return_state, "go_backwards": self.go_backwards,
               "stateful": self.stateful, "unroll": self.unroll,
               "zero_output_for_mask": self.zero_output_for_mask}
        if self._kind != "simple_rnn":
            cfg["recurrent_activation"] = self.recurrent_activation
        return cfg


class LSTM(_RNNBase):
    """Long Short-Term Memory (Keras `LSTM`): kernel (features, 4*units), recurrent_kernel
    (units, 4*units), bias (4*units), gate order i, f, c, o."""
    _kind = "lstm"
    _gates = 4

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, use_cudnn="auto", **kwargs):
        _reject("LSTM", kwargs, ("reset_after",))
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation,
                         use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, unit_forget_bias=unit_forget_bias,
                         dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed,
                         return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                         use_cudnn=use_cudnn, **kwargs)

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


class GRU(_RNNBase):
    """Gated Recurrent Unit (Keras `GRU`): kernel (features, 3*units), recurrent_kernel
    (units, 3*units), bias (2, 3*units) with reset_after=True (default) else (3*units); gate
    order z, r, h; h = z * h_prev + (1 - z) * h~."""
    _kind = "gru"
    _gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", dropout=0.0, recurrent_dropout=0.0, seed=None,
                 return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 unroll=False, reset_after=True, use_cudnn="auto", **kwargs):
        _reject("GRU", kwargs, ("unit_forget_bias",))
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation,
                         use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, dropout=dropout,
                         recurrent_dropout=recurrent_dropout, seed=seed,
                         return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                         reset_after=reset_after, use_cudnn=use_cudnn, **kwargs)

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}


class SimpleRNN(_RNNBase):
    """Fully connected RNN (Keras `SimpleRNN`): h_t = activation(x_t W + h_{t-1} U + b)."""
    _kind = "simple_rnn"
    _gates = 1

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", dropout=0.0, recurrent_dropout=0.0, seed=None,
                 return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 unroll=False, **kwargs):
        _reject("SimpleRNN", kwargs, ("recurrent_activation", "reset_after", "unit_forget_bias",
                                      "use_cudnn"))
        super().__init__(units, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, dropout=dropout,
                         recurrent_dropout=recurrent_dropout, seed=seed,
                         return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll, **kwargs)


_MERGE = {"concat": 0, "sum": 1, "mul": 2, "ave": 3}


class Bidirectional(Layer):
    """Keras `Bidirectional(layer, merge_mode="concat")`: runs `layer` forward and a copy of it
    backward in time (outputs re-aligned to input order) and merges them (concat, sum, mul,
    ave). Weights: the forward layer's, then the backward layer's (Keras order)."""

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        if not isinstance(layer, _RNNBase):
            raise ValueError(f"Bidirectional wraps an LSTM, GRU or SimpleRNN layer, got {layer!r}")
        if merge_mode is not None and merge_mode not in _MERGE:
            raise ValueError(f"Bidirectional: merge_mode must be one of {sorted(_MERGE)} or None "
                             f"(the two outputs unmerged), got {merge_mode!r}")
        if layer.return_state:
            raise ValueError("Bidirectional: return_state=True is not supported")
        self.forward_layer = None
        self.backward_layer = None
        super().__init__(**kwargs)
        cfg = layer.get_config()
        cfg.pop("batch_input_shape", None)
        if layer._input_shape_arg is not None and self._input_shape_arg is None:
            self._input_shape_arg = layer._input_shape_arg
        if backward_layer is None:
            cfg_b = dict(cfg, name=f"backward_{layer.name}", go_backwards=not layer.go_backwards)
            backward_layer = type(layer)(**cfg_b)
        elif (type(backward_layer) is not type(layer)
              or backward_layer.units != layer.units
              or backward_layer.return_sequences != layer.return_sequences
              or backward_layer.go_backwards == layer.go_backwards):
            raise ValueError("Bidirectional: backward_layer must be the same kind of layer with "
                             "the same units and return_sequences and the opposite go_backwards")
        cfg_f = dict(cfg, name=f"forward_{layer.name}")
        self.layer = layer
        self.forward_layer = type(layer)(**cfg_f)
        self.backward_layer = backward_layer
        for k in ("activation", "recurrent_activation", "use_bias", "reset_after", "dropout",
                  "recurrent_dropout", "stateful"):
            if getattr(backward_layer, k) != getattr(self.forward_layer, k):
                raise ValueError(f"Bidirectional: backward_layer {k} differs from the layer's")
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.stateful = layer.stateful
        self._state_ref = None
        self._initial_weights = weights
        # as Keras: masked steps of returned sequences are zeros in both directions
        for sub in (self.forward_layer, self.backward_layer):
            sub.zero_output_for_mask = sub.return_sequences

    @property
    def states(self):
        """Stateful: the forward layer's states, then the backward layer's (Keras)."""
        if not self.stateful:
            return None
        kept = _node_states(self._state_ref, self.forward_layer, 2)
        if kept is not None:
            return kept
        fs, bs = self.forward_layer.states, self.backward_layer.states
        return fs + bs if fs and bs else None

    def reset_states(self):
        if not self.stateful:
            raise AttributeError(f"Bidirectional {self.name!r}: layer must be stateful")
        for sub in (self.forward_layer, self.backward_layer):
            sub._eager_states = None
        _reset_node(self._state_ref)

    reset_state = reset_states

    # weights live in the two sub-layers; the model arena swaps in views through this property
    @property
    def _weights(self):
        if self.forward_layer is None:
            return []
        return list(self.forward_layer._weights) + list(self.backward_layer._weights)

    @_weights.setter
    def _weights(self, value):
        value = list(value)
        if self.forward_layer is None:
            return
        n = len(self.forward_layer._weights)
        self.forward_layer._weights = value[:n]
        self.backward_layer._weights = value[n:]

    @property
    def _specs(self):
        if self.forward_layer is None:
            return []
        return list(self.forward_layer._specs) + list(self.backward_layer._specs)

    @_specs.setter
    def _specs(self, value):
        pass  # derived from the sub-layers

    def build(self, input_shape):
        self.forward_layer._build_once(input_shape)
        self.backward_layer._build_once(input_shape)
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)

    def compute_output_shape(self, input_shape):
        out = self.forward_layer.compute_output_shape(input_shape)
        if self.merge_mode == "concat":
            out = out[:-1] + (2 * out[-1],)
        return out

    def make_nodes(self, input_shape, params, grads):
        if self.merge_mode is None:
            raise ValueError(f"Bidirectional {self.name!r}: merge_mode=None returns two tensors, "
                             f"which a Sequential cannot pass on; call the layer directly "
                             f"(y_forward, y_backward = layer(x)) or pick a merge mode")
        f = self.forward_layer
        T, I = f._check_input_shape(input_shape)
        act, ract = f._ids()
        return [K.birnn_node(rops._CELL[f._kind], T, I, f.units, act, ract, f.use_bias,
                             f.reset_after, f.go_backwards, f.return_sequences,
                             _MERGE[self.merge_mode], f.dropout, f.recurrent_dropout,
                             f._node_seed(), params, grads)]

    def call(self, inputs, initial_state=None, mask=None, training=False):
        """initial_state: the forward layer's states, then the backward layer's (Keras)."""
        x = np.asarray(inputs, dtype=np.float32)
        if x.ndim != 3:
            raise ValueError(f"Bidirectional expects a 3-D input, got shape {x.shape}")
        if not self.built:
            self._build_once(x.shape[1:])
        fs = bs = None
        if initial_state is not None:
            states = list(initial_state)
            half = len(states) // 2
            if len(states) % 2:
                raise ValueError(f"Bidirectional: initial_state needs the states of both "
                                 f"directions (an even count), got {len(states)}")
            fs, bs = states[:half], states[half:]
        yf = self.forward_layer(x, initial_state=fs, mask=mask, training=training)
        yb = self.backward_layer(x, initial_state=bs, mask=mask, training=training)
        if self.return_sequences:
            yb = yb[:, ::-1]
        if self.merge_mode is None:
            return [yf, yb]
        if self.merge_mode == "concat":
            return np.concatenate([yf, yb], axis=-1)
        if self.merge_mode == "sum":
            return yf + yb
        if self.merge_mode == "mul":
            return yf * yb
        return 0.5 * (yf + yb)

    def get_config(self):
        lc = self.layer.get_config()
        return {**super().get_config(), "merge_mode": self.merge_mode,
                "layer": {"class_name": type(self.layer).__name__, "config": lc}}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        lc = config.pop("layer")
        layer = {"LSTM": LSTM, "GRU": GRU, "SimpleRNN": SimpleRNN}[lc["class_name"]](**lc["config"])
        return cls(layer, **config)
