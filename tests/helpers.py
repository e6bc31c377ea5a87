"""Shared by the op and model tests: run a model through the real executor
with poisoned outputs, force a kernel kind and tuning, measure errors; the
checks that slices of a model, on one device or two, equal the whole."""

from dataclasses import replace

import numpy as np
import pytest

from clnn import Model
from clnn.executor import Executor
from clnn.ops import Target
from clnn.plan import Placement, Plan

TOL = 1e-4   # relative error of a kernel against its numpy reference


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
    kernels on vectors of ``vector_width`` floats. The CPU kernels are not
    run on a GPU (the test is skipped): their register blocks spill to local
    memory, which the driver reserves for every thread the GPU can hold, 25 to
    60 GB per process on an H200, so that parallel test processes ran out of
    GPU memory; clnn itself never chooses them there."""
    if kind == "cpu" and device.kind == "gpu":
        pytest.skip(f"the CPU kernels run on CPU devices, not on {device.id}")
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


def case_model(case, name, rng, make=rand):
    """The model of a test case (rng -> (inputs, layers), the last layer's
    output the model's) named ``name``, and its feeds drawn by ``make``."""
    inputs, layers = case(rng)
    model = Model(inputs, layers, [layers[-1].name], name=name)
    return model, {k: make(rng, v) for k, v in inputs.items()}


def share_patterns(extent):
    """Whole to either side, one element, uneven, even."""
    return [(0.0, 1.0), (1.0, 0.0), (1.0 / extent, 1 - 1.0 / extent), (0.37, 0.63), (0.5, 0.5)]


def split_plan(model, pair, dim, shares):
    """Every layer that splits along ``dim`` shared over ``pair``, the others whole on its first."""
    placements = {}
    for layer in model.layers:
        if layer.is_view:
            continue
        if layer.splittable(dim):
            placements[layer.name] = Placement((pair[0].id, pair[1].id), shares, dim)
        else:
            placements[layer.name] = Placement.whole(pair[0].id)
    return Plan(model, placements, {d.id for d in pair})


def check_reference(model, feeds, device, **kernels):
    """The whole model on ``device`` matches the reference. ``kernels``:
    run's kind, tuning, vector_width."""
    (actual,) = run(model, feeds, Plan.single(model, device), [device], **kernels)
    assert rel_err(actual, model.reference(feeds)[0]) < TOL


def check_input_boxes(model, feeds, device, **kernels):
    """Two slices along each dimension on one device with resident buffers
    match the reference: only the input box each slice declares is copied
    in before it runs (the rest is NaN, and Oclgrind flags the read), so a
    kernel reading past it shows. ``kernels``: run's kind, tuning, vector_width."""
    expected = model.reference(feeds)[0]
    for dim in ("c", "h", "n"):
        plan = split_plan(model, (device, device), dim, (0.4, 0.6))
        (actual,) = run(model, feeds, plan, [device], memory="discrete", **kernels)
        assert rel_err(actual, expected) < TOL, dim


def check_slices(model, feeds, pair, grouping, memory, kind=None, tuning=None, patterns=share_patterns):
    """The whole on one device matches the reference; every share pattern
    (``patterns(extent)``) of every splittable dimension over ``pair`` gives the whole."""
    (whole,) = run(model, feeds, Plan.single(model, pair[0]), [pair[0]], kind=kind, tuning=tuning)
    assert rel_err(whole, model.reference(feeds)[0]) < TOL
    # slices on devices of one make compute as the whole does; another
    # device (a GPU beside the CPU) rounds its own way
    tolerance = 1e-6 if pair[0].name == pair[1].name else TOL
    for dim in ("n", "c", "h"):
        splittable = [layer for layer in model.layers if not layer.is_view and layer.splittable(dim)]
        if not splittable:
            continue
        extent = max(layer.out_shape["nch".index(dim)] for layer in splittable)
        for shares in patterns(extent):
            (split,) = run(model, feeds, split_plan(model, pair, dim, shares), list(pair),
                           grouping=grouping, memory=memory, kind=kind, tuning=tuning)
            assert rel_err(split, whole) < tolerance, (dim, shares)


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
