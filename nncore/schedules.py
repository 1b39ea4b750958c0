"""Learning-rate schedules with Keras 3's names and formulas (`nn.optimizers.schedules`).

A schedule maps the optimizer's step (0 for the first update) to a learning rate. Every
schedule here is vectorised: `schedule(np.arange(first, first + n))` returns the rates of a whole
chunk of steps in one call, which is how the optimizer feeds the C training loop."""
import math

import numpy as np


class LearningRateSchedule:
    """Base class: subclasses implement `__call__(step)` for scalar or array steps."""

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        cfg = dict(config)
        cfg.pop("name", None)
        return cls(**cfg)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


def _steps(step):
    s = np.asarray(step, dtype=np.float64)
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError("learning-rate schedule: steps must be finite and >= 0")
    return s


def _out(v, step):
    return float(v) if np.ndim(step) == 0 else np.asarray(v, dtype=np.float64)


def _positive(name, **kw):
    for k, v in kw.items():
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not v > 0 \
                or not math.isfinite(v):
            raise ValueError(f"{name}: {k} must be a positive number, got {v!r}")


class ExponentialDecay(LearningRateSchedule):
    """initial_learning_rate * decay_rate ** (step / decay_steps), floored when staircase."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name="ExponentialDecay"):
        _positive("ExponentialDecay", initial_learning_rate=initial_learning_rate, decay_steps=decay_steps,
                  decay_rate=decay_rate)
        self.initial_learning_rate, self.decay_steps = float(initial_learning_rate), float(decay_steps)
        self.decay_rate, self.staircase, self.name = float(decay_rate), bool(staircase), name

    def __call__(self, step):
        p = _steps(step) / self.decay_steps
        if self.staircase:
            p = np.floor(p)
        return _out(self.initial_learning_rate * np.power(self.decay_rate, p), step)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class InverseTimeDecay(LearningRateSchedule):
    """initial_learning_rate / (1 + decay_rate * step / decay_steps), floored when staircase."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name="InverseTimeDecay"):
        _positive("InverseTimeDecay", initial_learning_rate=initial_learning_rate, decay_steps=decay_steps)
        if not decay_rate >= 0:
            raise ValueError(f"InverseTimeDecay: decay_rate must be >= 0, got {decay_rate!r}")
        self.initial_learning_rate, self.decay_steps = float(initial_learning_rate), float(decay_steps)
        self.decay_rate, self.staircase, self.name = float(decay_rate), bool(staircase), name

    def __call__(self, step):
        p = _steps(step) / self.decay_steps
        if self.staircase:
            p = np.floor(p)
        return _out(self.initial_learning_rate / (1.0 + self.decay_rate * p), step)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """values[0] while step <= boundaries[0], values[1] while boundaries[0] < step <= boundaries[1],
    ..., values[-1] after the last boundary."""

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        b = [float(x) for x in boundaries]
        v = [float(x) for x in values]
        if len(v) != len(b) + 1:
            raise ValueError(f"PiecewiseConstantDecay: values must have one more element than boundaries, "
                             f"got {len(v)} values for {len(b)} boundaries")
        if any(b2 <= b1 for b1, b2 in zip(b, b[1:])):
            raise ValueError("PiecewiseConstantDecay: boundaries must be strictly increasing")
        self.boundaries, self.values, self.name = b, v, name
        self._b, self._v = np.array(b), np.array(v)

    def __call__(self, step):
        i = np.searchsorted(self._b, _steps(step), side="left")
        return _out(self._v[i], step)

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Keras 3's cosine decay with optional linear warmup: from initial_learning_rate up to
    warmup_target over warmup_steps, then cosine from warmup_target (or initial_learning_rate
    without warmup) down to alpha times it over decay_steps, then constant."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay", warmup_target=None,
                 warmup_steps=0):
        if not initial_learning_rate >= 0:
            raise ValueError(f"CosineDecay: initial_learning_rate must be >= 0, got {initial_learning_rate!r}")
        _positive("CosineDecay", decay_steps=decay_steps)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"CosineDecay: alpha must be in [0, 1], got {alpha!r}")
        if warmup_steps < 0:
            raise ValueError(f"CosineDecay: warmup_steps must be >= 0, got {warmup_steps!r}")
        if warmup_target is not None and warmup_steps == 0:
            raise ValueError("CosineDecay: warmup_target needs warmup_steps > 0")
        self.initial_learning_rate, self.decay_steps, self.alpha = float(initial_learning_rate), float(decay_steps), float(alpha)
        self.warmup_target = None if warmup_target is None else float(warmup_target)
        self.warmup_steps, self.name = float(warmup_steps), name

    def _decay(self, s, start):
        cosine = 0.5 * (1.0 + np.cos(np.pi * s / self.decay_steps))
        return start * ((1.0 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        s = _steps(step)
        if self.warmup_target is None:
            return _out(self._decay(np.minimum(s, self.decay_steps), self.initial_learning_rate), step)
        s = np.minimum(s, self.decay_steps + self.warmup_steps)
        warm = (self.warmup_target - self.initial_learning_rate) * (s / self.warmup_steps) + self.initial_learning_rate
        dec = self._decay(s - self.warmup_steps, self.warmup_target)
        return _out(np.where(s < self.warmup_steps, warm, dec), step)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


_CLASSES = {c.__name__: c for c in (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay, CosineDecay)}


def serialize(schedule):
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config):
    cls = _CLASSES.get(config.get("class_name"))
    if cls is None:
        raise ValueError(f"unknown learning-rate schedule {config.get('class_name')!r}")
    return cls.from_config(config.get("config", {}))
