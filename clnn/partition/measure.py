"""Measurements the partitioner calibrates with: what a launch costs on a
device, what a slice of a layer costs, what handing data from one device to
another costs. Kernel and copy times come from the queues' profiling
events; every figure is a median of several runs after a warm-up."""

import numpy as np

from ..executor import Executor
from ..graph import Graph, single_layer
from ..ops.eltwise import Activation
from ..plan import Placement, Plan
from ..timing import box_times, interleaved_medians, kernel_span, random_feeds, timeline_samples

RUNS = 5
# the shares measured on each layer: each split run times a share and its complement
SPLIT_SHARES = (0.25, 0.5)


def split_dim(layer):
    """The dimension a layer is measured and preferably split along."""
    return next((d for d in ("c", "h", "n") if layer.splittable(d)), None)


def slice_times(layer, device, runs=RUNS):
    """{share: seconds} of ``layer``'s kernels on ``device`` for its whole
    output and for slices of its preferred split dimension."""
    model = single_layer(layer)
    feeds = random_feeds(model)
    single = Executor(model, Plan.single(model, device), [device])
    whole = np.median(timeline_samples(single, feeds, runs, kernel_span))
    found = {1.0: float(whole)}
    dim = split_dim(layer)
    if dim is None:
        return found
    name = model.layers[0].name
    for share in SPLIT_SHARES:
        placement = Placement((device.id, device.id), (share, 1.0 - share), dim)
        boxes = placement.boxes(layer.out_shape, layer.granule(dim))
        if len(boxes) < 2:
            continue
        plan = Plan(model, {name: placement}, [device.id])
        executor = Executor(model, plan, [device])
        parts = np.median(timeline_samples(executor, feeds, runs, box_times), axis=0)
        extent = layer.out_shape["nch".index(dim)]
        for (_, box), seconds in zip(boxes, parts):
            lo, hi = box.range(dim)
            found[round((hi - lo) / extent, 4)] = float(seconds)
    return found


def _chain(length, shape):
    layers, x = [], "x"
    for i in range(length):
        layers.append(Activation(f"a{i}", x, "relu"))
        x = layers[-1].name
    return Graph({"x": shape}, layers, [x], fuse=False)


def launch_cost(device, runs=20, extra=64):
    """(seconds a dependent launch adds to a run, seconds a run costs with
    no work): from the wall times of runs of 1 and of 1 + ``extra`` tiny
    kernels, taken in turns. PoCL queues dependent launches for a few
    microseconds each, so ``extra`` must be large enough that their sum
    stands out of a run's wall-time noise (16 measured 0 on a busy host)."""
    executors, feeds = [], []
    for length in (1, 1 + extra):
        model = _chain(length, (1, 1, 1, 8))
        executors.append(Executor(model, Plan.single(model, device), [device]))
        feeds.append(random_feeds(model))
    (one, many), _ = interleaved_medians([lambda e=e, f=f: e.run(f) for e, f in zip(executors, feeds)], runs, 2)
    per_launch = max((many - one) / extra, 0.0)
    return per_launch, max(one - per_launch, 0.0)


def handoff(source, target, elements, grouping=None, memory=None, runs=RUNS):
    """Seconds between the end of a kernel on ``source`` and the start of a
    kernel on ``target`` that reads its ``elements`` float32 outputs: the
    bridge, the copies and the waits of handing data over."""
    model = _chain(2, (1, elements))
    plan = Plan(model, {"a0": Placement.whole(source.id), "a1": Placement.whole(target.id)},
                [source.id, target.id])
    executor = Executor(model, plan, [source, target], grouping, memory)

    def gap(timeline):
        kernels = {r["label"]: r for r in timeline if r["kind"] == "kernel"}
        return max(kernels["a1"]["start"] - kernels["a0"]["end"], 0) * 1e-9

    return float(np.median(timeline_samples(executor, random_feeds(model), runs, gap)))
