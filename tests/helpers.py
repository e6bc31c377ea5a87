"""Shared by the op and model tests: run a model through the real executor
with poisoned outputs, force a kernel kind and tuning, measure errors."""

from dataclasses import replace

import numpy as np

from clnn.executor import Executor
from clnn.ops import Target


def rel_err(actual, expected):
    """max |actual - expected| / max |expected| (NaN counts as infinite)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        return np.inf
    scale = max(np.abs(expected).max(), 1e-30)
    diff = np.abs(actual - expected)
    return np.inf if np.isnan(diff).any() else diff.max() / scale


def target(device, kind=None, tuning=None, vector_width=8):
    """The device's Target, with the kernels for ``kind`` ("cpu" or "gpu")
    whatever the device, and ``tuning`` (clnn.ops.Tuning) where given; CPU
    kernels on vectors of ``vector_width`` floats."""
    found = replace(Target.of(device, tuning), vector_width=vector_width)
    return replace(found, kind=kind) if kind else found


def run(model, feeds, plan, devices, grouping=None, memory=None, kind=None, tuning=None, vector_width=8):
    """Outputs of one poisoned run of ``model`` under ``plan`` (every tensor
    in memory of its own, so that the poison shows); ``kind``, ``tuning`` and
    ``vector_width`` choose the kernels (see ``target``)."""
    targets = {d.id: target(d, kind, tuning, vector_width) for d in devices}
    executor = Executor(model, plan, devices, grouping=grouping, memory=memory, targets=targets, share_memory=False)
    executor.poison()
    return executor.run(feeds)


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
