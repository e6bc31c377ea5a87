"""Chooses a device's kernel parameters (clnn.ops.Tuning) by timing them.

``autotune(device)`` starts from the device's current tuning and, one knob
at a time, times each candidate value on layer shapes representative of
the device's kind, keeping the value whose shapes run fastest in total: on
GPUs the GEMM tiles, work-groups per compute unit, Winograd and the GEMV
shapes (KNOBS), on CPUs the convolutions' blocking (CPU_KNOBS).
``tune_and_save`` stores the result as the device's record in clnn's cache
folder, which ``clnn.ops.tuning.tuning_for`` prefers from then on (``clnn
tune``, ``python -m clnn.autotune --save``, and plan="auto" with
CLNN_TUNE=auto for devices that have no tuning of their own).
``layer_run`` and ``replay_seconds`` time one layer alone;
benchmarks/gpu_kernels.py uses them too.
"""

import logging
import time
from dataclasses import dataclass, replace

import numpy as np

from ..box import Box
from ..errors import DeviceError
from ..executor import Executor
from ..graph import single_layer
from ..ops import Conv2d, Dense, GemmTile, GemvShape, Target
from ..ops.tuning import save_tuning, tuning_source
from ..plan import Plan
from ..timing import random_feeds

log = logging.getLogger("clnn")

T128, T64x128, T128x64, T64, T32 = (GemmTile(128, 128, 8, 8, 8), GemmTile(64, 128, 8, 4, 8),
                                    GemmTile(128, 64, 16, 8, 4), GemmTile(64, 64, 16, 4, 4),
                                    GemmTile(32, 32, 8, 4, 4))
# candidate values of each knob (Tuning.with_overrides' names), tried in this order
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
# the CPU convolutions' blocking (clnn.ops.tuning.CpuBlocks, by vectors of 8
# floats): output channels per register block (2 * MR accumulators beside
# the operands fill AVX2's 16 registers at 6), then the GEMM's and
# Winograd's depth and block counts
CPU_KNOBS = {
    "cpu_blocks.MR": [6, 4, 8],
    "cpu_blocks.KC": [128, 64, 256],
    "cpu_blocks.NB": [8, 4, 16],
    "cpu_blocks.PBNB": [64, 32, 128],
    "cpu_blocks.WKC": [8, 4, 16],
    "cpu_blocks.TB": [1, 2],
    "cpu_blocks.TPB": [16, 8, 32],
}


def knobs_for(kind):
    """The knobs that decide the kernels of a Target of ``kind``."""
    return CPU_KNOBS if kind == "cpu" else KNOBS


def representative_layers(seed=0, kind="gpu"):
    """Shapes that the knobs of ``kind`` decide on. GPU: 3x3 convolutions
    from large maps to 7x7 ones at batch 1 and 16, 1x1 convolutions, dense
    layers at batch 1 and 16. CPU, at batch 1: 3x3 convolutions on 56x56 to
    7x7 maps (Winograd), a 1x1 and a strided one (the GEMM)."""
    rng = np.random.default_rng(seed)
    if kind == "cpu":
        return conv_layers(rng, [((1, 64, 56, 56), 64, 3, 1), ((1, 128, 28, 28), 128, 3, 1),
                                 ((1, 256, 14, 14), 256, 3, 1), ((1, 512, 7, 7), 512, 3, 1),
                                 ((1, 64, 56, 56), 256, 1, 1), ((1, 128, 56, 56), 128, 3, 2)])
    layers = conv_layers(rng, [((16, 64, 56, 56), 64, 3, 1), ((1, 128, 28, 28), 128, 3, 1),
                               ((16, 256, 14, 14), 256, 3, 1), ((1, 512, 7, 7), 512, 3, 1),
                               ((16, 512, 7, 7), 512, 3, 1), ((16, 64, 56, 56), 256, 1, 1),
                               ((1, 256, 14, 14), 1024, 1, 1)])
    for batch, k, m in ((1, 4096, 4096), (16, 9216, 4096), (16, 512, 1000)):
        layer = Dense(f"dense{k}x{m}_b{batch}", "x", rng.standard_normal((m, k)).astype(np.float32) * 0.01)
        layer.bind([(batch, k)])
        layers.append(layer)
    return layers


def conv_layers(rng, specs):
    """Bound convolutions with ReLU and He-scaled random weights, one per
    (input shape, output channels, kernel side, stride)."""
    layers = []
    for shape, out_c, k, stride in specs:
        w = (rng.standard_normal((out_c, shape[1], k, k)) * np.sqrt(2 / (shape[1] * k * k))).astype(np.float32)
        layer = Conv2d(f"conv{k}x{k}s{stride}_{'x'.join(map(str, shape))}", "x", w, np.zeros(out_c, np.float32),
                       pads=k // 2, stride=stride, activation="relu")
        layer.bind([shape])
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


@dataclass(frozen=True)
class Tuned:
    """What autotune found: the tuning, the representative layers' total
    seconds under the tuning it started from and under this one, and how
    long the search took."""
    tuning: object
    start_seconds: float
    tuned_seconds: float
    seconds: float


def autotune(device, layers=None, knobs=None, reps=10, start=None, report=None):
    """Tuned: the tuning whose kernels run ``layers`` fastest on ``device``
    (representative_layers of the start's kind by default), knob by knob
    (``knobs``: {Tuning.with_overrides name: candidate values}, knobs_for
    the start's kind by default), from the Target ``start`` (the device's
    own by default: its kind, limits and tuning); ``report(knob, value,
    seconds)`` hears every candidate's total."""
    started = time.perf_counter()
    start = start or Target.of(device)
    layers = representative_layers(kind=start.kind) if layers is None else layers
    knobs = knobs_for(start.kind) if knobs is None else knobs
    cache = {}

    def total(tuning):
        return sum(time_target(layers, device, replace(start, tuning=tuning), reps, cache).values())

    best = start.tuning
    start_seconds = best_seconds = total(best)
    for knob, values in knobs.items():
        totals = []
        for value in values:
            candidate = best.with_overrides({knob: value})
            totals.append((total(candidate), candidate))
            if report:
                report(knob, value, totals[-1][0])
        best_seconds, best = min(totals, key=lambda item: item[0])
    return Tuned(best, start_seconds, best_seconds, time.perf_counter() - started)


def tune_and_save(device, reps=10, report=None):
    """(Tuned, the record's path or None where it stayed in memory): the
    device autotuned on its kind's representative layers and stored as its
    record in clnn's cache folder (clnn.ops.tuning.save_tuning)."""
    found = autotune(device, reps=reps, report=report)
    return found, save_tuning(device, found.tuning, found.start_seconds, found.tuned_seconds)


def candidate_count(device):
    """How many candidates autotune times on ``device`` by default."""
    return sum(len(values) for values in knobs_for(Target.of(device).kind).values())


def tune_untuned(devices, reps=10):
    """Autotune and store each of ``devices`` (simulators aside) that has
    neither a record of its own nor an entry in clnn's table."""
    for device in devices:
        if not device.simulator and tuning_source(device)[1] == "default":
            found, path = tune_and_save(device, reps)
            log.debug("tuned %s in %.1f s: representative layers %.3f ms, %.3f ms before; %s", device.id,
                      found.seconds, found.tuned_seconds * 1e3, found.start_seconds * 1e3, path or "kept in memory")
