"""Optimizers with Keras's names, defaults and update formulas. The engine applies the update
to all parameters in one fused C call per step; these objects carry the hyper-parameters, the
learning rate (float or schedule) and the slot arrays (kept for saving and resuming)."""
import numpy as np

from . import schedules


class Optimizer:
    kind = None
    n_slots = 0

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {sorted(kwargs)}")
        if not callable(learning_rate):
            learning_rate = float(learning_rate)
            if not learning_rate > 0 or not np.isfinite(learning_rate):
                raise ValueError(f"learning_rate must be a positive number, got {learning_rate}")
        for k, v in (("weight_decay", weight_decay), ("clipnorm", clipnorm), ("clipvalue", clipvalue),
                     ("global_clipnorm", global_clipnorm)):
            if v is not None and not (float(v) >= 0):
                raise ValueError(f"{k} must be >= 0, got {v}")
        if clipnorm and global_clipnorm:
            raise ValueError("set at most one of clipnorm and global_clipnorm")
        self._learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.name = name or type(self).__name__.lower()
        self.iterations = 0
        self.slots = []

    @property
    def learning_rate(self):
        lr = self._learning_rate
        return float(lr(self.iterations)) if callable(lr) else lr

    @learning_rate.setter
    def learning_rate(self, value):
        if not callable(value):
            value = float(value)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{self.name}: learning_rate must be finite and >= 0, got {value}")
        self._learning_rate = value

    def learning_rates(self, first_step, n):
        """Learning rate of each of the next n steps (schedules are evaluated per step)."""
        lr = self._learning_rate
        if isinstance(lr, tuple(schedules._CLASSES.values())):  # ours take arrays: one call per chunk
            out = np.ascontiguousarray(lr(np.arange(first_step, first_step + n)), dtype=np.float32).reshape(n)
        elif callable(lr):  # functions and user schedules get a scalar step, as in Keras
            out = np.array([float(lr(first_step + i)) for i in range(n)], dtype=np.float32)
        else:
            out = np.full(n, lr, dtype=np.float32)
        # checked before the steps run: a NaN or negative rate would train to NaN weights
        ok = np.isfinite(out) & (out >= 0)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise ValueError(f"{self.name}: the learning rate for step {first_step + i} is {out[i]}; "
                             f"it must be finite and >= 0")
        return out

    def engine_config(self):
        return {"kind": self.kind, "weight_decay": self.weight_decay or 0.0, "clipnorm": self.clipnorm,
                "clipvalue": self.clipvalue, "global_clipnorm": self.global_clipnorm}

    def build(self, n_params):
        """Allocate the slot arrays (once per model)."""
        if len(self.slots) != self.n_slots or (self.slots and self.slots[0].size != n_params):
            self.slots = [np.zeros(n_params, dtype=np.float32) for _ in range(self.n_slots)]
            self.iterations = 0

    def get_config(self):
        lr = self._learning_rate
        return {"name": self.name, "learning_rate": lr if not callable(lr) else repr(lr),
                "weight_decay": self.weight_decay, "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm}


class SGD(Optimizer):
    kind = "sgd"

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"SGD: momentum must be in [0, 1], got {momentum}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.n_slots = 1 if self.momentum > 0 else 0

    def engine_config(self):
        return {**super().engine_config(), "momentum": self.momentum, "nesterov": self.nesterov}

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    kind = "adam"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        for k, v in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0.0 <= v < 1.0:
                raise ValueError(f"{type(self).__name__}: {k} must be in [0, 1), got {v}")
        if not epsilon > 0:
            raise ValueError(f"{type(self).__name__}: epsilon must be > 0, got {epsilon}")
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = float(beta_1), float(beta_2), float(epsilon), bool(amsgrad)
        self.n_slots = 3 if self.amsgrad else 2

    def engine_config(self):
        return {**super().engine_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay=weight_decay, **kwargs)


class RMSprop(Optimizer):
    kind = "rmsprop"

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"RMSprop: rho must be in [0, 1), got {rho}")
        self.rho, self.momentum, self.epsilon, self.centered = float(rho), float(momentum), float(epsilon), bool(centered)
        self.n_slots = 3

    def engine_config(self):
        return {**super().engine_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


_NAMES = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}


def get(identifier):
    """An Optimizer from a Keras name ('adam', 'sgd', 'rmsprop', 'adamw') or an Optimizer."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, str) and identifier.lower() in _NAMES:
        return _NAMES[identifier.lower()]()
    raise ValueError(f"unknown optimizer {identifier!r}; expected one of: {', '.join(sorted(_NAMES))}")
