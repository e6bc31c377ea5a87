"""Several devices write disjoint boxes of one tensor, the host reads it whole:
in one context, across contexts, through the unified and the discrete paths."""

import numpy as np
import pytest

from clnn.box import Box
from clnn.runtime import contexts_for
from clnn.runtime.memory import SharedTensor
from clnn.schedule import Coherence, Schedule

SHAPES = [(1, 7, 13, 5), (3, 13, 7, 1), (2, 4, 1, 9)]
SHARES = [(0.5, 0.5), (0.3, 0.7), (0.0, 1.0), (1.0, 0.0), (0.9, 0.1)]


def _bounds(extent, shares):
    cut = int(round(extent * shares[0]))
    return [(0, cut), (cut, extent)]


def _scale_split(devices, shape, dim, shares, grouping, memory, x):
    """y = x + x written by each device on its share of ``dim``; returns y
    as the host sees it and the schedule that made it."""
    contexts = contexts_for(devices, grouping=grouping, memory=memory)
    context_of = {d.id: c for c in contexts for d in c.devices}
    src = SharedTensor(shape, contexts, "x")
    dst = SharedTensor(shape, contexts, "y")
    dst.home[...] = np.nan  # an unwritten element must show
    src.home[...] = x
    schedule = Schedule()
    coherence = Coherence(schedule)
    coherence.host_wrote(src, src.whole())
    extent = Box.whole(shape).range(dim)[1]
    for device, (lo, hi) in zip(devices, _bounds(extent, shares)):
        box = Box.whole(shape).with_range(dim, lo, hi)
        if box.empty:
            continue
        ctx = context_of[device.id]
        deps = coherence.need(src, box, ctx, device)
        n, c, h, w = shape
        count = box.count(w)
        args = [dst.buffer(ctx), np.int32(0), np.int32(c * h * w),
                src.buffer(ctx), np.int32(0), np.int32(c * h * w),
                src.buffer(ctx), np.int32(0), np.int32(c * h * w),
                np.int32(1), np.int32(0), np.int32(0), np.float32(0), np.float32(0),
                np.int32(h), np.int32(w), np.int32(box.n0), np.int32(box.c0), np.int32(box.h0),
                np.int32(box.c1 - box.c0), np.int32(box.h1 - box.h0), np.int32(count)]
        bound = ctx.bind("eltwise", "clnn_eltwise_box", (), args)

        def enqueue(wait_for, ctx=ctx, device=device, count=count, bound=bound):
            return ctx.launch(ctx.queue(device), bound, (count,), None, wait_for)

        cmd = schedule.add(ctx, device, enqueue, deps, "kernel", f"scale {box}")
        coherence.wrote(dst, box, ctx, device, cmd)
    final = coherence.need_on_host(dst, dst.whole())
    events = [None] * len(schedule.commands)
    schedule.run(events)
    for index in final:
        events[index].wait()
    for e in events:
        e.wait()
    return dst.home.copy(), schedule


@pytest.mark.parametrize("grouping", ["platform", "device"])
@pytest.mark.parametrize("memory", ["auto", "discrete"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dim", ["n", "c", "h"])
def test_two_devices_write_one_tensor(pair, rng, grouping, memory, shape, dim):
    x = rng.standard_normal(shape).astype(np.float32) + 0.5
    for shares in SHARES:
        y, schedule = _scale_split(pair, shape, dim, shares, grouping, memory, x)
        np.testing.assert_array_equal(y, x + x, err_msg=f"shares {shares}")


def test_discrete_path_copies_only_what_crosses(pair, rng):
    """With resident buffers, the input goes in and each device's own share
    comes out: exactly one copy each way per share, no more."""
    shape = (1, 6, 5, 4)
    x = rng.standard_normal(shape).astype(np.float32)
    _, schedule = _scale_split(pair, shape, "c", (0.5, 0.5), "device", "discrete", x)
    kinds = [c.kind for c in schedule.commands]
    assert kinds.count("kernel") == 2
    assert kinds.count("to_device") == 2
    assert kinds.count("to_host") == 2
    moved = sum(c.detail["bytes"] for c in schedule.commands if c.kind == "to_host")
    assert moved == x.nbytes


def test_unified_path_moves_nothing(pair, rng):
    shape = (2, 3, 4, 5)
    x = rng.standard_normal(shape).astype(np.float32)
    contexts = contexts_for(pair, grouping="device", memory="auto")
    if not all(c.unified for c in contexts):
        pytest.skip("these devices are not unified-memory devices")
    _, schedule = _scale_split(pair, shape, "h", (0.5, 0.5), "device", "auto", x)
    assert [c.kind for c in schedule.commands] == ["kernel", "kernel"]


def test_contiguous_boxes_copy_as_one_run():
    """Whole rows merge channels, whole channels merge batch items: a dense
    layer's (N, F, 1, 1) output crosses as one run, not F runs of 4 bytes."""
    from clnn.box import geometry
    assert geometry(Box(0, 2, 3, 7, 0, 1), (2, 10, 1, 1)).region == (16, 2, 1)
    assert geometry(Box(1, 2, 0, 10, 0, 1), (2, 10, 1, 1)).region == (40, 1, 1)
    assert geometry(Box(1, 2, 0, 10, 0, 1), (2, 10, 1, 1)).offset == 40
    assert geometry(Box(0, 1, 2, 3, 1, 4), (1, 5, 6, 7)).region == (84, 1, 1)
