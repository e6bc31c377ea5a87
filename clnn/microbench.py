"""Kernel micro-benchmark: GFLOP/s of each operator of the zoo's networks,
per device, timed with the queues' profiling events.

    python -m clnn.microbench [--models vgg16,resnet18] [--ops Conv,Gemm]
                              [--batch 16] [--devices gpu] [--runs 10]
                              [--gpu-tiles TM=128,TN=128,...] [--json out.json]

Each distinct layer shape runs alone, whole on one device; the time is the
median over runs of the layer's kernel time (copies excluded), after a
warm-up run that builds the kernels.
"""

import argparse
import copy
import json
import sys

import numpy as np

from . import models
from .bench import random_feeds, timeline_samples
from .executor import Executor
from .graph import Model
from .ops import conv
from .plan import Plan
from .runtime import select
from .trace import kernel_span


def layer_shapes(model_names, batch, ops):
    """(model, layer) pairs, one per distinct op and shape, in model order."""
    seen, found = set(), []
    for name in model_names:
        model = models.get(name, batch=batch)
        for layer in model.layers:
            if layer.is_view or (ops and layer.op not in ops):
                continue
            key = (layer.describe(), tuple(layer.in_shapes[0]), layer.out_shape)
            if key not in seen:
                seen.add(key)
                found.append((name, layer))
    return found


def alone(layer):
    """A model holding just (a copy of) this layer, its inputs fed from outside."""
    single = copy.copy(layer)
    single.inputs = tuple(f"in{i}" for i in range(len(layer.inputs)))
    inputs = {name: shape[:rank] for name, shape, rank in zip(single.inputs, layer.in_shapes, layer.in_ranks)}
    return Model(inputs, [single], [single.name], fuse=False)


def kernel_seconds(executor, feeds, runs):
    return float(np.median(timeline_samples(executor, feeds, runs, kernel_span)))


def parse_tiles(text):
    return {k: int(v) for k, v in (item.split("=") for item in text.split(","))} if text else {}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m clnn.microbench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(models.ZOO))
    parser.add_argument("--ops", default="", help="op types to keep (Conv, Gemm, MaxPool, LRN, ...)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--devices", default=None)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--gpu-tiles", default="", help="override GPU conv tiles, e.g. TM=128,TN=128,RM=8,RN=8")
    parser.add_argument("--cpu-blocks", default="", help="override CPU conv blocking, e.g. MR=6,PB=64")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    conv.GPU_TILES.update(parse_tiles(args.gpu_tiles))
    conv.CPU_BLOCKS.update(parse_tiles(args.cpu_blocks))
    ops = set(filter(None, args.ops.split(",")))
    devices = select(args.devices)
    results = []
    print(f"batch {args.batch}; GPU tiles {conv.GPU_TILES}; CPU blocks {conv.CPU_BLOCKS}")
    print(f"{'model':<11} {'layer':<26} {'input':<18} {'device':<22} {'ms':>9} {'GFLOP/s':>9}")
    for model_name, layer in layer_shapes(args.models.split(","), args.batch, ops):
        model = alone(layer)
        feeds = random_feeds(model)
        for device in devices:
            seconds = kernel_seconds(Executor(model, Plan.single(model, device), [device]), feeds, args.runs)
            gflops = layer.flops() / seconds / 1e9
            shape = "x".join(map(str, layer.in_shapes[0]))
            print(f"{model_name:<11} {layer.describe():<26} {shape:<18} {device.id:<22} {seconds * 1e3:9.3f} "
                  f"{gflops:9.1f}", flush=True)
            results.append({"model": model_name, "layer": layer.name, "op": layer.describe(), "input": shape,
                            "device": device.id, "seconds": seconds, "gflops": gflops})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"batch": args.batch, "gpu_tiles": conv.GPU_TILES, "cpu_blocks": conv.CPU_BLOCKS,
                       "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
