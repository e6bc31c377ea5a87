"""Kernel times of the shape, reduction and normalisation layers at the
sizes torchvision's models give them at batch 1, beside a plain copy of
the same output (what an N-D copy can at best approach) and, for global
means, beside GlobalAveragePool; group kernels both ways (a work-item or a
work-group per group).

    python benchmarks/shape_ops.py [--devices portable] [--runs 10] [--json out.json]

Prints one row per case, device and variant: kernel milliseconds (median
over runs of the layer's kernel span, after a warm-up run) and GB/s moved.
"""

import argparse
import json
import os
import sys

from clnn.executor import Executor
from clnn.graph import single_layer
from clnn.model import Model
from clnn.ops import (Activation, DepthToSpace, InstanceNorm, LayerNorm, Pad, Pool, Reduce, Slice, Softmax,
                      SpaceToDepth, Target, Transpose)
from clnn.ops.tuning import tuning_for
from clnn.plan import Plan
from clnn.runtime import select
from clnn.timing import kernel_span, random_feeds, timeline_samples

import numpy as np

ITEMS = {"rows.groups_from": 2 ** 31}
GROUPS = {"rows.groups_from": 0, "rows.groups_below": 2 ** 31}


def copy_of(shape):
    return ("copy (baseline)", shape, lambda: Activation("y", "x", None))


CASES = [
    ("shufflenet shuffle 2x58x28x28", (1, 2, 58, 28, 28), lambda: Transpose("y", "x", (0, 2, 1, 3, 4))),
    copy_of((1, 116, 28, 28)),
    ("convnext NCHW->NHWC 96x56x56", (1, 96, 56, 56), lambda: Transpose("y", "x", (0, 2, 3, 1))),
    ("convnext NHWC->NCHW 56x56x96", (1, 56, 56, 96), lambda: Transpose("y", "x", (0, 3, 1, 2))),
    copy_of((1, 96, 56, 56)),
    ("slice half channels 116x28x28", (1, 232, 28, 28), lambda: Slice("y", "x", [116], [232], [1])),
    ("depth_to_space 2 64x56x56", (1, 64, 56, 56), lambda: DepthToSpace("y", "x", 2)),
    ("yolov2 space_to_depth 64x26x26", (1, 64, 26, 26), lambda: SpaceToDepth("y", "x", 2)),
    ("pad reflect 1 64x56x56", (1, 64, 56, 56), lambda: Pad("y", "x", [0, 0, 1, 1, 0, 0, 1, 1], "reflect")),
    ("reducemean hw 256x56x56", (1, 256, 56, 56), lambda: Reduce("y", "x", "ReduceMean", (2, 3))),
    ("globalavgpool 256x56x56", (1, 256, 56, 56), lambda: Pool("y", "x", "avg")),
    ("reducemean hw 1280x7x7", (1, 1280, 7, 7), lambda: Reduce("y", "x", "ReduceMean", (2, 3))),
    ("globalavgpool 1280x7x7", (1, 1280, 7, 7), lambda: Pool("y", "x", "avg")),
    ("softmax 1000", (1, 1000), lambda: Softmax("y", "x", 1)),
    ("softmax channels 21x64x64", (1, 21, 64, 64), lambda: Softmax("y", "x", 1)),
    ("layernorm last 56x56x96", (1, 56, 56, 96), lambda: LayerNorm("y", "x", np.ones(96), np.zeros(96))),
    ("instancenorm 64x128x128", (1, 64, 128, 128), lambda: InstanceNorm("y", "x", np.ones(64), np.zeros(64))),
]
GROUPED = ("Reduce", "Softmax", "LayerNormalization", "InstanceNormalization")


def seconds(layer, device, tuning, runs):
    model = single_layer(layer)
    target = Target.of(device, tuning_for(device).with_overrides(tuning))
    executor = Executor(model, Plan.single(model, device), [device], targets={device.id: target})
    return float(np.median(timeline_samples(executor, random_feeds(model), runs, kernel_span)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", default=None)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    results = []
    print(f"{'case':<32} {'device':<22} {'variant':<8} {'ms':>8} {'GB/s':>7}")
    for device in select(args.devices):
        for label, shape, make in CASES:
            layer = Model({"x": shape}, [make()], ["y"], fuse=False).layers[0]
            kinds = ({"auto": {}, "items": ITEMS, "groups": GROUPS} if any(layer.op.startswith(g) for g in GROUPED)
                     else {"auto": {}})
            for variant, tuning in kinds.items():
                took = seconds(layer, device, tuning, args.runs)
                rate = layer.bytes() / took / 1e9
                print(f"{label:<32} {device.id:<22} {variant:<8} {took * 1e3:8.3f} {rate:7.1f}", flush=True)
                results.append({"case": label, "device": device.id, "variant": variant, "seconds": took,
                                "gbytes_per_s": rate})
    out = args.json or (os.path.join(os.environ["OUT"], "shape_ops.json") if os.environ.get("OUT") else None)
    if out:
        with open(out, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
