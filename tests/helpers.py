"""Shared by the op and model tests: run a model through the real executor
with poisoned outputs, force a kernel profile, measure errors."""

import contextlib

import numpy as np

from clnn.executor import Executor
from clnn.ops import base


def rel_err(actual, expected):
    """max |actual - expected| / max |expected| (NaN counts as infinite)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        return np.inf
    scale = max(np.abs(expected).max(), 1e-30)
    diff = np.abs(actual - expected)
    return np.inf if np.isnan(diff).any() else diff.max() / scale


def run(model, feeds, plan, devices, layout=None, memory=None):
    """Outputs of one poisoned run of ``model`` under ``plan``."""
    executor = Executor(model, plan, devices, layout=layout, memory=memory)
    executor.poison()
    return executor.run(feeds)


@contextlib.contextmanager
def kernels_for(kind):
    """Run the kernels tuned for ``kind`` ("cpu" or "gpu") whatever the device."""
    original = base.Profile.of
    base.Profile.of = classmethod(lambda cls, device: cls(kind, device.compute_units, 32768, 256))
    try:
        yield
    finally:
        base.Profile.of = original


def rand(rng, shape, scale=1.0):
    """Random data, never zeros: normal values shifted away from 0."""
    x = rng.standard_normal(shape)
    return (scale * (x + np.sign(x) * 0.1)).astype(np.float32)


def ancestors(commands, index):
    """Indices of the schedule commands that ``commands[index]`` waits for,
    directly or not."""
    found, todo = set(), [index]
    while todo:
        for dep in commands[todo.pop()].deps:
            if dep not in found:
                found.add(dep)
                todo.append(dep)
    return found
