"""Kernel sources A against B, in one process: each distinct layer of the
zoo models (as clnn.microbench picks them) is built once with the kernels
of folder A and once with those of folder B, and the two run in turns;
prints each layer's median kernel times and B/A, and their geometric mean.

    python benchmarks/kernel_ab.py --a /tmp/kernels_before --b kernels \\
        --devices nvidia --models resnet18 --ops Conv [--runs 15] [--json out.json]

For a change to a header every kernel includes (clnn_act in
kernels/clnn_common.h), make A with `git archive <commit> kernels | tar -x -C
/tmp/before`. Swap A and B once to see the order's own bias. OpenCL devices
only (the CUDA backend reads its sources elsewhere).
"""

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from clnn.executor import Executor
from clnn.graph import single_layer
from clnn.microbench import layer_shapes
from clnn.ops import Target
from clnn.plan import Plan
from clnn.runtime import contexts_for, opencl, select
from clnn.timing import kernel_span, random_feeds

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$', re.MULTILINE)


def loader(folder):
    """A load_source reading kernels/<name>.cl from ``folder``."""
    def load(name):
        seen = set()

        def expand(filename):
            def include(match):
                if match.group(1) in seen:
                    return ""
                seen.add(match.group(1))
                return expand(match.group(1))
            return _INCLUDE.sub(include, (Path(folder) / filename).read_text())
        return expand(f"{name}.cl")
    return load


def built(model, device, folder):
    """An executor of ``model`` whose kernels come from ``folder``, warm."""
    opencl.load_source = loader(folder)
    for context in contexts_for([device]):
        context._programs.clear()   # built anew from this folder's sources
    executor = Executor(model, Plan.single(model, device), [device], targets={device.id: Target.of(device)})
    feeds = random_feeds(model)
    executor.run(feeds)
    return executor, feeds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, help="kernel folder A (before)")
    parser.add_argument("--b", required=True, help="kernel folder B (after)")
    parser.add_argument("--devices", default=None)
    parser.add_argument("--models", default="resnet18")
    parser.add_argument("--ops", default="Conv")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    ops = set(filter(None, args.ops.split(",")))
    results = []
    for device in select(args.devices):
        print(f"{device.id}: {'layer':<26} {'input':<16} {'A ms':>8} {'B ms':>8} {'B/A':>6}")
        ratios = []
        for model_name, layer in layer_shapes(args.models.split(","), args.batch, ops):
            model = single_layer(layer)
            pair = [built(model, device, args.a), built(model, device, args.b)]
            samples = [[], []]
            for _ in range(args.runs):
                for (executor, feeds), found in zip(pair, samples):
                    executor.run(feeds)
                    found.append(kernel_span(executor.timeline()))
            a, b = (float(np.median(s)) for s in samples)
            ratios.append(b / a)
            shape = "x".join(map(str, layer.in_shapes[0]))
            print(f"{'':<{len(device.id) + 2}}{layer.describe():<26} {shape:<16} {a * 1e3:8.3f} {b * 1e3:8.3f} "
                  f"{b / a:6.3f}", flush=True)
            results.append({"device": device.id, "model": model_name, "layer": layer.describe(), "input": shape,
                            "a_seconds": a, "b_seconds": b})
        print(f"{device.id}: geometric mean of B/A over {len(ratios)} layers: "
              f"{float(np.exp(np.mean(np.log(ratios)))):.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"a": args.a, "b": args.b, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
