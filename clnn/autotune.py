"""Chooses a device's GPU kernel parameters (clnn.ops.Tuning) by timing them.

``autotune(device)`` starts from the device's current tuning and, one knob
at a time (GEMM tiles, work-groups per compute unit, Winograd, GEMV shapes),
times each candidate value on representative layer shapes, keeping the
value whose shapes run fastest in total. The result can go into
clnn.ops.tuning.TUNED under the device's name. ``layer_run`` and
``replay_seconds`` time one layer alone; benchmarks/gpu_kernels.py uses
them too.

    python -m clnn.autotune [--devices nvidia] [--runs 10]
"""

import argparse
import sys
from dataclasses import replace

import numpy as np

from .box import Box
from .errors import ClnnError, DeviceError
from .executor import Executor
from .graph import single_layer
from .ops import Conv2d, Dense, GemmTile, GemvShape, Target
from .plan import Plan
from .runtime import select
from .timing import random_feeds

T128, T64x128, T128x64, T64, T32 = (GemmTile(128, 128, 8, 8, 8), GemmTile(64, 128, 8, 4, 8),
                                    GemmTile(128, 64, 16, 8, 4), GemmTile(64, 64, 16, 4, 4),
                                    GemmTile(32, 32, 8, 4, 4))
# candidate values of each knob, tried in this order
KNOBS = {
    "conv_tiles": [(T128, T64x128, T64), (T128, T64), (T64x128, T64), (T128x64, T64x128, T64), (T64,),
                   (T128, T64x128, T64, T32)],
    "wg_per_cu": [1, 2, 4],
    "winograd": [4, 2, 0],
    "winograd_min_tiles": [32, 128, 512],
    "gemv": [(GemvShape(2, 256, 64, 2), GemvShape(16, 256, 64, 4)),
             (GemvShape(16, 256, 64, 4),),
             (GemvShape(2, 256, 128, 2), GemvShape(16, 256, 128, 4)),
             (GemvShape(2, 128, 32, 4), GemvShape(16, 128, 32, 4)),
             (GemvShape(16, 256, 64, 2),)],
}


def representative_layers(seed=0):
    """Shapes that the knobs decide on: 3x3 convolutions from large maps to
    7x7 ones at batch 1 and 16, a 1x1 convolution, dense layers at batch 1
    and 16."""
    rng = np.random.default_rng(seed)
    specs = [((16, 64, 56, 56), 64, 3), ((1, 128, 28, 28), 128, 3), ((16, 256, 14, 14), 256, 3),
             ((1, 512, 7, 7), 512, 3), ((16, 512, 7, 7), 512, 3), ((16, 64, 56, 56), 256, 1),
             ((1, 256, 14, 14), 1024, 1)]
    layers = []
    for shape, out_c, k in specs:
        w = (rng.standard_normal((out_c, shape[1], k, k)) * np.sqrt(2 / (shape[1] * k * k))).astype(np.float32)
        layer = Conv2d(f"conv{k}x{k}_{'x'.join(map(str, shape))}", "x", w, np.zeros(out_c, np.float32),
                       pads=k // 2, activation="relu")
        layer.bind([shape])
        layers.append(layer)
    for batch, k, m in ((1, 4096, 4096), (16, 9216, 4096), (16, 512, 1000)):
        layer = Dense(f"dense{k}x{m}_b{batch}", "x", rng.standard_normal((m, k)).astype(np.float32) * 0.01)
        layer.bind([(batch, k)])
        layers.append(layer)
    return layers


def layer_run(layer, device, target=None, seed=0):
    """(executor, feeds, output) of ``layer`` (bound) alone on ``device``,
    its kernels chosen for ``target`` (the device's own by default), after
    one run (which also builds its kernels)."""
    model = single_layer(layer)
    feeds = random_feeds(model, seed)
    executor = Executor(model, Plan.single(model, device), [device],
                        targets={device.id: target or Target.of(device)})
    (output,) = executor.run(feeds)
    return executor, feeds, output


def replay_seconds(executor, reps=10):
    """Median device seconds of one pass over the kernels of a single-device
    executor, replayed ``reps`` times back to back after a run left its
    inputs in place: from a pass's first kernel start to its last kernel
    end, as the queue's profiling events tell."""
    kernels = [c for c in executor.schedule.commands if c.kind == "kernel"]
    if len({(id(c.context), c.device.id) for c in kernels}) != 1:
        raise DeviceError("replay_seconds times the kernels of one device's queue only")
    passes = [[command.enqueue([]) for command in kernels] for _ in range(reps)]
    context, device = kernels[0].context, kernels[0].device
    context.finish(device)
    spans = []
    for events in passes:
        start = context.event_times(events[0])[0]
        end = context.event_times(events[-1])[1]
        spans.append((end - start) * 1e-9)
    return float(np.median(spans))


def launch_key(layer, target):
    """Equal for targets under which ``layer`` launches the same kernels
    the same way."""
    launches = layer.launches(target, Box.whole(layer.out_shape))
    return repr([(launch.kernel, launch.global_size, launch.local_size, launch.options) for launch in launches])


def time_target(layers, device, target, reps=10, cache=None):
    """{layer name: seconds} of each layer under ``target``; a layer whose
    launches equal ones already timed (in ``cache``) is not run again."""
    cache = {} if cache is None else cache
    found = {}
    for layer in layers:
        key = (layer.name, launch_key(layer, target))
        if key not in cache:
            executor, _, _ = layer_run(layer, device, target)
            cache[key] = replay_seconds(executor, reps)
        found[layer.name] = cache[key]
    return found


def autotune(device, layers=None, knobs=None, reps=10, start=None, report=None):
    """The tuning whose kernels run ``layers`` (representative_layers() by
    default) fastest on ``device``, knob by knob (``knobs``: {Tuning field:
    candidate values}, KNOBS by default), from the Target ``start`` (the
    device's own by default: its kind, limits and tuning);
    ``report(knob, value, seconds)`` hears every candidate's total."""
    layers = representative_layers() if layers is None else layers
    knobs = KNOBS if knobs is None else knobs
    start = start or Target.of(device)
    best = start.tuning
    cache = {}
    for knob, values in knobs.items():
        totals = []
        for value in values:
            candidate = replace(best, **{knob: value})
            total = sum(time_target(layers, device, replace(start, tuning=candidate), reps, cache).values())
            totals.append((total, candidate))
            if report:
                report(knob, value, total)
        best = min(totals, key=lambda item: item[0])[1]
    return best


def _text(value):
    return " ".join(map(str, value)) if isinstance(value, tuple) else str(value)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m clnn.autotune", description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", default="gpu", help="device selector (default: gpu)")
    parser.add_argument("--runs", type=int, default=10, help="timed passes per candidate and layer (default 10)")
    args = parser.parse_args(argv)
    try:
        for device in select(args.devices):
            print(f"{device}:")
            tuning = autotune(device, reps=args.runs, report=lambda knob, value, s: print(
                f"  {knob:<20} {s * 1e3:9.3f} ms  {_text(value)}", flush=True))
            print(f"  best: {tuning}")
    except ClnnError as exc:  # one clean line, as the clnn command prints
        print(f"clnn.autotune: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
