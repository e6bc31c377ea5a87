"""Kernel times of the spatial layers (Resize, ConvTranspose, MatMul, 1-D
convolution) at the shapes of the networks that use them, on every selected
device, beside torch's own (CUDA where it has a GPU) for scale:

    python benchmarks/spatial_ops.py [--devices nvidia] [--runs 20] [--json out.json]

clnn's time is the median kernel span over runs (copies excluded), after a
warm-up run; torch's the median of CUDA-synchronised calls. Prints a table
of ms and GFLOP/s.
"""

import argparse
import json
import time

import numpy as np

from clnn import Model
from clnn.executor import Executor
from clnn.ops import Conv2d, ConvTranspose2d, MatMul, Resize
from clnn.plan import Plan
from clnn.runtime import select
from clnn.timing import kernel_span, random_feeds, timeline_samples


def cases(batch):
    """name: (inputs {name: shape}, layer, torch function of the inputs or None)."""
    rng = np.random.default_rng(0)
    w = lambda *shape: (rng.standard_normal(shape) * 0.05).astype(np.float32)   # noqa: E731
    fst1, fst2 = w(128, 64, 3, 3), w(64, 32, 3, 3)
    qkv = w(384, 1152)
    return {
        # fast style transfer's decoder: 3x3 stride-2 transposed convolutions
        "fst convT 128->64 /2": ({"x": (batch, 128, 64, 64)},
                                 ConvTranspose2d("y", "x", fst1, None, stride=2, pads=1, output_padding=1),
                                 lambda t, x: t.nn.functional.conv_transpose2d(x, t.tensor(fst1, device=x.device),
                                                                               stride=2, padding=1,
                                                                               output_padding=1)),
        "fst convT 64->32 /2": ({"x": (batch, 64, 128, 128)},
                                ConvTranspose2d("y", "x", fst2, None, stride=2, pads=1, output_padding=1),
                                lambda t, x: t.nn.functional.conv_transpose2d(x, t.tensor(fst2, device=x.device),
                                                                              stride=2, padding=1, output_padding=1)),
        # segmentation heads: bilinear x8 and x4 of a stride-8 / stride-4 map
        "resize bilinear x8": ({"x": (batch, 21, 64, 64)}, Resize("y", "x", (8.0, 8.0), mode="linear"),
                               lambda t, x: t.nn.functional.interpolate(x, scale_factor=8, mode="bilinear")),
        "resize nearest x2": ({"x": (batch, 256, 64, 64)}, Resize("y", "x", (2.0, 2.0), coordinate_mode="asymmetric",
                                                                  nearest_mode="floor"),
                              lambda t, x: t.nn.functional.interpolate(x, scale_factor=2, mode="nearest")),
        # ViT-S/16: the qkv projection of 197 tokens and one head group's scores
        "matmul qkv 197x384x1152": ({"x": (batch, 197, 384)}, MatMul("y", "x", qkv),
                                    lambda t, x: x @ t.tensor(qkv, device=x.device)),
        "matmul attention 6x197x64": ({"q": (batch, 6, 197, 64), "k": (batch, 6, 64, 197)},
                                      MatMul("y", ("q", "k")), lambda t, q, k: q @ k),
        "conv1d 256->256 k3": ({"x": (batch, 256, 1024)},
                               Conv2d("y", "x", w(256, 256, 3, 1), None, pads=(1, 0, 1, 0)), None),
    }


def torch_ms(function, feeds, runs):
    try:
        import torch
    except ImportError:
        return None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tensors = [torch.tensor(v, device=device) for v in feeds.values()]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    with torch.no_grad():
        function(torch, *tensors)
        sync()
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            function(torch, *tensors)
            sync()
            samples.append(time.perf_counter() - started)
    return float(np.median(samples)) * 1e3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", default=None)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    devices = select(args.devices)
    results = []
    print(f"{'case':<28} {'device':<24} {'ms':>9} {'GFLOP/s':>9} {'torch ms':>9}")
    for name, (inputs, layer, reference) in cases(args.batch).items():
        model = Model(inputs, [layer], ["y"], name=name)
        feeds = random_feeds(model)
        theirs = torch_ms(reference, feeds, args.runs) if reference else None
        for device in devices:
            executor = Executor(model, Plan.single(model, device), [device])
            seconds = float(np.median(timeline_samples(executor, feeds, args.runs, kernel_span)))
            gflops = model.flops() / seconds / 1e9
            print(f"{name:<28} {device.id:<24} {seconds * 1e3:9.3f} {gflops:9.1f} "
                  f"{theirs if theirs is None else round(theirs, 3)!s:>9}", flush=True)
            results.append({"case": name, "device": device.id, "seconds": seconds, "gflops": gflops,
                            "torch_ms": theirs})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"batch": args.batch, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
