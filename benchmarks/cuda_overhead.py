"""The CUDA plugin's per-run cost against NVIDIA's OpenCL (issue 11), on the
GPU machine: medians of interleaved InferenceSession.run calls of one GPU
through OpenCL, through the CUDA plugin command by command
(CLNN_CUDA_GRAPHS=0), replayed as a CUDA graph with each command's events
(the default) and without them (Executor.timed = False).

    source .whl/gpu-env.sh && python3 benchmarks/cuda_overhead.py --json $OUT/cuda-overhead.json
"""

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import clnn  # noqa: E402
from clnn.timing import interleaved_medians, random_feeds  # noqa: E402

VARIANTS = ("opencl", "cuda per command", "cuda graph timed", "cuda graph untimed")


def sessions(model, gpu_opencl, gpu_cuda):
    """{variant: session}, each run once (which decides whether it replays)."""
    feeds = random_feeds(model)
    found = {}
    if gpu_opencl is not None:
        found["opencl"] = clnn.InferenceSession(model, devices=[gpu_opencl], plan=[1.0])
    for variant in VARIANTS[1:]:
        found[variant] = clnn.InferenceSession(model, devices=[gpu_cuda], plan=[1.0])
    found["cuda graph untimed"]._executor.timed = False
    os.environ["CLNN_CUDA_GRAPHS"] = "0"
    try:
        found["cuda per command"].run(None, feeds)
    finally:
        del os.environ["CLNN_CUDA_GRAPHS"]
    outputs = {v: s.run(None, feeds)[0] for v, s in found.items()}
    replayed = {v: s._executor.schedule._recordings.get(s._executor.timed) is not None for v, s in found.items()}
    return found, feeds, outputs, replayed


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="lenet5,fcnn,resnet18")
    p.add_argument("--batches", default="1,16")
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--json", help="write the rows here")
    args = p.parse_args(argv)
    if "cuda" not in clnn.runtime.backends() and not getattr(args, "standin", None):
        raise SystemExit("the cuda backend is not registered (an uninstalled checkout has no entry points): run "
                         "python3 -c 'import setuptools; setuptools.setup()' -q egg_info here first")
    gpu_cuda = clnn.select("cuda")[0]
    try:
        gpu_opencl = clnn.select("nvidia")[0]
    except clnn.DeviceError:
        gpu_opencl = None
    rows = []
    print(f"{'model':>10} {'batch':>5} " + " ".join(f"{v:>19}" for v in VARIANTS) + "   (ms, median)")
    for name in args.models.split(","):
        for batch in [int(b) for b in args.batches.split(",")]:
            model = clnn.models.get(name, batch=batch)
            found, feeds, outputs, replayed = sessions(model, gpu_opencl, gpu_cuda)
            medians, _ = interleaved_medians([lambda s=s: s.run(None, feeds) for s in found.values()],
                                             args.runs, args.warmup)
            reference = outputs["cuda per command"]
            scale = max(abs(reference).max(), 1e-30)
            row = {"model": name, "batch": batch, "ms": {v: m * 1e3 for v, m in zip(found, medians)},
                   "replayed": replayed,
                   "max_rel_diff": max(float(abs(o - reference).max() / scale) for o in outputs.values())}
            rows.append(row)
            print(f"{name:>10} {batch:>5} " + " ".join(
                f"{row['ms'][v]:>19.3f}" if v in row["ms"] else f"{'-':>19}" for v in VARIANTS)
                + f"   graphs: {sum(replayed.values())}, max rel diff {row['max_rel_diff']:.1e}")
    if args.json:
        Path(args.json).write_text(json.dumps({"gpu": str(gpu_cuda), "runs": args.runs, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
