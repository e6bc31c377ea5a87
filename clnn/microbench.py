"""Kernel micro-benchmark: GFLOP/s and GB/s of each operator of the zoo's
networks, per device, timed with the queues' profiling events.

    python -m clnn.microbench [--models vgg16,resnet18] [--ops Conv,Gemm]
                              [--batch 16] [--devices gpu] [--runs 10]
                              [--tune conv_tiles=128x128x8/8x8,winograd=0,...] [--no-peer] [--json out.json]

Each distinct layer shape runs alone, whole on one device; the time is the
median over runs of the layer's kernel time (copies excluded), after a
warm-up run that builds the kernels; GB/s counts the layer's inputs,
output and weights once each (Layer.bytes), the least it must move, so it
reads against the device's memory bandwidth. Beside it, the same layer runs in a
peer (clnn.microbench_peers: onnxruntime on a CPU device, torch with cuDNN on
a GPU), interleaved run by run; the row shows the peer's median time and
clnn/peer (above 1: clnn is slower). --no-peer leaves the peers out.
"""

import argparse
import json
import sys

from . import models
from .errors import ClnnError, InputError
from .executor import Executor
from .graph import single_layer
from .microbench_peers import HEADER, cells, measure, peer_for
from .ops import Target
from .ops.tuning import tuning_for
from .plan import Plan
from .runtime import select
from .timing import random_feeds


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


def parse_tuning(text):
    """{"winograd": "0", ...} from "winograd=0,..." (the values as text, for
    clnn.ops.Tuning.with_overrides)."""
    items = [item.partition("=") for item in text.split(",")] if text else []
    if any(not sep or not name.strip() for name, sep, _ in items):
        raise InputError(f"--tune takes NAME=VALUE pairs separated by commas, not {text!r}")
    return {name.strip(): value.strip() for name, _, value in items}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m clnn.microbench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(models.ZOO))
    parser.add_argument("--ops", default="", help="op types to keep (Conv, Gemm, MaxPool, LRN, ...)")
    parser.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    parser.add_argument("--devices", default=None, help="device selector (default: CLNN_DEVICES or all)")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per layer and device (default 10)")
    parser.add_argument("--tune", default="", help="kernel parameters (clnn.ops.Tuning fields), e.g. "
                        "conv_tiles=128x128x8/8x8+64x64x16/4x4,winograd=0,cpu_blocks.PBNB=32")
    parser.add_argument("--peer", action=argparse.BooleanOptionalAction, default=True,
                        help="time each layer in the device's peer too: onnxruntime (CPU), torch with cuDNN (GPU); "
                        "default on, a row shows '-' where the peer is not installed")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    try:
        return _measure(args)
    except ClnnError as exc:  # one clean line, as the clnn command prints
        print(f"clnn.microbench: error: {exc}", file=sys.stderr)
        return 2


def _measure(args):
    overrides = parse_tuning(args.tune)
    ops = set(filter(None, args.ops.split(",")))
    devices = select(args.devices)
    targets = {d.id: Target.of(d, tuning_for(d).with_overrides(overrides)) for d in devices}
    results = []
    print(f"batch {args.batch}; tuning {overrides or 'defaults'}")
    peers = {d.id: peer_for(d) for d in devices} if args.peer else {}
    for device_id, peer in peers.items():
        print(f"peer of {device_id}: {peer.description}")
    print(f"{'model':<11} {'layer':<26} {'input':<18} {'device':<22} {'ms':>9} {'GFLOP/s':>9} {'GB/s':>8}"
          + (f" {HEADER}" if peers else ""))
    for model_name, layer in layer_shapes(args.models.split(","), args.batch, ops):
        model = single_layer(layer)
        feeds = random_feeds(model)
        for device in devices:
            executor = Executor(model, Plan.single(model, device), [device], targets={device.id: targets[device.id]})
            seconds, peer_row = measure(executor, feeds, args.runs, peers.get(device.id))
            gflops, gbps = layer.flops() / seconds / 1e9, layer.bytes() / seconds / 1e9
            shape = "x".join(map(str, layer.in_shapes[0]))
            print(f"{model_name:<11} {layer.describe():<26} {shape:<18} {device.id:<22} {seconds * 1e3:9.3f} "
                  f"{gflops:9.1f} {gbps:8.1f}" + (f" {cells(peer_row)}" if peers else ""), flush=True)
            results.append({"model": model_name, "layer": layer.name, "op": layer.describe(), "input": shape,
                            "device": device.id, "seconds": seconds, "gflops": gflops, "gbps": gbps,
                            **(peer_row if peers else {})})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"batch": args.batch, "tuning": overrides, "results": results,
                       "peers": {k: p.description for k, p in peers.items()}}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
